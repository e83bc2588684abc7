"""The gate contracts on a real anvil with real ezkl proofs: what takes effect, once, and every way a
submission is refused, each with its own custom error. Lending here; the bond in test_bond.py."""

from __future__ import annotations

import json

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
    post_hashed,
    prove,
    rate,
    send,
)

from pipeline import chain, evm

pytestmark = pytest.mark.slow

# ------------------------------------------------------------------------------------------ what takes effect


def test_valid_proof_sets_the_rate_exactly_once(env):
    alice = address("alice")
    proof = prove(env, "credit", PD_HALF)
    post(env, alice, proof)
    s = send(env, proof, [alice])
    assert s.effects == [
        {
            "event": "RateUpdated",
            "borrower": alice,
            "newRateBps": 950,
        }
    ]
    assert rate(env, alice) == 950
    record = env.gate.gate.functions.subjectRecord(address_subject(alice)).call()
    assert record[2] == 0  # publisherId: the posting is consumed

    # The same proof again, and a fresh proof (other bytes) of the same statement: both refused.
    consumed = {"subject": "0x" + address_subject(alice).hex(), "postedAt": record[1]}
    expect_revert(lambda: send(env, proof, [alice]), "PostingAlreadyConsumed", **consumed)
    fresh = prove(env, "credit", PD_HALF, label="fresh")
    assert fresh["calldata"]["proof"] != proof["calldata"]["proof"]
    assert fresh["calldata"]["instances"] == proof["calldata"]["instances"]
    expect_revert(lambda: send(env, fresh, [alice]), "PostingAlreadyConsumed", **consumed)
    assert rate(env, alice) == 950


def test_reposted_features_are_a_new_round(env):
    bob = address("bob")
    proof = prove(env, "credit", PD_HALF)
    post(env, bob, proof)
    first = send(env, proof, [bob])
    expect_revert(lambda: send(env, proof, [bob]), "PostingAlreadyConsumed")
    advance_time(env.w3, 60)  # a later round (a re-post in the same second is a new posting too, with the same key)
    post(env, bob, proof)  # the publisher observes the same features again later
    second = send(env, proof, [bob])
    assert first.statement_key != second.statement_key  # the key names the posting by its time
    assert second.effects[0]["newRateBps"] == 950 and rate(env, bob) == 950


def test_k_borrowers_in_one_proof(env, circuits):
    d = chain.deploy(
        circuits["credit_k2"].dir, env.chain.rpc_url, "lending", deployments_dir=env.ddir, terms=LENDING_TERMS
    )
    handle = chain.open_gate(env.chain, "credit_k2", env.ddir)
    path = circuits["credit_k2"].prove([PD_HALF + PD_MID], env.proofs / "k2.json")
    proof = load(path)
    carol, dan = address("carol"), address("dan")
    chain.post_features([path], env.chain.rpc_url, subjects=[carol, dan], deployments_dir=env.ddir)

    expect_revert(
        lambda: send(env, proof, [dan, carol], gate=handle),
        "FeatureCommitmentMismatch",
        subject="0x" + address_subject(dan).hex(),
    )
    expect_revert(
        lambda: send(env, proof, [carol], gate=handle), "SubjectCountMismatch", expected=2, actual=1
    )
    [s] = chain.submit([path], env.chain.rpc_url, subjects=[carol, dan], deployments_dir=env.ddir)
    assert [(e["borrower"], e["newRateBps"]) for e in s.effects] == [(carol, 950), (dan, RATE_MID)]
    assert d.instance_layout == {
        "slots": 2,
        "hashedInputs": False,
        "inputsPerSlot": 4,
        "outputsPerSlot": 1,
        "paramHashes": 0,
    }


