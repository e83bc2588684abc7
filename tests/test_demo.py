"""`make demo`'s job, end to end in a temporary directory: circuit, batch proofs, chain, gated rates, attacks."""

import math

import pytest

from pipeline.demo import BORROWERS, DEMO_TERMS, run_demo

pytestmark = pytest.mark.slow


def test_demo_end_to_end(tmp_path):
    lines = []
    result = run_demo(tmp_path / "run", circuits_dir=tmp_path / "circuits", workers=2, say=lines.append)
    assert result.proved == len(BORROWERS)
    assert [s["borrower"] for s in result.submissions] == list(BORROWERS)
    for s in result.submissions:
        # rate = 200 + 1500 * PD (bp), rounded down (PD is the proven felt / 2^scale, exact in a float),
        # moved from the initial 800 bp within the breaker.
        assert s["new_rate_bps"] == 200 + math.floor(1500 * s["pd"])
        assert abs(s["new_rate_bps"] - s["old_rate_bps"]) <= DEMO_TERMS["maxRateStepBps"]
        assert 500_000 < s["gas_used"] < 1_000_000
    assert result.rejections == {"tampered": "ProofRejected", "replayed": "PostingAlreadyConsumed"}
    assert any("anvil stopped" in line for line in lines)
