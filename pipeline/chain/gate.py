"""Acting on proofs through a deployed gate: feature commitments, subjects, posting features, submitting.

    feature_commitment("circuits/credit_risk", features, salt)         # what the oracle posts for a subject
    post_features(["proof.json"], rpc_url, subjects=[borrower])        # the oracle's part, from proofs
    withdraw_features("credit_risk", rpc_url, subjects=[borrower])     # the oracle takes a posting back
    [s] = submit(["proof.json"], rpc_url, subjects=[borrower])         # s.effects: the new rate

A gate acts on a proof's slots only if each slot's inputs match the commitment posted for its subject
(`pipeline.layout.slot_commitments`), among its other checks (verifier_contracts/README.md); each posting
is acted on once, whatever the model.
Every proof is read and every subject assigned before a single transaction is sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from eth_utils import to_checksum_address

from .. import blinding as blinding_mod
from .. import layout
from .. import manifest as manifest_mod
from ..errors import ChainError, UsageError
from ..evm.solidity import load_artifact
from ..felt import felt_to_uint256, quantize, word
from ..inputs import to_circuit_values
from ..prooffile import Calldata, ProofFile
from ..prooffile import load as load_proof
from .client import Chain, display
from .deployments import DEFAULT_DEPLOYMENTS_DIR, INCOMPLETE, DeploymentsBook


def feature_commitment(circuit_dir: str | os.PathLike, features: list[float], salt: str | None = None) -> str:
    """What a feature publisher posts for one subject, from the subject's raw features (one slot's
    inputs, flattened) and, for hashed inputs, the subject's secret salt (0x and 32 hex digits, required;
    `pipeline.blinding`): the features quantized as the circuit quantizes them, the salt's elements after
    them, then hashed like `slot_commitments`. Hex, 0x-prefixed."""
    return FeatureCommitter(circuit_dir)(features, salt)


class FeatureCommitter:
    """`feature_commitment` for one circuit, its manifest read once: a prover node checks every posting."""

    def __init__(self, circuit_dir: str | os.PathLike):
        self.manifest = m = manifest_mod.load(circuit_dir)
        self.hashed = layout.registry_layout(m).hashed_inputs
        self.features = layout.features_per_subject(m)
        self._scale = m.circuit["input_scales"][0]
        self._blinding = m.circuit.get("blinding")
        if self.hashed and not self._blinding:
            raise UsageError(f"{m.name} hashes its inputs without a salt (built before salts): rebuild it")

    def __call__(self, features: list[float], salt: str | None = None) -> str:
        import ezkl

        m = self.manifest
        if len(features) != self.features:
            raise UsageError(f"{m.name} takes {self.features} features per subject, got {len(features)}")
        felts = quantize(_as_circuit_takes(m, features), self._scale)
        if self._blinding:
            values = blinding_mod.element_values(blinding_mod.parse_salt(salt, "commitment"), self._blinding,
                                                 self._scale)
            felts += quantize(values, self._scale)
        elif salt is not None:
            raise UsageError(f"{m.name}'s inputs are public: a salt would hide nothing (commitments of public "
                             "inputs are keccak256 of the values)")
        values = [ezkl.poseidon_hash(felts)[0]] if self.hashed else felts
        return "0x" + layout.commitment([felt_to_uint256(f) for f in values], self.hashed).hex()

    def row(self, features: list[float], salt: str | None = None) -> dict:
        """The subject's features as one batch row (`zkinfer batch` JSONL): one flat list per input tensor."""
        return {"input_data": _per_tensor(self.manifest, features), **({"salt": salt} if salt is not None else {})}


def _per_tensor(m: manifest_mod.Manifest, features: list[float]) -> list[list[float]]:
    """One subject's flat features split into its input tensors (one flat list each), in input order."""
    tensors, pos = [], 0
    for n in layout.slot_layout(m.circuit).sizes:
        tensors.append(list(features[pos:pos + n]))
        pos += n
    return tensors


