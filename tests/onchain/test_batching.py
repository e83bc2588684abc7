"""Many inferences per proof, on a real anvil with real proofs: a K-slot proof binds each slot to its own
borrower, and tampering with any one slot's instances sinks the whole submission. Hashed inputs: the
publisher's commitment is the Poseidon hash of the borrower's quantized features, computed off-chain exactly
as the circuit computes it."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
from onchain_helpers import address, address_subject, expect_revert, load, salt_for

from pipeline import chain

pytestmark = pytest.mark.slow

LENDING_TERMS = {"baseRateBps": 200, "slopeBps": 1500, "maxRateStepBps": 300, "initialRateBps": 800}
# The stand-ins' PD = sigmoid(x0 + x1/2 - x2/2 + x3/4) at scale 7.
PD_HALF = [0.0, 0.0, 0.0, 0.0]  # -> 950 bp
PD_MID = [0.25, 0.0, 0.0, 0.0]  # -> 1043 bp
RATE_HALF, RATE_MID = 950, 200 + 1500 * 72 // 128


@pytest.fixture(scope="module")
def lending(anvil, circuits, tmp_path_factory):
    """Lending gates for the two K=2 stand-ins: public features in one [2, 4] tensor (credit_k2), and
    private features, one Poseidon hash per borrower, with private weights (credit_hashed_k2)."""
    ddir = tmp_path_factory.mktemp("batching") / "deployments"
    c = chain.Chain(anvil.rpc_url)
    for name in ("credit_k2", "credit_hashed_k2"):
        chain.deploy(circuits[name].dir, anvil.rpc_url, "lending", deployments_dir=ddir, terms=LENDING_TERMS)
    proofs = tmp_path_factory.mktemp("batching-proofs")
    return SimpleNamespace(
        chain=c,
        ddir=ddir,
        circuits=circuits,
        public=chain.open_gate(c, "credit_k2", ddir),
        hashed=chain.open_gate(c, "credit_hashed_k2", ddir),
        public_proof=load(circuits["credit_k2"].prove([PD_HALF + PD_MID], proofs / "public.json")),
        hashed_proof=load(circuits["credit_hashed_k2"].prove([PD_HALF, PD_MID], proofs / "hashed.json")),
    )


def instances(proof: dict) -> list[int]:
    return [int(x, 16) for x in proof["calldata"]["instances"]]


def submit(env, handle, proof: dict, borrowers: list[str], edited: list[int] | None = None):
    calldata = dict(proof["calldata"])
    if edited is not None:
        calldata["instances"] = [f"0x{v:064x}" for v in edited]
    return chain.submit_calldata(handle, calldata, [address_subject(b) for b in borrowers])


def post_commitments(env, handle, borrowers: list[str], commitments: list[bytes]) -> None:
    for who, commitment in zip(borrowers, commitments, strict=True):
        env.chain.transact(handle.gate.functions.postFeatures(address_subject(who), commitment), "post")


def rate(handle, borrower: str) -> int:
    return handle.gate.functions.rateOf(borrower).call()


def edit(values: list[int], index: int) -> list[int]:
    out = list(values)
    out[index] += 1
    return out


def test_one_rows_instance_tampered_sinks_the_whole_k_batch(lending):
    """Public features: changing one input of the second borrower's row breaks that row's binding; changing
    its output breaks the proof. Either way neither borrower's rate moves."""
    env, handle, proof = lending, lending.public, lending.public_proof
    ann, ben = address("k-ann"), address("k-ben")
    post_commitments(env, handle, [ann, ben], chain.slot_commitments(instances(proof), handle.layout))
    layout, original = handle.layout, instances(proof)
    second_row_input = layout["inputsPerSlot"]  # instances: row 0's inputs, row 1's inputs, then outputs
    second_row_output = 2 * layout["inputsPerSlot"] + 1

    expect_revert(
        lambda: submit(env, handle, proof, [ann, ben], edit(original, second_row_input)),
        "FeatureCommitmentMismatch",
        subject="0x" + address_subject(ben).hex(),
    )
    expect_revert(
        lambda: submit(env, handle, proof, [ann, ben], edit(original, second_row_output)),
        "ProofRejected",
        modelId=handle.model_id,
    )
    assert rate(handle, ann) == rate(handle, ben) == LENDING_TERMS["initialRateBps"]

    s = submit(env, handle, proof, [ann, ben])
    assert [(e["borrower"], e["newRateBps"]) for e in s.effects] == [(ann, RATE_HALF), (ben, RATE_MID)]


