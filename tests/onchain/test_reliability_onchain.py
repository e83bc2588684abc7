"""Short form of the on-chain proof mutation check (issue 13): calldata mutants of a real proof refused by
the deployed verifier and the lending gate on a real anvil; the original acted on afterwards."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_proof_mutation_onchain_short(anvil, reliability_subject, tmp_path):
    from pipeline.reliability import mutation

    r = mutation.onchain(reliability_subject.dir, anvil.rpc_url, tmp_path / "onchain", n_bytes=20, seed=1)
    assert r.failures == 0, (r.notes, r.details.get("failure_examples"))
    assert r.details["by_kind"]["original"] == {"cases": 1, "failures": 0}
    assert r.details["by_kind"]["gate:byte"]["cases"] == 20