def _as_circuit_takes(m: manifest_mod.Manifest, features: list[float]) -> list[float]:
    """One subject's features in the circuit's units: prescaled raw amounts (`inputs.to_circuit_values`),
    each of the subject's input tensors with its own exponents."""
    prescale = m.circuit.get("input_prescale")
    if not prescale:
        return list(features)
    tensors = _per_tensor(m, features)
    return [v for t in to_circuit_values(tensors, prescale[: len(tensors)]) for v in t]


@dataclass(frozen=True)
class GateHandle:
    """A deployed circuit's gate, as recorded in the deployments file."""

    chain: Chain
    circuit: str
    model_id: int
    consumer: str
    circuit_id: str
    layout: dict
    gate: object  # web3 contract
    verifier: object  # web3 contract


def open_gate(chain: Chain, circuit: str, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR
              ) -> GateHandle:
    """The gate `deploy` made for `circuit` on this chain."""
    book = DeploymentsBook(chain.chain_id, deployments_dir)
    model = book.models.get(circuit)
    dfile = book.path
    if model is None:
        raise UsageError(f"{circuit} is not deployed on chain {chain.chain_id} (no entry in {dfile}): "
                         f"run `zkinfer deploy` first")
    if model.get(INCOMPLETE):
        raise UsageError(f"{circuit}'s deployment on chain {chain.chain_id} did not finish ({model[INCOMPLETE]}; "
                         f"see {dfile}): run `zkinfer deploy` again")
    records = {k: book.contracts[model[k]] for k in ("gate", "verifier")}
    if not chain.has_code(records["gate"]["address"]):
        raise ChainError(f"{dfile} records {circuit}'s gate at {records['gate']['address']}, but there is no "
                         "code there (was the local chain restarted?): deploy again")
    abis = {k: load_artifact(book.artifact(r))["abi"] for k, r in records.items()}
    return GateHandle(chain=chain, circuit=circuit, model_id=model["modelId"], consumer=model["consumer"],
                      circuit_id=model["circuitId"], layout=model["instanceLayout"],
                      gate=chain.contract(records["gate"]["address"], abis["gate"]),
                      verifier=chain.contract(records["verifier"]["address"], abis["verifier"]))


def _proof_gate(chain: Chain, proof: ProofFile, path, deployments_dir) -> GateHandle:
    meta = proof.meta
    handle = open_gate(chain, meta.circuit, deployments_dir)
    if meta.circuit_id != handle.circuit_id:
        raise UsageError(f"{path} proves circuit {meta.circuit} version "
                         f"{meta.circuit_id[:12]}..., "
                         f"but chain {chain.chain_id} has version {handle.circuit_id[:12]}... deployed: "
                         "prove with the deployed circuit, or deploy this one")
    return handle


def subjects_for(handle: GateHandle, given: list[str]) -> list[bytes]:
    """The gate's subjects for one proof's slots: borrowers (lending) or the current period (bond)."""
    slots = handle.layout["slots"]
    if handle.consumer == "bond":
        return [_current_period(handle)] * slots
    if len(given) != slots:
        raise UsageError(f"{handle.circuit}'s proofs cover {slots} borrower(s): give one --subject ADDRESS "
                         f"per slot, got {len(given)}")
    return [_borrower(s) for s in given]


def _current_period(handle: GateHandle) -> bytes:
    return word(handle.chain.call(handle.gate.functions.currentPeriod(), "reading the bond's current period"))


def _borrower(subject: str) -> bytes:
    try:
        return bytes(12) + bytes.fromhex(to_checksum_address(subject)[2:])
    except ValueError:
        raise UsageError(f"subject {subject!r} is not an address (lending subjects are borrowers)") from None