def test_hashed_inputs_bind_each_row_to_its_borrowers_commitment(lending):
    """Private features: the proof carries one Poseidon hash per row. The publisher computes the same hash
    from the raw features (feature_commitment); tampering with one row's hash or output is refused."""
    env, handle, proof = lending, lending.hashed, lending.hashed_proof
    c = env.circuits["credit_hashed_k2"]
    cal, dee = address("k-cal"), address("k-dee")
    posted = [chain.feature_commitment(c.dir, x, salt_for(x)) for x in (PD_HALF, PD_MID)]
    # What the oracle computes off-chain is what the circuit hashed: the proof's first two instances.
    assert [int(h, 16) for h in posted] == instances(proof)[:2]
    post_commitments(env, handle, [cal, dee], [bytes.fromhex(h[2:]) for h in posted])

    original = instances(proof)
    expect_revert(
        lambda: submit(env, handle, proof, [cal, dee], edit(original, 1)),
        "FeatureCommitmentMismatch",
        subject="0x" + address_subject(dee).hex(),
    )
    expect_revert(
        lambda: submit(env, handle, proof, [cal, dee], edit(original, len(original) - 1)),
        "ProofRejected",
        modelId=handle.model_id,
    )
    # A colluding publisher posting the edited hash gets past the binding, not past the verifier.
    forged = edit(original, 1)
    post_commitments(env, handle, [dee], [forged[1].to_bytes(32, "big")])
    expect_revert(lambda: submit(env, handle, proof, [cal, dee], forged), "ProofRejected")
    assert rate(handle, cal) == rate(handle, dee) == LENDING_TERMS["initialRateBps"]

    post_commitments(env, handle, [dee], [bytes.fromhex(posted[1][2:])])
    s = submit(env, handle, proof, [cal, dee])
    assert [(e["borrower"], e["newRateBps"]) for e in s.effects] == [(cal, RATE_HALF), (dee, RATE_MID)]


def test_hashed_input_proof_against_the_wrong_commitment(lending):
    """The borrower's posted commitment is of other features (say, last month's): the proof about this
    month's features does not match it."""
    env, handle, proof = lending, lending.hashed, lending.hashed_proof
    c = env.circuits["credit_hashed_k2"]
    eve, fox = address("k-eve"), address("k-fox")
    mine, other = (chain.feature_commitment(c.dir, x, salt_for(x)) for x in (PD_HALF, PD_MID))
    post_commitments(env, handle, [eve, fox], [bytes.fromhex(other[2:]), bytes.fromhex(other[2:])])
    digest = handle.gate.functions.commitmentDigest
    err = expect_revert(
        lambda: submit(env, handle, proof, [eve, fox]),
        "FeatureCommitmentMismatch",
        subject="0x" + address_subject(eve).hex(),
    )
    assert err.error_args["posted"] == "0x" + digest(bytes.fromhex(other[2:])).call().hex()
    assert err.error_args["proven"] == "0x" + digest(bytes.fromhex(mine[2:])).call().hex()


def test_one_borrower_in_two_slots_acts_once(lending):
    """A batch's last proof is padded by repeating its last row: the borrower then fills two slots with the
    same features, one posting, and is acted on once (its first slot), not once per slot."""
    env, handle = lending, lending.hashed
    c = env.circuits["credit_hashed_k2"]
    gil = address("k-gil")
    padded = load(c.prove([PD_MID, PD_MID], env.ddir.parent / "padded.json"))
    post_commitments(env, handle, [gil], [bytes.fromhex(chain.feature_commitment(c.dir, PD_MID, salt_for(PD_MID))[2:])])
    s = submit(env, handle, padded, [gil, gil])
    assert [(e["borrower"], e["newRateBps"]) for e in s.effects] == [(gil, RATE_MID)]
    assert rate(handle, gil) == RATE_MID
    expect_revert(lambda: submit(env, handle, padded, [gil, gil]), "PostingAlreadyConsumed")


