"""Benchmarks: `make bench` writes `bench/results.json`.

Speed and size targets are checked here, on real builds and proofs, not by timed unit tests. Each section
is a function returning JSON-ready numbers; `run` merges the sections it ran into the results file and
keeps the others, so one section can be re-measured alone (`zkinfer bench --section models`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from . import EZKL_VERSION
from . import manifest as manifest_mod
from .artifacts import write_json_atomic
from .bench_classic import bench_classic_in
from .bench_foreign import bench_models_in

DEFAULT_OUT = Path("bench/results.json")
PROOFS_PER_MODEL = 3


def _say(progress, msg):
    if progress:
        progress(msg)


def bench_models(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> dict:
    """Per zoo model: size, build/setup/prove/verify seconds, key and proof bytes, fidelity."""
    from . import zoo
    from .export import inspect
    from .prove import Prover
    from .verify import verify_proof

    results = {}
    for name in models or zoo.list_models():
        _say(progress, f"[models] {name}: build")
        built = zoo.build_zoo_model(name, circuits_dir / name, progress=progress)  # timings when it rebuilds
        m = built.manifest
        prover = Prover(m.dir)
        samples = [json.loads(line)["input_data"] for line in
                   m.artifact(manifest_mod.SAMPLES).read_text().splitlines()][:PROOFS_PER_MODEL]
        prove_s, verify_s, proof_bytes = [], [], 0
        with tempfile.TemporaryDirectory(prefix="zkinfer-bench-") as tmp:
            for i, sample in enumerate(samples):
                _say(progress, f"[models] {name}: proof {i + 1}/{len(samples)}")
                path = Path(tmp) / f"proof{i}.json"
                t = time.perf_counter()
                proof = prover.prove(sample, path)
                prove_s.append(time.perf_counter() - t)
                proof_bytes = len(bytes(proof["proof"]))
                t = time.perf_counter()
                assert verify_proof(m.dir, path).valid
                verify_s.append(time.perf_counter() - t)
        timings = m.data["timings_s"]
        f = m.data["fidelity"]
        results[name] = {
            "parameters": inspect(m.artifact(manifest_mod.ONNX)).n_parameters,
            "logrows": m.circuit["logrows"],
            "build_s": timings["total"],
            "setup_s": timings["setup"],
            "build_measured": "this run" if built.rebuilt else "when the circuit was built (up to date now)",
            "prove_s": round(statistics.median(prove_s), 3),
            "verify_s": round(statistics.median(verify_s), 4),
            "proofs": len(prove_s),
            "pk_bytes": m.data["artifacts"][manifest_mod.PK]["bytes"],
            "vk_bytes": m.data["artifacts"][manifest_mod.VK]["bytes"],
            "proof_bytes": proof_bytes,
            "fidelity": {k: f.get(k) for k in ("max_abs_error", "mean_abs_error", "label_agreement", "tolerance")},
            "srs": m.srs["origin"],
        }
    return results


THROUGHPUT_MODEL = "credit_risk"
THROUGHPUT_INPUTS = 8
# Which gate acts on each zoo model's proofs in the gas benchmark.
GAS_CONSUMERS = {"credit_risk": "lending", "credit_gbt": "lending", "inflation_forecast": "bond"}


def _zoo_circuit(circuits_dir: Path, name: str, progress: Callable | None):
    from .zoo import build_zoo_model

    return build_zoo_model(name, circuits_dir / name, progress=progress).manifest


def bench_throughput(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> dict:
    """Batch proving rate (proofs per minute) with 1 and 2 local workers, worker start-up included."""
    from .jobs import measure_throughput

    name = THROUGHPUT_MODEL
    m = _zoo_circuit(circuits_dir, name, progress)
    results = {"circuit": name, "logrows": m.circuit["logrows"], "inputs": THROUGHPUT_INPUTS}
    for workers in (1, 2):
        _say(progress, f"[throughput] {name}: {THROUGHPUT_INPUTS} proofs with {workers} worker(s)")
        rate = measure_throughput(m.dir, n_inputs=THROUGHPUT_INPUTS, workers=workers)
        results[f"proofs_per_minute_{workers}_workers"] = round(rate, 2)
    return results


def measure_gas(circuit_dir: str | os.PathLike, proof_path: str | os.PathLike, rpc_url: str,
                consumer: str = "lending", *, deployments_dir: str | os.PathLike | None = None,
                verifier_mode: str | None = None, reusable: bool | None = None,
                terms: dict | None = None) -> dict:
    """Deploy the circuit afresh, post the proof's features, verify and submit it: the gas of each step.

    For benchmarks on a local chain. Lending uses made-up borrowers and, unless `terms` say otherwise, a
    circuit breaker wide enough for any PD, so the measured submission goes through.
    """
    from eth_utils import keccak, to_checksum_address

    from . import chain, prooffile

    with tempfile.TemporaryDirectory(prefix="zkinfer-gas-") as tmp:
        ddir = deployments_dir or Path(tmp) / "deployments"
        if consumer == "lending":
            terms = {"maxRateStepBps": 10_000, **(terms or {})}
        d = chain.deploy(circuit_dir, rpc_url, consumer, verifier_mode=verifier_mode, reusable=reusable,
                         deployments_dir=ddir, terms=terms)
        # Distinct borrowers: each slot's features are posted under its own subject.
        borrower = [to_checksum_address(keccak(text=f"zkinfer-gas-borrower-{i}")[:20])
                    for i in range(d.instance_layout["slots"])]
        subjects = borrower if consumer == "lending" else None
        postings = chain.post_features([proof_path], rpc_url, subjects=subjects, deployments_dir=ddir)
        handle = chain.open_gate(chain.Chain(rpc_url), d.circuit, ddir)
        verify = chain.verification_gas(handle, prooffile.load(proof_path, zkinfer=True).calldata)
        [s] = chain.submit([proof_path], rpc_url, subjects=subjects, deployments_dir=ddir)
    return {"circuit": d.circuit, "consumer": consumer, "chain_id": d.chain_id,
            "verifier_mode": d.verifier_mode, "verifier_runtime_bytes": d.verifier_runtime_size, "deploy": d.gas(),
            "post_features": sum(p.gas_used for p in postings), "verify_proof": verify, "submit": s.gas_used,
            "effects": s.effects}


def bench_gas(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> dict:
    """Gas on a local anvil (mainnet limits): deployments, verification, and each gated action."""
    from . import chain
    from .prove import Prover

    results = {}
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-gas-") as tmp:
        node = chain.chain_up(state=Path(tmp) / "chain")
        try:
            for name, consumer in GAS_CONSUMERS.items():
                if models and name not in models:
                    continue
                m = _zoo_circuit(circuits_dir, name, progress)
                sample = json.loads(m.artifact(manifest_mod.SAMPLES).read_text().splitlines()[0])["input_data"]
                proof_path = Path(tmp) / f"{name}.proof.json"
                _say(progress, f"[gas] {name}: prove, deploy, post features, submit to the {consumer} gate")
                Prover(m.dir).prove(sample, proof_path)
                results[name] = measure_gas(m.dir, proof_path, node.rpc_url, consumer)
        finally:
            chain.chain_down(state=Path(tmp) / "chain")
    return results


# Many inferences per proof (issue D): credit_risk proving K borrowers at once, each borrower's features
# private (one Poseidon hash per slot: split inputs), PDs public, weights fixed. One advice column per
# operation: a taller, narrower circuit whose verifier does less work per proof (measured at K=64: 14.5k gas
# per inference against 18.1k with ezkl's default two columns), at the price of one more logrow.
BATCHING_MODEL = "credit_risk"
BATCHING_KS = (1, 4, 16, 64)
BATCHING_TARGETS = {"gas_per_inference": 15_000, "action_gas_per_inference": 25_000,
                    "prove_s_per_inference_vs_k1": 0.1}


def batching_circuit(circuits_dir: Path, k: int, progress: Callable | None = None):
    """The benchmark's K-inference credit_risk circuit (built once, then up to date)."""
    from .compile import CircuitArgs, Visibility
    from .zoo import build_zoo_model

    return build_zoo_model(
        BATCHING_MODEL, circuits_dir / "batching" / f"{BATCHING_MODEL}_k{k}", batch_size=k, split_inputs=k > 1,
        visibility=Visibility(input="hashed", output="public", param="fixed"),
        circuit_args=CircuitArgs(num_inner_cols=1), progress=progress).manifest


