"""Acting on proved postings: check each against the gate's record, submit, and record what happened.

Before any transaction the node reads each subject's record on the gate (one call): a posting that is no
longer the subject's latest (replaced or withdrawn), was consumed by someone else, or is older than the
gate's `maxFeatureAge` is settled without spending gas. The gate re-checks all of it in the transaction,
so these reads only save gas; they decide nothing the gate would not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .. import prooffile
from ..errors import ZkinferError
from . import store as st

log = logging.getLogger("zkinfer.node")

CONSUMED_PUBLISHER_ID = 0  # InferenceGate.CONSUMED: a posting's publisher id once it was acted on
DIGEST_BYTES = 24          # InferenceGate.commitmentDigest: the commitment's low 192 bits
OPEN = "open"
_ELSEWHERE = {"PostingAlreadyConsumed"}
_SUPERSEDED = {"FeatureCommitmentMismatch", "NoFeaturesPosted", "PostingWithdrawn"}
_STALE = {"StaleFeatures"}
_HOLD = {"ModelSuspended", "EnforcedPause"}  # the model (or the whole gate) is held: try again later


def _subject_bytes(p: st.PostingRow) -> bytes:
    return bytes.fromhex(p.subject[2:])


def gate_verdict(node, p: st.PostingRow, now: int) -> tuple[str, str | None]:
    """What the gate's record says of a posting: OPEN, or a settled state with the reason."""
    h = node.handle
    digest, posted_at, publisher_id, _ = h.chain.call(h.gate.functions.subjectRecord(_subject_bytes(p)),
                                                      f"reading subject {p.subject}'s record")
    if posted_at != p.posted_at or bytes(digest) != bytes.fromhex(p.commitment[2:])[-DIGEST_BYTES:]:
        why = "withdrawn" if posted_at in (0, p.posted_at) else f"replaced by a posting at {posted_at}"
        return st.SUPERSEDED, why
    if publisher_id == CONSUMED_PUBLISHER_ID:
        return st.ELSEWHERE, "acted on by another submitter"
    if now - posted_at > node.max_feature_age():
        return st.STALE, f"older than the gate's maxFeatureAge ({node.max_feature_age()} s) before it was proven"
    return OPEN, None


@dataclass
class Planned:
    """One transaction: a proof and the postings it acts on, one per real slot (solo: one, in every slot)."""

    node: object
    postings: list[st.PostingRow]
    proof_path: Path | None          # None: a solo proof, made when sent
    solo: bool = False

    def _subjects(self, proof: prooffile.ProofFile) -> list[bytes]:
        k = self.node.slot_count
        if self.solo:
            return [_subject_bytes(self.postings[0])] * k
        words = [_subject_bytes(p) for p in self.postings]
        return words + words[-1:] * (k - len(words))  # padding slots repeat the last real row and its subject

    def _proof(self) -> Path:
        if self.proof_path is not None:
            return self.proof_path
        p = self.postings[0]
        path = self.node.dir / "solo" / f"{p.label}.json"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            log.info("proving posting %d alone (its pack's other postings are settled)", p.id)
            self.node.solo_prover().prove_rows([p.row], out_path=path, where=p.label)
        return path

    def send(self, outcomes: dict[str, int]) -> int:
        from ..chain import ContractRevertError, submit_calldata

        node, ids = self.node, [p.id for p in self.postings]
        try:
            path = self._proof()
        except ZkinferError as e:
            for p in self.postings:
                _settle(node, p, st.FAILED, f"proving it alone failed: {e.message}", outcomes)
            return 0
        proof = prooffile.load(path)
        node.store.count_attempt(ids)
        try:
            sub = submit_calldata(node.handle, proof.calldata, self._subjects(proof), label=self.postings[0].label)
        except ContractRevertError as e:
            _refused(node, self.postings, e, outcomes)
            return 0
        # Any other error (no receipt: the transaction may or may not have landed) leaves the postings
        # `submitting`; the next pass asks the chain (`reconcile`) before anything is sent again.
        acted_at = node.handle.chain.w3.eth.get_block(sub.block_number)["timestamp"]
        rel = str(path.relative_to(node.dir))
        for p in self.postings:
            node.store.update(p.id, st.ACTED, proof_path=rel, submit_tx=sub.transaction_hash, gas_used=sub.gas_used,
                              effects=_effects_for(sub.effects, p), acted_block=sub.block_number, acted_at=acted_at)
            outcomes[st.ACTED] = outcomes.get(st.ACTED, 0) + 1
        log.info("acted on %d posting(s) in %s (gas %d)", len(self.postings), sub.transaction_hash, sub.gas_used)
        return len(self.postings)


def _effects_for(effects: list[dict], p: st.PostingRow) -> list[dict]:
    address = "0x" + p.subject[-40:]
    own = [e for e in effects if str(e.get("borrower", "")).lower() == address]
    return own or [e for e in effects if "borrower" not in e]