def _take_subjects(handle: GateHandle, subjects: list[str], used: int, proof: ProofFile | None = None,
                   path=None) -> tuple[list[bytes], int]:
    """The next proof's subjects from `subjects`, one per slot in slot order. A proof from `zkinfer batch`
    lists its slots; its padding slots (a short last pack, repeating its last row) take no --subject:
    they repeat the last real slot's subject, the same borrower with the same features again."""
    if handle.consumer == "bond":
        return subjects_for(handle, []), used
    n = handle.layout["slots"]
    padding = sum(bool(s.padding) for s in (proof.slots if proof else None) or [])
    given = subjects[used: used + n - padding]
    if padding and len(given) == n - padding:
        given += given[-1:] * padding
    elif padding:
        raise UsageError(f"{path}: its proof covers {n - padding} borrower(s) ({padding} padding slot(s) repeat "
                         f"the last): give one --subject ADDRESS per borrower, got {len(given)}")
    return subjects_for(handle, given), used + n - padding


@dataclass(frozen=True)
class Posting:
    subject: str
    commitment: str
    posted_at: int  # block timestamp: with the subject, it names the posting (acted on at most once)
    transaction_hash: str
    gas_used: int
    block_number: int = 0


def post_features(proof_paths: list[str | os.PathLike], rpc_url: str, *, subjects: list[str] | None = None,
                  deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR,
                  private_key: str | None = None) -> list[Posting]:
    """The feature publisher's part, from proofs' own inputs (a demo and test convenience: a real oracle
    computes `feature_commitment` from its data). Posts each slot's commitment for its subject."""
    chain = Chain(rpc_url, private_key)
    postings = []
    for _path, proof, handle, subject_words in _plan(chain, proof_paths, subjects, deployments_dir):
        posted = set()
        for subject, commitment in zip(subject_words, layout.slot_commitments(proof.calldata.values, handle.layout),
                                       strict=True):
            if (subject, commitment) in posted:  # a padding slot: its subject's features are already posted
                continue
            posted.add((subject, commitment))
            postings.append(post_commitment(handle, subject, commitment))
    return postings


def post_commitment(handle: GateHandle, subject: bytes, commitment: bytes) -> Posting:
    """Post one subject's feature commitment (both 32-byte words) on the gate; the posting it made."""
    receipt = handle.chain.transact(handle.gate.functions.postFeatures(subject, commitment),
                                    f"posting features for subject 0x{subject.hex()}")
    event = handle.gate.events.FeaturesPosted().process_receipt(receipt)[0]["args"]
    return Posting(subject="0x" + subject.hex(), commitment="0x" + commitment.hex(), posted_at=event["postedAt"],
                   transaction_hash="0x" + bytes(receipt.transactionHash).hex(), gas_used=receipt.gasUsed,
                   block_number=receipt.blockNumber)


def withdraw_features(circuit: str, rpc_url: str, *, subjects: list[str] | None = None,
                      deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR,
                      private_key: str | None = None) -> list[str]:
    """The feature publisher takes back postings not acted on yet (features found wrong), on `circuit`'s
    gate: no proof acts on them afterwards. Lending: the borrowers `subjects`; bond: the current period's
    window (no subjects). Returns the transaction hashes. A subject with nothing to withdraw
    raises ContractRevertError NoOpenPosting."""
    chain = Chain(rpc_url, private_key)
    handle = open_gate(chain, circuit, deployments_dir)
    if handle.consumer == "bond":  # the current period's window
        words = [_current_period(handle)]
    elif subjects:
        words = [_borrower(s) for s in subjects]
    else:
        raise UsageError("give the borrowers whose postings to withdraw")
    hashes = []
    for subject in words:
        receipt = chain.transact(handle.gate.functions.withdrawFeatures(subject),
                                 f"withdrawing the posting of subject 0x{subject.hex()}")
        hashes.append("0x" + bytes(receipt.transactionHash).hex())
    return hashes