def bench_batching(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> list:
    """Per K: prove seconds, verification gas and whole gated-action gas per inference, on a local anvil.

    `gas_per_inference` is a transaction calling the verifier alone (21k base and calldata included) over K;
    `action_gas_per_inference` is RiskAdjustedLending.submit (binding checks, replay key, verification, K
    rate updates and their events) over K, each borrower rated for the first time.
    """
    from . import chain
    from .prove import Prover

    rows = []
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-batching-") as tmp:
        node = chain.chain_up(state=Path(tmp) / "chain")
        try:
            for k in BATCHING_KS:
                _say(progress, f"[batching] K={k}: build")
                m = batching_circuit(circuits_dir, k, progress)
                samples = [json.loads(line)["input_data"] for line in
                           m.artifact(manifest_mod.SAMPLES).read_text().splitlines()]
                prover = Prover(m.dir)
                # Small K proves fast and varies more: time a few proofs, the median counts.
                n_proofs = 3 if k == 1 else 1
                prove_s = []
                for i in range(n_proofs):
                    _say(progress, f"[batching] K={k}: proof {i + 1}/{n_proofs}")
                    path = Path(tmp) / f"k{k}.proof.json"
                    t = time.perf_counter()
                    proof = prover.prove(samples[i % len(samples)], path)
                    prove_s.append(time.perf_counter() - t)
                _say(progress, f"[batching] K={k}: deploy, post {k} borrowers' features, verify, submit")
                gas = measure_gas(m.dir, path, node.rpc_url, "lending")
                rows.append({
                    "k": k,
                    "prove_s_per_inference": round(statistics.median(prove_s) / k, 4),
                    "gas_per_inference": round(gas["verify_proof"] / k),
                    "action_gas_per_inference": round(gas["submit"] / k),
                    "logrows": m.circuit["logrows"],
                    "proof_bytes": len(bytes(proof["proof"])),
                    "prove_s": round(statistics.median(prove_s), 3),
                    "verify_proof_gas": gas["verify_proof"],
                    "submit_gas": gas["submit"],
                    "verifier": gas["verifier_mode"],
                    "verifier_runtime_bytes": gas["verifier_runtime_bytes"],
                    "setup_s": m.data["timings_s"]["setup"],
                    "pk_bytes": m.data["artifacts"][manifest_mod.PK]["bytes"],
                    "instances": m.circuit["num_instances"],
                    "fidelity_max_abs_error": m.data["fidelity"]["max_abs_error"],
                })
        finally:
            chain.chain_down(state=Path(tmp) / "chain")
    return rows


def batching_targets(rows: list[dict]) -> dict:
    """How the largest K measured compares with issue D's targets (from the measured rows)."""
    by_k = {r["k"]: r for r in rows}
    if 1 not in by_k or len(by_k) < 2:
        return {}
    top = by_k[max(by_k)]
    measured = {
        "gas_per_inference": top["gas_per_inference"],
        "action_gas_per_inference": top["action_gas_per_inference"],
        "prove_s_per_inference_vs_k1": top["prove_s_per_inference"] / by_k[1]["prove_s_per_inference"],
    }
    return {"k": top["k"], **{name: {"measured": round(value, 4), "target": BATCHING_TARGETS[name],
                                     "met": value <= BATCHING_TARGETS[name]}
                              for name, value in measured.items()}}


SECTIONS: dict[str, Callable] = {"models": bench_models, "throughput": bench_throughput, "gas": bench_gas,
                                 "batching": bench_batching, "models_in": bench_models_in,
                                 "classic_in": bench_classic_in}


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}


def run(out_path: str | os.PathLike = DEFAULT_OUT, sections: list[str] | None = None,
        circuits_dir: str | os.PathLike = "circuits", models: list[str] | None = None,
        progress: Callable | None = None) -> dict:
    """Run the named sections (default: all) and merge them into the results file."""
    from .errors import UsageError

    out_path = Path(out_path)
    unknown = set(sections or ()) - set(SECTIONS)
    if unknown:
        raise UsageError(f"unknown bench section(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    for name in sections or SECTIONS:
        t = time.perf_counter()
        results[name] = SECTIONS[name](Path(circuits_dir), models=models, progress=progress)
        if name == "batching":
            results["batching_targets"] = batching_targets(results[name])
        _say(progress, f"[{name}] done in {time.perf_counter() - t:.0f} s")
        results.setdefault("measured_at", {})[name] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"] = machine()
    results["ezkl_version"] = EZKL_VERSION
    write_json_atomic(out_path, results)
    return results