def _settle(node, p: st.PostingRow, state: str, reason: str | None, outcomes: dict[str, int]) -> None:
    node.store.update(p.id, state, reason=reason)
    outcomes[state] = outcomes.get(state, 0) + 1
    (log.warning if state in st.PROBLEM_STATES else log.info)("posting %d (subject %s): %s%s", p.id, p.subject,
                                                              state, f": {reason}" if reason else "")


def _refused(node, postings: list[st.PostingRow], e, outcomes: dict[str, int]) -> None:
    """The gate refused a submission: settle the posting it names, put the others back in the queue."""
    name = e.error_name or "reverted"
    named = (e.error_args or {}).get("subject")
    named = named.lower() if isinstance(named, str) else None
    if name in _HOLD:
        node.suspended = True
        for p in postings:
            node.store.update(p.id, st.QUEUED, reason=f"held: the gate answered {name}")
        return
    state = (st.ELSEWHERE if name in _ELSEWHERE else st.SUPERSEDED if name in _SUPERSEDED
             else st.STALE if name in _STALE else st.FAILED)
    for p in postings:
        if state == st.FAILED or named is None or p.subject == named:
            _settle(node, p, state, f"the gate refused it: {e.message}", outcomes)
        else:
            node.store.update(p.id, st.QUEUED, reason=f"its pack was refused for subject {named}: {name}")


def plan_submissions(node, ready: list[st.PostingRow], jobs: dict) -> list[Planned]:
    """The transactions for proved postings: each checked against the gate first (see the module doc);
    K-slot packs whole when every real slot's posting is open, the rest alone."""
    now = node.handle.chain.latest_timestamp()
    open_ = []
    for p in ready:
        verdict, why = gate_verdict(node, p, now)
        if verdict == OPEN:
            open_.append(p)
        else:
            _settle(node, p, verdict, why, {})
    jobs_dir = node.dir / "jobs"
    if node.slot_count == 1:  # a one-slot proof is about its features only: any posting of them may use it
        return [Planned(node, [p], jobs_dir / jobs[p.label].proof_path) for p in open_]
    plans, by_proof = [], {}
    for p in open_:
        by_proof.setdefault(jobs[p.label].proof_path, []).append(p)
    for rel, group in by_proof.items():
        proof = prooffile.load(jobs_dir / rel)
        members = [s for s in proof.slots if not s.padding]
        taken: list[st.PostingRow] = []
        for slot in members:
            p = next((q for q in group if jobs[q.label].id == slot.job_id and q not in taken), None)
            if p is None:
                break
            taken.append(p)
        if len(taken) == len(members):
            plans.append(Planned(node, taken, jobs_dir / rel))
        else:
            taken = []
        plans += [Planned(node, [p], None, solo=True) for p in group if p not in taken]
    return plans


def reconcile(node, stuck: list[st.PostingRow]) -> None:
    """Postings left `submitting` (the node was killed, or a receipt never came): acted on by this node's
    account (its StatementConsumed transaction names the subject), by someone else, or still open (queued
    again). Never sends a transaction."""
    h = node.handle
    w3 = h.chain.w3
    now = h.chain.latest_timestamp()
    for p in stuck:
        verdict, why = gate_verdict(node, p, now)
        if verdict == OPEN:
            node.store.update(p.id, st.QUEUED, reason="its submission did not land; queued again")
            continue
        if verdict != st.ELSEWHERE:
            node.store.update(p.id, verdict, reason=why)
            continue
        ours = _our_action(node, p)
        if ours is None:
            node.store.update(p.id, st.ELSEWHERE, reason=why)
            continue
        tx_hash, receipt = ours
        node.store.update(p.id, st.ACTED, reason="recovered after a restart", submit_tx=tx_hash,
                          gas_used=receipt.gasUsed, acted_block=receipt.blockNumber,
                          acted_at=w3.eth.get_block(receipt.blockNumber)["timestamp"])
        node.store.incident("recovered", f"posting {p.id}: this node's {tx_hash} had acted on it before the restart")


def _our_action(node, p: st.PostingRow):
    """This node's transaction that consumed the posting, if any: (tx hash, receipt)."""
    h = node.handle
    w3, account = h.chain.w3, h.chain.account
    logs = h.gate.events.StatementConsumed().get_logs(from_block=p.block_number,
                                                      argument_filters={"submitter": account})
    subject = _subject_bytes(p)
    for e in logs:
        tx = w3.eth.get_transaction(e["transactionHash"])
        _, args = h.gate.decode_function_input(tx["input"])
        if subject in [bytes(s) for s in args.get("subjects", [])]:
            return "0x" + bytes(e["transactionHash"]).hex(), w3.eth.get_transaction_receipt(e["transactionHash"])
    return None