def test_private_features_and_weights_through_the_reusable_verifier(env, circuits):
    """Hashed inputs: the commitment is the Poseidon hash, which the publisher computes from raw features.
    Hashed weights: the registry pins their commitment. Forced: ezkl's reusable verifier (deployed once per
    chain)."""
    c = circuits["credit_hashed_k2"]
    d = chain.deploy(
        c.dir,
        env.chain.rpc_url,
        "lending",
        verifier_mode="reusable",
        deployments_dir=env.ddir,
        terms=LENDING_TERMS,
    )
    assert d.verifier.contract_name == "ReusableVerifierAdapter" and d.reusable_verifier is not None
    assert d.verifier_mode == "reusable" and "deploy_reusable_verifier" in d.gas()
    handle = chain.open_gate(env.chain, "credit_hashed_k2", env.ddir)
    features = [PD_HALF, PD_MID]
    proof = load(c.prove(features, env.proofs / "hashed.json"))
    erin, fay = address("erin"), address("fay")
    post_hashed(env, handle, c.dir, [erin, fay], features)
    s = send(env, proof, [erin, fay], gate=handle)
    assert [e["newRateBps"] for e in s.effects] == [950, RATE_MID]

    # The same circuit registered with another weight commitment: proofs carry the real one. Automatic
    # choice: the verifier exceeds EIP-170 even with its key in a data contract, so reusable again.
    wrong = "0x" + "11" * 32
    again = chain.deploy(
        c.dir, env.chain.rpc_url, "lending", deployments_dir=env.ddir, weight_commitment=wrong
    )
    assert again.verifier_mode == "reusable" and again.reusable_verifier is None  # the shared one was reused
    handle2 = chain.open_gate(env.chain, "credit_hashed_k2", env.ddir)
    post_hashed(env, handle2, c.dir, [erin, fay], features)
    expect_revert(
        lambda: send(env, proof, [erin, fay], gate=handle2),
        "WeightCommitmentMismatch",
        modelId=again.model_id,
        registered=wrong,
    )


def test_auto_deploy_picks_split_vk_when_only_it_fits(env, narrow_hashed):
    """One advice column: the standard verifier is just over EIP-170, the split-vk one fits, so deploy puts
    the key's data contract first, then the verifier reading it; the registry and gate see a verifier like
    any other."""
    c = narrow_hashed
    d = chain.deploy(c.dir, env.chain.rpc_url, "lending", deployments_dir=env.ddir, terms=LENDING_TERMS)
    assert d.verifier_mode == "split-vk" and d.verifier.contract_name == "Halo2VerifierSplitVk"
    assert d.reusable_verifier is None and d.vk_data is not None
    assert d.verifier.args == [d.vk_data.address] and d.verifier_runtime_size <= evm.EIP170_MAX_RUNTIME_BYTES
    assert set(d.gas()) >= {"deploy_vk_data", "deploy_verifier", "deploy_gate", "register_model"}

    book = load(env.ddir / "31337.json")
    name = "credit_hashed_k2_c1"
    model = book["models"][name]
    assert model["verifier"] == f"{name}/Halo2VerifierSplitVk" and model["vkData"] == f"{name}/Halo2VerifierVkData"
    assert model["verifierMode"] == "split-vk"
    data_record = book["contracts"][model["vkData"]]
    assert data_record["address"] == d.vk_data.address and data_record["transactionHash"].startswith("0x")
    assert data_record["artifact"].endswith("evm/vk_data.json") and data_record["gasUsed"] == d.vk_data.gas_used
    assert book["contracts"][model["verifier"]]["args"] == [d.vk_data.address]
    assert env.registry.functions.model(d.model_id).call()[0] == d.verifier.address

    handle = chain.open_gate(env.chain, name, env.ddir)
    features = [PD_HALF, PD_MID]
    proof = load(c.prove(features, env.proofs / "narrow.json"))
    gina, hal = address("gina"), address("hal")
    post_hashed(env, handle, c.dir, [gina, hal], features)
    # An edited output instance sinks it (while the postings are open): the verifier behind the gate verifies.
    instances = [int(x, 16) for x in proof["calldata"]["instances"]]
    expect_revert(
        lambda: send(env, proof, [gina, hal], gate=handle, instances=instances[:-1] + [instances[-1] + 1]),
        "ProofRejected",
        modelId=d.model_id,
    )
    s = send(env, proof, [gina, hal], gate=handle)
    assert [e["newRateBps"] for e in s.effects] == [950, RATE_MID]
    print(f"{name}: split-vk verifier {d.verifier_runtime_size} B, verifyProof "
          f"{chain.verification_gas(handle, proof['calldata'])} gas, submit {s.gas_used} gas, deploy {d.gas()}")


