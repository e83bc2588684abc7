"""`make demo`: the main job end to end, on one machine.

An ML engineer's circuit, a prover's batch, and a lending protocol's contract, in order:

1. build the `credit_risk` circuit (train, export, calibrate, fidelity gate, keys, manifest);
2. prove a handful of borrowers' probabilities of default as a batch job;
3. start a local anvil with mainnet's limits, deploy the verifier, the model registry and
   `RiskAdjustedLending`, register the model;
4. the feature oracle posts each borrower's features; each proof is submitted, and the borrower's rate moves;
5. a tampered proof (on a fresh posting) and a replayed proof (a posting acts once) are refused, each with its
   own custom error;
6. anvil stops.

Everything lands under `runs/demo/` (git-ignored); running it again reuses the circuit and the proofs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_utils import keccak, to_checksum_address

from .errors import ZkinferError

BORROWERS = ("alice", "bob", "carol", "dave", "erin")
BORROWER_SEED = 2026  # the demo's borrowers: held-out draws from the credit_risk generator
# The demo's circuit breaker allows any move from the initial rate (800 bp) within [200, 1700] bp; the
# tests show the tighter default (300 bp) holding a large move to one step per posting.
DEMO_TERMS = {"maxRateStepBps": 1_000}


@dataclass
class DemoResult:
    circuit_dir: Path
    proved: int
    submissions: list[dict] = field(default_factory=list)
    rejections: dict[str, str] = field(default_factory=dict)


def borrower_address(name: str) -> str:
    """A stable made-up address per demo borrower."""
    return to_checksum_address(keccak(text=f"zkinfer-demo-borrower-{name}")[:20])


def write_borrowers(path: Path, names=BORROWERS, seed: int = BORROWER_SEED) -> Path:
    """The borrowers' encoded features as batch input (JSONL with ids), from credit_risk's own generator."""
    from . import zoo

    model = zoo.load("credit_risk").module
    features, _ = model.generate_data(len(names), seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": n, "input_data": [[float(v) for v in row]]}) + "\n"
                            for n, row in zip(names, features, strict=True)))
    return path


def run_demo(work_dir: str | os.PathLike = "runs/demo", circuits_dir: str | os.PathLike = "circuits",
             workers: int = 2, say: Callable[[str], None] = print) -> DemoResult:
    from . import chain, prooffile
    from .jobs import run_batch
    from .zoo import build_zoo_model

    work = Path(work_dir)
    say("== 1. circuit: credit_risk (train, export, calibrate, fidelity gate, keys, manifest)")
    built = build_zoo_model("credit_risk", Path(circuits_dir) / "credit_risk", progress=lambda m: say(f"   {m}"))
    m = built.manifest
    f = m.data["fidelity"]
    say(f"   logrows {m.circuit['logrows']}, fidelity: max abs error {f['max_abs_error']:.5f} "
        f"(tolerance {f['tolerance']['max_abs_error']}), label agreement {f.get('label_agreement')}")

    say(f"\n== 2. batch-proving {len(BORROWERS)} borrowers ({workers} workers)")
    inputs = write_borrowers(work / "borrowers.jsonl")
    summary = run_batch(m.dir, inputs, work / "batch", workers=workers)
    if summary.exit_code != 0:
        raise ZkinferError(f"the demo batch did not prove every borrower: {summary.counts}")
    proofs = _proofs_by_borrower(work / "batch")
    say(f"   {summary.proved} proved ({summary.proved_now} now, {summary.duplicates} already proved earlier)")

    result = DemoResult(circuit_dir=m.dir, proved=summary.proved)
    state = work / "chain"
    deployments = work / "deployments"
    say("\n== 3. local chain: anvil from the pinned npm package, mainnet's limits")
    node = chain.chain_up(state=state)
    try:
        say(f"   {node.rpc_url} (chain id {node.chain_id})")
        say("\n== 4. deploy: Halo2 verifier, ModelRegistry, RiskAdjustedLending; register credit_risk")
        d = chain.deploy(m.dir, node.rpc_url, "lending", deployments_dir=deployments, terms=DEMO_TERMS)
        say(f"   verifier {d.verifier.address}\n   registry {d.registry_address}\n   gate     {d.gate.address}"
            f"\n   model id {d.model_id}  (deployments: {d.deployments_file})")

        say("\n== 5. the feature oracle posts each borrower's features; each proof moves a rate")
        say(f"   {'borrower':8s} {'PD':>7s} {'rate (bp)':>14s} {'gas':>9s}")
        handle = chain.open_gate(chain.Chain(node.rpc_url), m.name, deployments)
        for name in BORROWERS:
            addr = borrower_address(name)
            chain.post_features([proofs[name]], node.rpc_url, subjects=[addr], deployments_dir=deployments)
            old_rate = handle.chain.call(handle.gate.functions.rateOf(addr), "reading the rate")
            (sub,) = chain.submit([proofs[name]], node.rpc_url, subjects=[addr], deployments_dir=deployments)
            effect = sub.effects[0]
            pd = prooffile.load(proofs[name]).outputs[0][0]
            say(f"   {name:8s} {pd:7.4f} {old_rate:>5} -> {effect['newRateBps']:<5} {sub.gas_used:>9,}")
            result.submissions.append({"borrower": name, "pd": pd, "old_rate_bps": old_rate,
                                       "new_rate_bps": effect["newRateBps"], "gas_used": sub.gas_used})

        say("\n== 6. attacks")
        # A new round for alice (her posting above was acted on, and a posting acts once): the oracle posts her
        # features again, so what refuses the tampered proof is the verifier, not the consumed posting.
        chain.post_features([proofs["alice"]], node.rpc_url, subjects=[borrower_address("alice")],
                            deployments_dir=deployments)
        tampered = prooffile.load(proofs["alice"]).calldata.to_json()
        tampered["instances"][-1] = "0x" + f"{1:064x}"  # claim a PD of 2^-scale, almost zero
        result.rejections["tampered"] = _refused(
            lambda: chain.submit_calldata(handle, tampered, [_subject(borrower_address("alice"))], "tampered"))
        say(f"   alice re-posted; her proof with her PD edited down: refused, {result.rejections['tampered']}")
        result.rejections["replayed"] = _refused(
            lambda: chain.submit([proofs["bob"]], node.rpc_url, subjects=[borrower_address("bob")],
                                 deployments_dir=deployments))
        say(f"   bob's proof sent again:                refused, {result.rejections['replayed']}")
    finally:
        chain.chain_down(state=state)
        say("\n== 7. anvil stopped")
    return result


def _subject(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _refused(send: Callable[[], object]) -> str:
    from .chain import ContractRevertError

    try:
        send()
    except ContractRevertError as e:
        return e.error_name or "reverted"
    raise ZkinferError("the demo expected the gate to refuse this submission, and it went through")


def _proofs_by_borrower(batch_dir: Path) -> dict[str, Path]:
    """Each borrower's proof file, from the batch's store (the input rows' ids are the job labels)."""
    from .jobs import JobStore

    with JobStore(batch_dir) as store:
        return {row["label"]: batch_dir / row["proof_path"] for row in store.proved_rows()}
