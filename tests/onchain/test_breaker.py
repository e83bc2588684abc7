"""The model breaker on a real anvil with real proofs: a guardian suspends a model version on its gate and a
valid fresh proof is refused (ModelSuspended) until the owner resumes it; strangers cannot suspend; the
lending gate's posting interval holds a subject's next round back (verifier_contracts/README.md)."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from onchain_helpers import (
    LENDING_TERMS,
    PD_HALF,
    address,
    address_subject,
    advance_time,
    expect_revert,
    post,
    prove,
    rate,
    send,
)

from pipeline import chain
from pipeline.cli import main as cli_main

pytestmark = pytest.mark.slow

# anvil's dev accounts 1 and 2 (account 0 deploys and owns the gates)
GUARDIAN_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
STRANGER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
GUARDIAN = Account.from_key(GUARDIAN_KEY).address
STRANGER = Account.from_key(STRANGER_KEY).address
ZERO = "0x" + "00" * 20


def _entry(env, ddir=None) -> dict:
    return chain.load_deployments(env.chain.chain_id, ddir or env.ddir)["models"]["credit"]


def test_a_suspended_model_acts_again_only_once_the_owner_resumes_it(env):
    rpc, kw = env.chain.rpc_url, {"deployments_dir": env.ddir}
    model_id = env.a.model_id
    # On the dev chain, deploy makes the deployer the guardian and sets no posting interval.
    assert (_entry(env)["guardian"], _entry(env)["minPostingInterval"]) == (env.chain.account, 0)
    assert chain.set_guardian("credit", GUARDIAN, rpc, **kw).startswith("0x")
    assert _entry(env)["guardian"] == GUARDIAN

    borrower = address("breaker-ann")
    proof = prove(env, "credit", PD_HALF, label="breaker")
    post(env, borrower, proof)
    expect_revert(lambda: chain.suspend_model("credit", rpc, private_key=STRANGER_KEY, **kw), "NotGuardian",
                  account=STRANGER)
    assert not chain.model_suspended(env.gate)

    tx = chain.suspend_model("credit", rpc, private_key=GUARDIAN_KEY, **kw)
    [event] = env.gate.gate.events.ModelSuspendedBy().process_receipt(env.w3.eth.get_transaction_receipt(tx))
    assert (event["args"]["modelId"], event["args"]["by"]) == (model_id, GUARDIAN)
    assert chain.model_suspended(env.gate) and chain.model_suspended("credit", rpc, **kw)
    assert not chain.model_suspended("credit_b", rpc, **kw)  # another gate's model is untouched
    # A valid, fresh proof about an open posting is refused, and the posting stays open.
    expect_revert(lambda: send(env, proof, [borrower]), "ModelSuspended", modelId=model_id)
    assert rate(env, borrower) == LENDING_TERMS["initialRateBps"]
    expect_revert(lambda: chain.suspend_model("credit", rpc, private_key=GUARDIAN_KEY, **kw),
                  "ModelAlreadySuspended", modelId=model_id)
    expect_revert(lambda: chain.resume_model("credit", rpc, private_key=GUARDIAN_KEY, **kw),
                  "OwnableUnauthorizedAccount", account=GUARDIAN)
    status = chain.breaker_status("credit", rpc, **kw)
    assert (status.suspended, status.accepted, status.guardian, status.owner) == (True, True, GUARDIAN,
                                                                                  env.chain.account)

    chain.resume_model("credit", rpc, **kw)  # the owner (anvil's account 0)
    assert not chain.model_suspended(env.gate)
    expect_revert(lambda: chain.resume_model("credit", rpc, **kw), "ModelNotSuspended", modelId=model_id)
    [effect] = send(env, proof, [borrower]).effects
    assert effect["newRateBps"] == 950 and rate(env, borrower) == 950


def _run(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return ex.value.code, out, err


def test_deploy_sets_the_breaker_and_the_next_round_waits(env, tmp_path, capsys, monkeypatch):
    rpc, ddir = env.chain.rpc_url, tmp_path / "deployments"
    d = chain.deploy(env.circuits["credit"].dir, rpc, "lending", deployments_dir=ddir, terms=LENDING_TERMS,
                     guardian=ZERO, min_posting_interval=600)
    assert (d.summary()["guardian"], d.summary()["minPostingInterval"]) == (None, 600)
    entry = _entry(env, ddir)
    assert (entry["guardian"], entry["minPostingInterval"]) == (None, 600) and "incomplete" not in entry
    handle = chain.open_gate(env.chain, "credit", ddir)

    borrower = address("breaker-bo")
    subject = address_subject(borrower)
    proof = prove(env, "credit", PD_HALF, label="breaker")
    [commitment] = chain.slot_commitments([int(x, 16) for x in proof["calldata"]["instances"]], handle.layout)

    def post_once():
        return env.chain.transact(handle.gate.functions.postFeatures(subject, commitment), "post")

    post_once()
    post_once()  # a correction of a posting nobody acted on never waits
    posted_at = handle.gate.functions.subjectRecord(subject).call()[1]
    chain.submit_calldata(handle, proof["calldata"], [subject])
    expect_revert(post_once, "PostingTooSoon", subject="0x" + subject.hex(), postedAt=posted_at,
                  nextAllowedAt=posted_at + 600)
    advance_time(env.w3, 600)
    post_once()

    # The CLI: status as JSON; a stranger's suspend is a one-line error (exit 1); usage errors exit 2.
    code, out, _ = _run(capsys, "breaker", "status", "credit", "--rpc", rpc, "--deployments", ddir)
    status = json.loads(out)
    assert code == 0 and (status["guardian"], status["suspended"], status["minPostingInterval"]) == (None, False, 600)
    monkeypatch.setenv(chain.PRIVATE_KEY_ENV, STRANGER_KEY)
    code, _, err = _run(capsys, "breaker", "suspend", "credit", "--rpc", rpc, "--deployments", ddir)
    assert code == 1 and f"NotGuardian(account={STRANGER})" in err and "Traceback" not in err
    monkeypatch.delenv(chain.PRIVATE_KEY_ENV)
    code, out, _ = _run(capsys, "breaker", "suspend", "credit", "--rpc", rpc, "--deployments", ddir)  # the owner
    assert code == 0 and out.strip().startswith("0x") and chain.model_suspended(handle)
    code, _, err = _run(capsys, "breaker", "set-guardian", "credit", "not-an-address", "--rpc", rpc,
                        "--deployments", ddir)
    assert code == 2 and "not an address" in err and "Traceback" not in err
    code, _, err = _run(capsys, "deploy", env.circuits["credit"].dir, "--rpc", rpc, "--guardian", "0x12",
                        "--deployments", ddir)
    assert code == 2 and "--guardian" in err and "Traceback" not in err
    code, out, _ = _run(capsys, "breaker", "resume", "credit", "--rpc", rpc, "--deployments", ddir)
    assert code == 0 and not chain.model_suspended(handle)
