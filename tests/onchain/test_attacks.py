"""Issue 12's on-chain attacks, tried on a real anvil with real proofs: each fails with a named error, or the
circuit is refused before deploy. verifier_contracts/README.md's threat model points at these tests."""

from __future__ import annotations

import json
import logging

import pytest
from onchain_helpers import (
    LENDING_TERMS,
    MAX_AGE,
    PD_HALF,
    PD_HIGH,
    PD_MID,
    RATE_MID,
    address,
    address_subject,
    advance_time,
    expect_revert,
    load,
    post,
    prove,
    rate,
    send,
)

from pipeline import chain, evm
from pipeline.errors import ChainError, UsageError

pytestmark = pytest.mark.slow

CREDIT = [1.0, 0.5, -0.5, 0.25]  # the `credit` stand-in's weights
H = b"\x01" * 32  # a stand-in hash for registrations that only need one


def _commitment(env, proof: dict) -> bytes:
    [c] = chain.slot_commitments([int(x, 16) for x in proof["calldata"]["instances"]], env.gate.layout)
    return c


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


# ------------------------------------------------------------------------------------ one action per posting


def test_a_posting_acts_once_whatever_the_model(env):
    """Model shopping: with two models accepted (an upgrade's overlap), one posting acted on by model A
    cannot be acted on again by model B."""
    gate = env.gate.gate.functions
    env.chain.transact(gate.acceptModel(env.b.model_id, 0), "accept model B")
    try:
        sam = address("shopping-sam")
        a_proof, b_proof = prove(env, "credit", PD_HIGH), prove(env, "credit_b", PD_HIGH)
        assert _commitment(env, a_proof) == _commitment(env, b_proof)  # same features, same posting
        post(env, sam, a_proof)
        send(env, a_proof, [sam])
        after_a = rate(env, sam)
        posted_at = gate.subjectRecord(address_subject(sam)).call()[1]
        expect_revert(
            lambda: send(env, b_proof, [sam], model_id=env.b.model_id),
            "PostingAlreadyConsumed",
            subject="0x" + address_subject(sam).hex(),
            postedAt=posted_at,
        )
        assert rate(env, sam) == after_a
    finally:
        env.chain.transact(gate.dropModel(env.b.model_id), "drop model B")


def test_twins_posted_in_one_block_are_acted_on_independently(env):
    """Two borrowers with identical features posted in the same block (same second): the same proof acts
    on each once. The replay key is the posting, which is per subject."""
    twins = [address("twin-1"), address("twin-2")]
    proof = prove(env, "credit", PD_MID)
    commitment = _commitment(env, proof)
    w3 = env.w3
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        hashes = [env.gate.gate.functions.postFeatures(address_subject(t), commitment).transact(
            {"from": env.chain.account}) for t in twins]
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    receipts = [w3.eth.wait_for_transaction_receipt(h) for h in hashes]
    assert receipts[0].blockNumber == receipts[1].blockNumber
    for t in twins:
        [effect] = send(env, proof, [t]).effects
        assert effect == {"event": "RateUpdated", "borrower": t, "newRateBps": RATE_MID}


def test_one_borrowers_jump_is_clamped_and_does_not_block_its_batch(env, circuits):
    """K = 2: one borrower's PD jumps (a step of ~880 bp against a 300 bp breaker); its rate moves one step,
    its batch partner's all the way, in the same submission."""
    chain.deploy(circuits["credit_k2"].dir, env.chain.rpc_url, "lending", deployments_dir=env.ddir,
                 terms=LENDING_TERMS)
    path = circuits["credit_k2"].prove([PD_HIGH + PD_HALF], env.proofs / "jump-k2.json")
    jumper, steady = address("k2-jumper"), address("k2-steady")
    chain.post_features([path], env.chain.rpc_url, subjects=[jumper, steady], deployments_dir=env.ddir)
    [s] = chain.submit([path], env.chain.rpc_url, subjects=[jumper, steady], deployments_dir=env.ddir)
    updates = [(e["borrower"], e["newRateBps"]) for e in s.effects if e["event"] == "RateUpdated"]
    assert updates == [(jumper, 800 + LENDING_TERMS["maxRateStepBps"]), (steady, 950)]
    [limited] = [e for e in s.effects if e["event"] == "RateStepLimited"]
    assert limited["borrower"] == jumper and limited["targetRateBps"] > 1600