# ------------------------------------------------------------------------------------------- what is refused


def test_proof_about_another_subjects_features(env):
    gus, hal = address("gus"), address("hal")
    mine, theirs = prove(env, "credit", PD_HALF), prove(env, "credit", PD_MID)
    post(env, gus, theirs)
    post(env, hal, mine)
    expect_revert(
        lambda: send(env, mine, [gus]), "FeatureCommitmentMismatch", subject="0x" + address_subject(gus).hex()
    )
    expect_revert(lambda: send(env, mine, [address("nobody")]), "NoFeaturesPosted")


def test_stale_features(env):
    ivy = address("ivy")
    proof = prove(env, "credit", PD_HALF)
    post(env, ivy, proof)
    advance_time(env.w3, MAX_AGE + 1)
    expect_revert(lambda: send(env, proof, [ivy]), "StaleFeatures", maxFeatureAge=MAX_AGE)


def test_instances_edited_after_proving(env):
    jay = address("jay")
    proof = prove(env, "credit", PD_HALF)
    post(env, jay, proof)
    instances = [int(x, 16) for x in proof["calldata"]["instances"]]
    lower_pd = instances[:-1] + [instances[-1] - 10]
    expect_revert(
        lambda: send(env, proof, [jay], instances=lower_pd), "ProofRejected", modelId=env.a.model_id
    )
    other_input = [instances[0] + 1] + instances[1:]
    expect_revert(lambda: send(env, proof, [jay], instances=other_input), "FeatureCommitmentMismatch")
    assert rate(env, jay) == 800


def test_proof_of_another_model(env):
    kim = address("kim")
    b_proof = prove(env, "credit_b", PD_HALF)
    post(env, kim, b_proof)
    # Model B's proof under model A's id (same layout, same features): A's verifier refuses it.
    expect_revert(lambda: send(env, b_proof, [kim]), "ProofRejected", modelId=env.a.model_id)
    # Under its own id: this gate does not accept model B.
    expect_revert(
        lambda: send(env, b_proof, [kim], model_id=env.b.model_id), "ModelNotAccepted", modelId=env.b.model_id
    )
    # An inflation proof: refused under its own id, and under A's its instances do not fit A's layout.
    i_proof = prove(env, "inflation", [4.0] * 6)
    expect_revert(lambda: send(env, i_proof, [kim], model_id=env.i.model_id), "ModelNotAccepted")
    expect_revert(
        lambda: send(env, i_proof, [kim]),
        "InstanceCountMismatch",
        modelId=env.a.model_id,
        expected=5,
        actual=7,
    )
    expect_revert(lambda: send(env, b_proof, [kim], model_id=999), "UnknownModel", modelId=999)


def test_revoked_model(env):
    lee = address("lee")
    m = env.registry.functions.model(env.a.model_id).call()
    receipt = env.chain.transact(
        env.registry.functions.register(m[0], m[4], m[5], m[2], m[3], m[6]), "register"
    )
    version = env.registry.events.ModelRegistered().process_receipt(receipt)[0]["args"]["modelId"]
    env.chain.transact(env.gate.gate.functions.acceptModel(version, 0), "accept")
    proof = prove(env, "credit", PD_HALF)
    post(env, lee, proof)
    env.chain.transact(env.registry.functions.revoke(version), "revoke")
    expect_revert(lambda: send(env, proof, [lee], model_id=version), "RevokedModel", modelId=version)
    expect_revert(
        lambda: env.chain.transact(env.registry.functions.revoke(version), "revoke"), "RevokedModel"
    )
    # A model the gate stops accepting.
    env.chain.transact(env.gate.gate.functions.dropModel(version), "drop")
    expect_revert(
        lambda: env.chain.transact(env.gate.gate.functions.dropModel(version), "drop"), "ModelNotAccepted"
    )