def zkinfer(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True)


def test_oracle_computes_commitments_with_the_cli(circuits):
    """`zkinfer commitment DIR X1,... --salt S`: what the publisher posts, with usage errors (exit 2) for bad
    features and a missing or malformed salt; `zkinfer salt` makes fresh salts."""
    c = circuits["credit_hashed_k2"]
    salt = salt_for(PD_MID)
    ok = zkinfer("commitment", c.dir, ",".join(str(x) for x in PD_MID), "--salt", salt)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == chain.feature_commitment(c.dir, PD_MID, salt)
    bad = zkinfer("commitment", c.dir, "0.25,0,zero,0", "--salt", salt)
    assert bad.returncode == 2 and "feature 3 is not a number: 'zero'" in bad.stderr
    short = zkinfer("commitment", c.dir, "0.25,0", "--salt", salt)
    assert short.returncode == 2 and "takes 4 features per subject, got 2" in short.stderr
    unsalted = zkinfer("commitment", c.dir, "0.25,0,0,0")
    assert unsalted.returncode == 2 and "no salt" in unsalted.stderr
    malformed = zkinfer("commitment", c.dir, "0.25,0,0,0", "--salt", "0x1234")
    assert malformed.returncode == 2 and "is not 0x and 32 hex digits" in malformed.stderr
    assert "Traceback" not in bad.stderr
    for r in (short, unsalted, malformed):
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    fresh = zkinfer("salt", "-n", "3")
    salts = fresh.stdout.split()
    assert fresh.returncode == 0 and len(set(salts)) == 3
    assert all(len(x) == 34 and x.startswith("0x") and int(x, 16) >= 0 for x in salts)


def test_salted_commitment_hides_the_features_and_the_gate_binds_the_salt(lending, tmp_path):
    """A hashed input's commitment is Poseidon over the quantized features and the subject's salt: the proof's
    hash instance equals the publisher's `feature_commitment(features, salt)`, the same features under
    another salt give an unrelated commitment, and neither is the unsalted hash a guesser would compute.
    On chain: the salted posting is accepted, a proof of the same features under another salt is refused."""
    import ezkl

    from pipeline import manifest
    from pipeline.felt import quantize

    env, handle = lending, lending.hashed
    c = env.circuits["credit_hashed_k2"]
    features = [PD_MID, PD_HALF]
    mine = [salt_for(x, "mine") for x in features]
    other = [salt_for(x, "other") for x in features]
    proof = load(c.prove(features, tmp_path / "mine.json", salts=mine))
    theirs = load(c.prove(features, tmp_path / "other.json", salts=other))
    posted = [chain.feature_commitment(c.dir, x, s) for x, s in zip(features, mine, strict=True)]
    assert [int(h, 16) for h in posted] == instances(proof)[:2]
    assert instances(theirs)[:2] == [int(chain.feature_commitment(c.dir, x, s), 16)
                                     for x, s in zip(features, other, strict=True)]
    assert set(instances(theirs)[:2]).isdisjoint(instances(proof)[:2])
    assert proof["outputs"] == theirs["outputs"]  # the salt changes the commitment, never the model's answer
    # The guesser's one hash: the features alone, quantized as the circuit does (what the gate saw before salts).
    scale = manifest.load(c.dir).circuit["input_scales"][0]
    guess = int.from_bytes(bytes.fromhex(ezkl.poseidon_hash(quantize(PD_MID, scale))[0]), "little")
    assert guess not in instances(proof)

    hugo, ivy = address("salt-hugo"), address("salt-ivy")
    post_commitments(env, handle, [hugo, ivy], [bytes.fromhex(h[2:]) for h in posted])
    expect_revert(lambda: submit(env, handle, theirs, [hugo, ivy]), "FeatureCommitmentMismatch",
                  subject="0x" + address_subject(hugo).hex())
    s = submit(env, handle, proof, [hugo, ivy])
    assert [(e["borrower"], e["newRateBps"]) for e in s.effects] == [(hugo, RATE_MID), (ivy, RATE_HALF)]