# --------------------------------------------------------------------------------------------- publishers


def test_revoking_a_publisher_voids_its_postings(env):
    gate = env.gate.gate.functions
    oracle = env.w3.eth.accounts[6]
    env.chain.transact(gate.setFeaturePublisher(oracle, True), "allow")
    first_id = gate.publisherIdOf(oracle).call()
    val, wes = address("revoked-val"), address("kept-wes")
    proof = prove(env, "credit", PD_HALF)
    post(env, val, proof, sender=oracle)
    post(env, wes, proof)  # by the deployer, another publisher
    env.chain.transact(gate.setFeaturePublisher(oracle, False), "disallow")
    revoked = {"subject": "0x" + address_subject(val).hex(), "publisherId": first_id}
    expect_revert(lambda: send(env, proof, [val]), "PublisherRevoked", **revoked)
    expect_revert(lambda: post(env, val, proof, sender=oracle), "NotFeaturePublisher", account=oracle)
    assert send(env, proof, [wes]).effects[0]["newRateBps"] == 950  # other publishers' postings stand

    # Allowed again, under a new id: its old postings stay void; new ones act.
    env.chain.transact(gate.setFeaturePublisher(oracle, True), "allow again")
    assert gate.publisherIdOf(oracle).call() != first_id and not gate.isActivePublisherId(first_id).call()
    expect_revert(lambda: send(env, proof, [val]), "PublisherRevoked", **revoked)
    post(env, val, proof, sender=oracle)
    assert send(env, proof, [val]).effects[0]["newRateBps"] == 950


def test_a_posting_can_be_withdrawn_before_it_is_acted_on(env):
    xia, yul = address("withdrawn-xia"), address("consumed-yul")
    proof = prove(env, "credit", PD_HALF)
    post(env, xia, proof)
    post(env, yul, proof)
    send(env, proof, [yul])
    outsider = env.w3.eth.accounts[7]
    expect_revert(
        lambda: env.chain.transact(env.gate.gate.functions.withdrawFeatures(address_subject(xia)), "withdraw",
                                   sender=outsider),
        "NotFeaturePublisher",
        account=outsider,
    )
    posted_at = env.gate.gate.functions.subjectRecord(address_subject(xia)).call()[1]
    [tx] = chain.withdraw_features("credit", env.chain.rpc_url, subjects=[xia], deployments_dir=env.ddir)
    [event] = env.gate.gate.events.FeaturesWithdrawn().process_receipt(env.w3.eth.get_transaction_receipt(tx))
    assert event["args"]["postedAt"] == posted_at and event["args"]["publisher"] == env.chain.account
    subject = "0x" + address_subject(xia).hex()
    expect_revert(lambda: send(env, proof, [xia]), "NoFeaturesPosted", subject=subject)
    for who in (xia, yul):  # nothing left to withdraw: withdrawn, or already acted on
        expect_revert(
            lambda w=who: chain.withdraw_features("credit", env.chain.rpc_url, subjects=[w], deployments_dir=env.ddir),
            "NoOpenPosting",
        )
    assert rate(env, xia) == LENDING_TERMS["initialRateBps"]


def test_raising_the_feature_age_does_not_revive_stale_postings(env):
    """Rule: a posting once stale stays stale. Raising the limit extends the postings fresh at that moment;
    lowering it applies at once."""
    gate = env.gate.gate.functions
    old, fresh = address("stale-zed"), address("fresh-amy")
    proof = prove(env, "credit", PD_HALF)
    post(env, old, proof)
    advance_time(env.w3, MAX_AGE + 1)
    post(env, fresh, proof)
    receipt = env.chain.transact(gate.setMaxFeatureAge(2 * MAX_AGE), "raise")
    try:
        [event] = env.gate.gate.events.MaxFeatureAgeSet().process_receipt(receipt)
        assert event["args"]["maxFeatureAge"] == 2 * MAX_AGE
        assert event["args"]["staleBefore"] == gate.staleBefore().call() > 0
        expect_revert(lambda: send(env, proof, [old]), "StaleFeatures", maxFeatureAge=2 * MAX_AGE)
        advance_time(env.w3, MAX_AGE + 1)  # older than the old limit, within the new one
        assert send(env, proof, [fresh]).effects[0]["newRateBps"] == 950
    finally:
        env.chain.transact(gate.setMaxFeatureAge(MAX_AGE), "restore")


