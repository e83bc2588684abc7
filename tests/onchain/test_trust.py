"""Issue 12's on-chain attacks, tried on a real anvil with real proofs: each fails with a named error, or the
circuit is refused before deploy. verifier_contracts/README.md's threat model points at these tests."""

from __future__ import annotations

import json
import logging

import pytest
from onchain_helpers import load

from pipeline import chain, evm
from pipeline.errors import ChainError, UsageError

pytestmark = pytest.mark.slow

CREDIT = [1.0, 0.5, -0.5, 0.25]  # the `credit` stand-in's weights
PD_HALF = [0.0, 0.0, 0.0, 0.0]


# ------------------------------------------------------------------------------------------ circuits refused


def test_private_weights_are_refused_at_deploy(anvil, build_stand_in, tmp_path, caplog):
    """ezkl's private params are free witness values: the verifying key does not fix them, so proofs made
    with any weights verify. The build warns; deploy refuses before any transaction, saying what to use."""
    with caplog.at_level(logging.WARNING, logger="pipeline.build"):
        c = build_stand_in("credit_private", CREDIT, params="private")
    assert any("weights are private" in r.getMessage() for r in caplog.records)
    ddir = tmp_path / "deployments"
    with pytest.raises(UsageError, match=r"weights are private.*free witness.*--param-visibility fixed.*hashed"):
        chain.deploy(c.dir, anvil.rpc_url, deployments_dir=ddir)
    assert not (ddir / "31337.json").exists()


@pytest.mark.parametrize(
    ("stacked", "inputs", "refusal"),
    [
        ((1, 2), "public", r"2 inferences per proof in 2 output tensors of 2 rows each.*another inference's output"),
        ((2, 1), "hashed", r"2 inferences per proof in 2 input tensors of 2 rows each.*cannot bind"),
    ],
    ids=["two-stacked-outputs", "two-stacked-hashed-inputs"],
)
def test_slots_a_gate_would_read_at_the_wrong_instances_are_refused_at_deploy(
    anvil, build_stand_in, tmp_path, stacked, inputs, refusal
):
    """K = 2 with two stacked tensors: instances run tensor by tensor, so slot 1's values are row 1 of each
    tensor, not one run. Two outputs: the gate would rate slot 1 from slot 0's second output. Two hashed
    inputs: each hash covers one tensor's rows of both borrowers, which no borrower's commitment matches,
    although the hash count equals K."""
    c = build_stand_in(f"stacked_{stacked[0]}x{stacked[1]}", CREDIT, batch=2, inputs=inputs, stacked=stacked)
    with pytest.raises(UsageError, match=refusal):
        chain.deploy(c.dir, anvil.rpc_url, deployments_dir=tmp_path / "deployments")
    assert not (tmp_path / "deployments" / "31337.json").exists()


# ----------------------------------------------------------------------------------- deploy's reused contracts


def _open_registry_code() -> bytes:
    """The runtime code of a ModelRegistry whose `register` lacks onlyOwner: a look-alike anyone registers in."""
    sources = evm.contract_sources()
    name = "src/ModelRegistry.sol"
    guarded = ") external onlyOwner returns (uint256 modelId) {"
    assert guarded in sources[name]
    sources[name] = sources[name].replace(guarded, ") external returns (uint256 modelId) {")
    art = evm.compile_solidity(sources, base_path=evm.CONTRACTS_DIR)["ModelRegistry"]
    return bytes.fromhex(art["deployedBytecode"][2:])


def test_deploy_reuses_a_recorded_registry_only_if_its_code_is_this_builds(anvil, circuits, tmp_path):
    ddir = tmp_path / "deployments"
    first = chain.deploy(circuits["credit"].dir, anvil.rpc_url, deployments_dir=ddir)
    again = chain.deploy(circuits["credit"].dir, anvil.rpc_url, deployments_dir=ddir)
    assert again.registry is None and again.registry_address == first.registry_address  # the same code: reused

    # The recorded address now runs other code (same storage): a registry anyone can register in.
    w3 = chain.Chain(anvil.rpc_url).w3
    w3.provider.make_request("anvil_setCode", [first.registry_address, "0x" + _open_registry_code().hex()])
    book = (ddir / "31337.json").read_text()
    with pytest.raises(ChainError, match=r"not the ModelRegistry this build deploys.*another --deployments"):
        chain.deploy(circuits["credit"].dir, anvil.rpc_url, deployments_dir=ddir)
    assert (ddir / "31337.json").read_text() == book  # refused before any transaction


def test_deploy_replaces_a_recorded_reusable_verifier_whose_code_differs(anvil, circuits, tmp_path):
    ddir = tmp_path / "deployments"
    credit = circuits["credit"].dir
    first = chain.deploy(credit, anvil.rpc_url, verifier_mode="reusable", deployments_dir=ddir)
    assert first.reusable_verifier is not None
    shared = first.reusable_verifier.address
    w3 = chain.Chain(anvil.rpc_url).w3
    w3.provider.make_request("anvil_setCode", [shared, evm.contract_artifact("ModelRegistry")["deployedBytecode"]])
    again = chain.deploy(credit, anvil.rpc_url, verifier_mode="reusable", deployments_dir=ddir)
    assert again.reusable_verifier is not None and again.reusable_verifier.address != shared
    book = json.loads((ddir / "31337.json").read_text())
    assert book["contracts"][evm.REUSABLE_VERIFIER_CONTRACT]["address"] == again.reusable_verifier.address

    # The new one serves proofs: the adapter on top of it verifies.
    handle = chain.open_gate(chain.Chain(anvil.rpc_url), "credit", ddir)
    proof = load(circuits["credit"].prove([PD_HALF], tmp_path / "proof.json"))
    assert chain.verification_gas(handle, proof["calldata"]) > 0