def test_paused_gate(env):
    mia = address("mia")
    proof = prove(env, "credit", PD_HALF)
    post(env, mia, proof)
    outsider = env.w3.eth.accounts[3]
    expect_revert(
        lambda: env.chain.transact(env.gate.gate.functions.pause(), "pause", sender=outsider),
        "OwnableUnauthorizedAccount",
        account=outsider,
    )
    env.chain.transact(env.gate.gate.functions.pause(), "pause")
    expect_revert(lambda: send(env, proof, [mia]), "EnforcedPause")
    env.chain.transact(env.gate.gate.functions.unpause(), "unpause")
    assert send(env, proof, [mia]).effects[0]["newRateBps"] == 950


def test_rate_step_beyond_the_limit_moves_one_step_per_posting(env):
    """The circuit breaker clamps toward the target instead of reverting: a borrower whose risk jumps moves
    300 bp per posting (review round) until it reaches the proven PD's rate."""
    ned = address("ned")
    proof = prove(env, "credit", PD_HIGH)
    scale = env.registry.functions.model(env.a.model_id).call()[2]
    pd = int(proof["calldata"]["instances"][-1], 16) * 10**18 // 2**scale
    target = env.gate.gate.functions.targetRateBps(pd).call()
    assert target > 1600
    moves = []
    for _ in range(3):
        post(env, ned, proof)  # each posting is a new round, even within the same second
        effects = send(env, proof, [ned]).effects
        moves.append(effects[0]["newRateBps"])
        limited = [e for e in effects if e["event"] == "RateStepLimited"]
        assert limited == ([{"event": "RateStepLimited", "borrower": ned, "targetRateBps": target}]
                           if moves[-1] != target else [])
    assert moves == [1100, 1400, target] and rate(env, ned) == target


def test_rate_step_is_set_by_the_owner(env):
    gate = env.gate.gate.functions
    outsider = env.w3.eth.accounts[3]
    expect_revert(lambda: env.chain.transact(gate.setMaxRateStep(1000), "step", sender=outsider),
                  "OwnableUnauthorizedAccount", account=outsider)
    expect_revert(lambda: env.chain.transact(gate.setMaxRateStep(0), "step"), "InvalidRateTerms")
    receipt = env.chain.transact(gate.setMaxRateStep(1000), "step")
    assert env.gate.gate.events.MaxRateStepSet().process_receipt(receipt)[0]["args"]["maxRateStepBps"] == 1000
    try:
        oz = address("oz")
        proof = prove(env, "credit", PD_HIGH)
        post(env, oz, proof)
        [effect] = send(env, proof, [oz]).effects  # ~880 bp from 800, within the new step: no RateStepLimited
        assert effect["newRateBps"] > 1600
    finally:
        env.chain.transact(gate.setMaxRateStep(LENDING_TERMS["maxRateStepBps"]), "step")


def test_probability_outside_zero_one(env):
    """A model whose output is not a probability (here the inflation forecast, 4.06) cannot set a rate."""
    handle = env.gate
    env.chain.transact(handle.gate.functions.acceptModel(env.i.model_id, 0), "accept inflation")
    try:
        oli = address("oli")
        proof = prove(env, "inflation", [4.0] * 6)
        post(env, oli, proof, layout=chain.open_gate(env.chain, "inflation", env.ddir).layout)
        expect_revert(
            lambda: send(env, proof, [oli], model_id=env.i.model_id), "ProbabilityOutOfRange", borrower=oli
        )
    finally:
        env.chain.transact(handle.gate.functions.dropModel(env.i.model_id), "drop inflation")


def test_only_publishers_post_and_subjects_are_borrowers(env):
    outsider = env.w3.eth.accounts[4]
    post_fn = env.gate.gate.functions.postFeatures(address_subject(address("pat")), b"\x01" * 32)
    expect_revert(
        lambda: env.chain.transact(post_fn, "post", sender=outsider), "NotFeaturePublisher", account=outsider
    )
    proof = prove(env, "credit", PD_HALF)
    not_an_address = b"\xff" * 32
    # The publisher may post under any subject; lending acts only on borrowers (20-byte addresses).
    [commitment] = chain.slot_commitments([int(x, 16) for x in proof["calldata"]["instances"]], env.gate.layout)
    env.chain.transact(env.gate.gate.functions.postFeatures(not_an_address, commitment), "post")
    fn = env.gate.gate.functions.submit(
        env.a.model_id,
        bytes.fromhex(proof["calldata"]["proof"][2:]),
        [int(x, 16) for x in proof["calldata"]["instances"]],
        [not_an_address],
    )
    expect_revert(lambda: env.chain.transact(fn, "submit"), "InvalidBorrowerSubject")