# ------------------------------------------------------------------------------------------------ owners


def test_ownership_cannot_be_renounced(env):
    """Pause then renounce would brick a gate (no one could unpause it); every owned contract refuses."""
    gate = env.gate.gate.functions
    env.chain.transact(gate.pause(), "pause")
    try:
        for contract in (env.gate.gate, env.registry):
            expect_revert(lambda c=contract: env.chain.transact(c.functions.renounceOwnership(), "renounce"),
                          "OwnershipCannotBeRenounced")
            assert contract.functions.owner().call() == env.chain.account
    finally:
        env.chain.transact(gate.unpause(), "unpause")
    assert not gate.paused().call()


# ---------------------------------------------------------------------------------------------- verifiers

GARBAGE_VERIFIER = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// A registered verifier that misbehaves in the chosen way, whatever it is asked.
contract GarbageVerifier {
    uint256 public mode;
    uint256 public calls;

    function setMode(uint256 mode_) external {
        mode = mode_;
    }

    fallback() external {
        uint256 m = mode;
        if (m == 4) calls += 1; // a state change: only possible if called with CALL
        assembly {
            switch m
            case 0 { return(0, 0) } // no return data
            case 1 { mstore(0, 2) return(0, 32) } // a word that is not a bool
            case 2 { mstore(0, 1) return(0, 31) } // a short word
            case 3 { mstore(0, 1) return(0, 64) } // true, and more
            case 4 { mstore(0, 1) return(0, 32) } // true, after writing state
            case 5 { revert(0, 0x100000) } // a megabyte of revert data
            case 6 { for {} 1 {} {} } // burns all the gas it is given
            default { mstore(0, 1) return(0, 32) } // a well-formed true
        }
    }
}
"""
GARBAGE_MODES = {0: "no return data", 1: "not a bool", 2: "short word", 3: "extra bytes", 4: "writes state",
                 5: "huge revert data", 6: "out of gas"}
WELL_FORMED_TRUE = 7


def test_a_misbehaving_verifier_ends_in_proof_rejected(env):
    """The verifier is called with STATICCALL and only exactly one word equal to 1 accepts: every other
    answer, however malformed, is the gate's ProofRejected, never a revert escaping it or an acceptance."""
    art = evm.compile_solidity({"GarbageVerifier.sol": GARBAGE_VERIFIER}, warnings_are_errors=False)["GarbageVerifier"]
    deployed = env.chain.deploy(art, [])
    garbage = env.chain.contract(deployed.address, art["abi"])
    credit = env.registry.functions.model(env.a.model_id).call()
    receipt = env.chain.transact(
        env.registry.functions.register(deployed.address, H, H, credit[2], credit[3], bytes(32)), "register")
    model_id = env.registry.events.ModelRegistered().process_receipt(receipt)[0]["args"]["modelId"]
    gate = env.gate.gate.functions
    env.chain.transact(gate.acceptModel(model_id, 0), "accept the garbage verifier's model")
    try:
        bea = address("garbage-bea")
        proof = prove(env, "credit", PD_HALF)
        post(env, bea, proof)
        for mode, what in GARBAGE_MODES.items():
            env.chain.transact(garbage.functions.setMode(mode), f"mode {what}")
            err = expect_revert(lambda: send(env, proof, [bea], model_id=model_id), "ProofRejected")
            assert err.error_args == {"modelId": model_id}, what
        assert garbage.functions.calls().call() == 0 and rate(env, bea) == LENDING_TERMS["initialRateBps"]
        # The harness itself: a verifier answering exactly `true` is acted on.
        env.chain.transact(garbage.functions.setMode(WELL_FORMED_TRUE), "mode true")
        assert send(env, proof, [bea], model_id=model_id).effects[0]["newRateBps"] == 950
    finally:
        env.chain.transact(gate.dropModel(model_id), "drop")


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