def test_a_hashed_input_without_its_salt_is_refused(circuits, tmp_path):
    """`zkinfer prove` on a hashed-input circuit: an input file without a salt, or with a malformed one, is a
    one-line usage error naming the file (exit 2); so is a batch CSV row, which fails alone."""
    import json

    c = circuits["credit_hashed_k2"]
    no_salt = tmp_path / "no-salt.json"
    no_salt.write_text(json.dumps({"input_data": [PD_HALF, PD_MID]}))
    r = zkinfer("prove", c.dir, no_salt, "--out", tmp_path / "p.json")
    assert r.returncode == 2 and "no-salt.json: no salt" in r.stderr and "Traceback" not in r.stderr
    one = tmp_path / "one-salt.json"
    one.write_text(json.dumps({"input_data": [PD_HALF, PD_MID], "salt": salt_for(PD_HALF)}))
    r = zkinfer("prove", c.dir, one, "--out", tmp_path / "p.json")
    assert r.returncode == 2 and "one salt per inference (2)" in r.stderr
    bad = tmp_path / "bad-salt.json"
    bad.write_text(json.dumps({"input_data": [PD_HALF, PD_MID], "salt": [salt_for(PD_HALF), "0xzz"]}))
    r = zkinfer("prove", c.dir, bad, "--out", tmp_path / "p.json")
    assert r.returncode == 2 and "bad-salt.json salt[1]: salt '0xzz' is not 0x and 32 hex digits" in r.stderr
    assert not (tmp_path / "p.json").exists()
    salts = [salt_for(PD_HALF), salt_for(PD_MID)]
    good = tmp_path / "salted.json"
    good.write_text(json.dumps({"input_data": [PD_HALF, PD_MID], "salt": salts}))
    r = zkinfer("prove", c.dir, good, "--out", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    proof = (tmp_path / "p.json").read_text()
    assert not any(x[2:] in proof or str(int(x, 16)) in proof for x in salts)  # the salt stays off the file
    assert [int(v, 16) for v in json.loads(proof)["calldata"]["instances"][:2]] == [
        int(chain.feature_commitment(c.dir, x, salt), 16) for x, salt in zip([PD_HALF, PD_MID], salts, strict=True)]
    assert zkinfer("verify", c.dir, tmp_path / "p.json").returncode == 0

    from pipeline.jobs.sources import read_inputs
    from pipeline.prove import Prover

    prover = Prover(c.dir)
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("id,a,b,c,d,salt\n"
                        f"ok,0,0,0,0,{salt_for(PD_HALF)}\n"
                        "missing,0,0,0,0,\n"
                        "short,0,0,0,0,0xabc\n")
    specs = list(read_inputs(csv_path, prover.manifest.circuit_id, prover.parse_row))
    assert specs[0].error is None and specs[0].input_data["salt"] == salt_for(PD_HALF)
    assert "rows.csv line 3: salt '' is not 0x and 32 hex digits" in specs[1].error
    assert "rows.csv line 4: salt '0xabc'" in specs[2].error
    no_column = tmp_path / "nosalt.csv"
    no_column.write_text("a,b,c,d\n0,0,0,0\n")
    from pipeline.errors import UsageError

    with pytest.raises(UsageError, match="no 'salt' column"):
        list(read_inputs(no_column, prover.manifest.circuit_id, prover.parse_row))


def test_hashed_inputs_need_one_input_per_subject(one_hash_k2):
    """One [2, 4] input with hashed visibility: one Poseidon hash for both borrowers, which no borrower's
    commitment can match. Refused at deploy (before any transaction), with what to do instead."""
    from pipeline import layout, manifest
    from pipeline.errors import UsageError

    with pytest.raises(UsageError, match=r"2 inference\(s\) per proof but 1 input hash\(es\).*--split-inputs"):
        layout.registry_layout(manifest.load(one_hash_k2.dir))