def _plan(chain: Chain, proof_paths, subjects: list[str] | None, deployments_dir) -> list[tuple]:
    """(path, proof, gate, subjects) per proof, every proof read and every subject assigned before a single
    transaction is sent: a mistake in the command line costs nothing on chain."""
    plan, used = [], 0
    for path in proof_paths:
        proof = load_proof(path, zkinfer=True)
        handle = _proof_gate(chain, proof, path, deployments_dir)
        subject_words, used = _take_subjects(handle, subjects or [], used, proof, path)
        plan.append((path, proof, handle, subject_words))
    _check_subjects_used(subjects, used)
    return plan


def _check_subjects_used(subjects: list[str] | None, used: int) -> None:
    if subjects and used < len(subjects):
        raise UsageError(f"{len(subjects) - used} --subject value(s) left over: one per slot of each proof")


@dataclass(frozen=True)
class Submission:
    """One proof acted on by its gate."""

    proof_path: str
    circuit: str
    model_id: int
    transaction_hash: str
    block_number: int
    gas_used: int
    statement_key: str  # names the statement acted on (StatementConsumed); replays are refused per posting
    effects: list[dict]  # the gate's events: RateUpdated / RateStepLimited / CouponAdjusted with their arguments


GATE_EFFECT_EVENTS = ("RateUpdated", "RateStepLimited", "CouponAdjusted")


def submit(proof_paths: list[str | os.PathLike], rpc_url: str, *, subjects: list[str] | None = None,
           deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR,
           private_key: str | None = None) -> list[Submission]:
    """Send proofs to their circuits' gates, one transaction each; returns what each changed and its gas.

    Lending proofs need one `subjects` entry (a borrower address) per slot, consumed in order across the
    proofs (a batch proof's `slots` list the order; its padding slots take none, see `_take_subjects`);
    bond proofs are about the current period. A gate's refusal raises ContractRevertError with
    the custom error's name and arguments (e.g. PostingAlreadyConsumed for a replayed proof).
    """
    chain = Chain(rpc_url, private_key)
    return [submit_calldata(handle, proof.calldata, subject_words, str(path))
            for path, proof, handle, subject_words in _plan(chain, proof_paths, subjects, deployments_dir)]


def submit_calldata(handle: GateHandle, calldata: Calldata | dict, subjects: list[bytes], label: str = "proof",
                    model_id: int | None = None) -> Submission:
    """Send one proof's calldata (a proof file's field, or as JSON) to a gate under `model_id` (default: the
    deployed circuit's)."""
    model_id = handle.model_id if model_id is None else model_id
    args = _calldata(calldata)
    fn = handle.gate.functions.submit(model_id, args.proof_bytes, args.values, subjects)
    receipt = handle.chain.transact(fn, f"submitting {label} to {handle.circuit}'s gate")
    from web3.logs import DISCARD

    consumed = handle.gate.events.StatementConsumed().process_receipt(receipt, errors=DISCARD)
    effects = []
    for name in GATE_EFFECT_EVENTS:
        event = getattr(handle.gate.events, name, None)
        if event is not None:
            effects += [{"event": name, **{k: display(v) for k, v in e["args"].items()}}
                        for e in event().process_receipt(receipt, errors=DISCARD)]
    return Submission(proof_path=label, circuit=handle.circuit, model_id=model_id,
                      transaction_hash="0x" + bytes(receipt.transactionHash).hex(),
                      block_number=receipt.blockNumber, gas_used=receipt.gasUsed,
                      statement_key="0x" + consumed[0]["args"]["statementKey"].hex(), effects=effects)


def verification_gas(handle: GateHandle, calldata: Calldata | dict) -> int:
    """Gas of a transaction calling the verifier alone with this proof (what verification costs)."""
    args = _calldata(calldata)
    return handle.chain.estimate_gas(handle.verifier.functions.verifyProof(args.proof_bytes, args.values),
                                     "verifying the proof")


def _calldata(calldata: Calldata | dict) -> Calldata:
    return calldata if isinstance(calldata, Calldata) else Calldata.from_json(calldata)
