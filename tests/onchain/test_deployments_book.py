"""The deployments book records each transaction as it goes; reverts are named without the npm toolchain."""

from __future__ import annotations

import json

import pytest
from onchain_helpers import address, expect_revert

from pipeline import chain, evm
from pipeline.errors import UsageError

pytestmark = pytest.mark.slow

ZERO_ADDRESS = "0x" + "00" * 20


def test_a_deployment_that_fails_midway_leaves_a_record(anvil, circuits, tmp_path):
    ddir = tmp_path / "deployments"
    # Its last transaction reverts: the gate refuses the zero address as feature publisher.
    expect_revert(lambda: chain.deploy(circuits["credit"].dir, anvil.rpc_url, deployments_dir=ddir,
                                       feature_publisher=ZERO_ADDRESS), "ZeroAddress")
    book = json.loads((ddir / "31337.json").read_text())
    assert set(book["contracts"]) == {"ModelRegistry", "credit/Halo2Verifier", "credit/RiskAdjustedLending"}
    client = chain.Chain(anvil.rpc_url)
    assert all(client.has_code(r["address"]) for r in book["contracts"].values())
    assert "feature publisher" in book["models"]["credit"]["incomplete"]
    with pytest.raises(UsageError, match="did not finish.*run `zkinfer deploy` again"):
        chain.open_gate(client, "credit", ddir)

    d = chain.deploy(circuits["credit"].dir, anvil.rpc_url, deployments_dir=ddir)
    model = json.loads((ddir / "31337.json").read_text())["models"]["credit"]
    assert "incomplete" not in model and model["modelId"] == d.model_id
    assert chain.open_gate(client, "credit", ddir).gate.address == d.gate.address


def test_reverts_are_named_without_the_npm_toolchain(anvil, circuits, tmp_path, monkeypatch):
    ddir = tmp_path / "deployments"
    chain.deploy(circuits["credit"].dir, anvil.rpc_url, deployments_dir=ddir)
    proof = circuits["credit"].prove([[0.0, 0.0, 0.0, 0.0]], tmp_path / "proof.json")
    borrower = address("toolless")
    chain.post_features([proof], anvil.rpc_url, subjects=[borrower], deployments_dir=ddir)
    chain.submit([proof], anvil.rpc_url, subjects=[borrower], deployments_dir=ddir)

    monkeypatch.setenv(evm.NODE_MODULES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match="not installed"):
        evm.npm_binary("solcjs")
    expect_revert(lambda: chain.submit([proof], anvil.rpc_url, subjects=[borrower], deployments_dir=ddir),
                  "PostingAlreadyConsumed")