# ---------------------------------------------------------------------------------------- registry and config


def test_registry_refuses_inconsistent_versions(env):
    reg = env.registry.functions
    verifier = env.a.verifier.address
    h = b"\x01" * 32
    good = (1, False, 4, 1, 0)
    cases = [
        ((env.w3.eth.accounts[5], h, h, 7, good, bytes(32)), "VerifierNotContract"),
        ((verifier, bytes(32), h, 7, good, bytes(32)), "MissingHash"),
        ((verifier, h, h, 65, good, bytes(32)), "OutputScaleTooLarge"),
        ((verifier, h, h, 7, (0, False, 4, 1, 0), bytes(32)), "InvalidInstanceLayout"),
        ((verifier, h, h, 7, (1, True, 4, 1, 0), bytes(32)), "InvalidInstanceLayout"),
        ((verifier, h, h, 7, (1, False, 0, 1, 0), bytes(32)), "InvalidInstanceLayout"),
        ((verifier, h, h, 7, (1, False, 4, 0, 0), bytes(32)), "InvalidInstanceLayout"),
        ((verifier, h, h, 7, (1, True, 0, 1, 1), bytes(32)), "WeightCommitmentRequired"),
        ((verifier, h, h, 7, good, h), "UnexpectedWeightCommitment"),
    ]
    for args, error in cases:
        expect_revert(lambda a=args: env.chain.transact(reg.register(*a), "register"), error)
    outsider = env.w3.eth.accounts[5]
    expect_revert(
        lambda: env.chain.transact(
            reg.register(verifier, h, h, 7, good, bytes(32)), "register", sender=outsider
        ),
        "OwnableUnauthorizedAccount",
    )
    expect_revert(lambda: env.chain.call(reg.activeModel(12345), "read"), "UnknownModel", modelId=12345)
    expect_revert(
        lambda: env.chain.transact(env.gate.gate.functions.acceptModel(env.a.model_id, 1), "accept"),
        "OutputIndexOutOfRange",
        outputIndex=1,
        outputsPerSlot=1,
    )


def test_registry_records_the_circuit(env, circuits):
    """The registry's record of a model version carries its circuit id (content-only, `Manifest.circuit_id`),
    read back through `chain.registered_model` as `zkinfer audit` reads it."""
    from pipeline import manifest

    verifier, active, scale, layout, vk_hash, circuit_id, weights = env.registry.functions.model(env.a.model_id).call()
    man = manifest.load(circuits["credit"].dir)
    assert (verifier, active, scale, tuple(layout)) == (env.a.verifier.address, True, 7, (1, False, 4, 1, 0))
    assert circuit_id.hex() == man.circuit_id
    book = json.loads(env.ddir.joinpath("31337.json").read_text())["models"]["credit"]
    assert vk_hash.hex() == book["vkSha256"] and book["circuitId"] == man.circuit_id
    assert weights == bytes(32)
    record = chain.registered_model(env.chain, env.a.registry_address, env.a.model_id)
    assert record == chain.RegisteredModel(
        model_id=env.a.model_id, verifier=env.a.verifier.address, active=True, output_scale=7,
        instance_layout={"slots": 1, "hashedInputs": False, "inputsPerSlot": 4, "outputsPerSlot": 1, "paramHashes": 0},
        vk_sha256=book["vkSha256"], circuit_id=man.circuit_id, weight_commitment=None)
    [event] = env.registry.events.ModelRegistered().get_logs(
        from_block=0, argument_filters={"modelId": env.a.model_id})
    assert event["args"]["circuitId"].hex() == man.circuit_id
