"""Benchmarks: `make bench` writes `bench/results.json`.

Speed and size targets are checked here, on real builds and proofs, not by timed unit tests. Each section
is a function returning JSON-ready numbers; `run` merges the sections it ran into the results file and
keeps the others, so one section can be re-measured alone (`zkinfer bench --section models`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
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
from .bench_node import bench_node
from .bench_overhead import bench_overhead, run_measured, zkinfer_command

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


# Which gate acts on each zoo model's proofs in the gas benchmark.
GAS_CONSUMERS = {"credit_risk": "lending", "credit_gbt": "lending", "inflation_forecast": "bond"}


def _zoo_circuit(circuits_dir: Path, name: str, progress: Callable | None):
    from .zoo import build_zoo_model

    return build_zoo_model(name, circuits_dir / name, progress=progress).manifest


def _ks(env: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """A K list from the environment ("1,4,16"), or the default."""
    text = os.environ.get(env, "").strip()
    return tuple(int(k) for k in text.split(",") if k.strip()) if text else default


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


def measure_verify_gas(circuit_dir: str | os.PathLike, proof_path: str | os.PathLike, rpc_url: str) -> tuple:
    """(gas of a transaction calling the circuit's verifier alone with the proof, the verifier mode), for a
    model no gate consumes: deployed with the lending gate for its verifier, which is never submitted to."""
    from . import chain, prooffile

    with tempfile.TemporaryDirectory(prefix="zkinfer-gas-") as tmp:
        d = chain.deploy(circuit_dir, rpc_url, "lending", deployments_dir=tmp)
        handle = chain.open_gate(chain.Chain(rpc_url), d.circuit, tmp)
        return chain.verification_gas(handle, prooffile.load(proof_path, zkinfer=True).calldata), d.verifier_mode


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


# Many inferences per proof (issues D and 15): credit_risk proving K borrowers at once, each borrower's
# features private (one Poseidon hash per slot: split inputs), PDs public, weights fixed. One advice column
# per operation: a taller, narrower circuit whose verifier does less work per proof (measured at K=64: 14.5k
# gas per inference against 18.1k with ezkl's default two columns), at the price of one more logrow.
# `ZKINFER_BENCH_KS=1,4,16` measures other Ks.
BATCHING_MODEL = "credit_risk"
# 288: the most borrowers logrows 19 holds (~1,805 rows each), where K = 256 leaves a tenth of the rows empty:
# the same key and prove seconds for 32 more borrowers, and verification under 5,000 gas per borrower.
BATCHING_KS = (1, 4, 16, 64, 128, 256, 288)
BATCHING_KS_ENV = "ZKINFER_BENCH_KS"
BATCHING_TARGET_K = 256  # the K the targets are set for
BATCHING_TARGETS = {"gas_per_inference": 5_000, "action_gas_per_inference": 12_000,
                    "prove_s_per_inference_vs_k1": 0.1, "prove_s_per_inference_vs_k64": 1.0}
# A proof timed in a process of its own, so its peak memory is its own: prints the seconds of each proof.
PROVE_TIMING_SCRIPT = """\
import json, sys, time
from pipeline.prove import Prover
circuit, samples, out, n = sys.argv[1:]
prover = Prover(circuit)
rows = [json.loads(line) for line in open(samples) if line.strip()]  # hashed inputs: each with its salts
seconds = []
for i in range(int(n)):
    row = rows[i % len(rows)]
    t = time.perf_counter()
    prover.prove(row["input_data"], out, salts=row.get("salt"))
    seconds.append(time.perf_counter() - t)
print(json.dumps(seconds))
"""


def batching_build_command(circuits_dir: Path, k: int) -> list[str]:
    """`zkinfer circuit zoo` for the benchmark's K-inference credit_risk circuit."""
    return [*zkinfer_command(), "circuit", "zoo", BATCHING_MODEL, "--out",
            str(circuits_dir / "batching" / f"{BATCHING_MODEL}_k{k}"), "--batch", str(k),
            "--input-visibility", "hashed", "--num-inner-cols", "1", *(["--split-inputs"] if k > 1 else [])]


def build_batching_circuit(circuits_dir: Path, k: int, progress: Callable | None = None):
    """Build (or find up to date) the K-inference circuit in a process of its own: a build the machine cannot
    afford stops that process (zkinfer's memory check, its watchdog, or the kernel), not the benchmark.
    Returns (manifest or None, the build process's measurement)."""
    _say(progress, f"[batching] K={k}: build")
    cmd = batching_build_command(circuits_dir, k)
    build = run_measured(cmd)
    if build.returncode != 0:
        return None, build
    return manifest_mod.load(cmd[cmd.index("--out") + 1]), build


def prove_in_process(circuit_dir: Path, n_proofs: int, out_path: Path) -> tuple[list[float], float]:
    """Prove the circuit's saved samples `n_proofs` times in a fresh process (`PROVE_TIMING_SCRIPT`):
    (seconds of each proof, excluding the process's start-up and artifact checks; the process's peak RSS MB)."""
    m = run_measured([sys.executable, "-c", PROVE_TIMING_SCRIPT, str(circuit_dir),
                      str(circuit_dir / manifest_mod.SAMPLES), str(out_path), str(n_proofs)])
    if m.returncode != 0:
        raise RuntimeError(f"proving {circuit_dir} failed (exit {m.returncode}): {m.stderr_tail}")
    return json.loads(m.stdout.strip().splitlines()[-1]), m.peak_rss_mb


def _failure(k: int, what: str, m) -> dict:
    reason = m.stderr_tail.splitlines()[-1] if m.stderr_tail else f"exit code {m.returncode}"
    if m.returncode < 0:
        reason = f"killed by signal {-m.returncode} (out of memory?) after {m.wall_s:.0f} s; {reason}"
    return {"k": k, "error": f"{what} failed: {reason}", "peak_rss_mb": m.peak_rss_mb}


def bench_batching(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> list:
    """Per K: prove seconds and peak memory, proving-key bytes, verification gas and whole gated-action gas per
    inference and the verifier mode each needed, on a local anvil.

    `gas_per_inference` is a transaction calling the verifier alone (21k base and calldata included) over K;
    `action_gas_per_inference` is RiskAdjustedLending.submit (binding checks, replay key, verification, K
    rate updates and their events) over K, each borrower rated for the first time. The first K whose
    circuit cannot be built or proven (memory, logrows) ends the curve with a row saying why.
    """
    from . import chain

    rows = []
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-batching-") as tmp:
        node = chain.chain_up(state=Path(tmp) / "chain")
        try:
            for k in _ks(BATCHING_KS_ENV, BATCHING_KS):
                m, build = build_batching_circuit(circuits_dir, k, progress)
                if m is None:
                    rows.append(_failure(k, "build", build))
                    break
                # Small K proves fast and varies more: time a few proofs, the median counts.
                n_proofs = 3 if k == 1 else 1
                _say(progress, f"[batching] K={k}: {n_proofs} proof(s)")
                path = Path(tmp) / f"k{k}.proof.json"
                try:
                    prove_s, peak_mb = prove_in_process(m.dir, n_proofs, path)
                except RuntimeError as e:
                    rows.append({"k": k, "error": str(e), "logrows": m.circuit["logrows"]})
                    break
                _say(progress, f"[batching] K={k}: deploy, post {k} borrowers' features, verify, submit")
                gas = measure_gas(m.dir, path, node.rpc_url, "lending")
                proof = json.loads(path.read_text())
                rows.append({
                    "k": k,
                    "prove_s_per_inference": round(statistics.median(prove_s) / k, 4),
                    "gas_per_inference": round(gas["verify_proof"] / k),
                    "action_gas_per_inference": round(gas["submit"] / k),
                    "peak_rss_mb": peak_mb,
                    # The build process's peak: the build's own when it rebuilt, a check's when up to date.
                    "build_peak_rss_mb": build.peak_rss_mb,
                    "build_up_to_date": "up to date" in build.stderr_tail + build.stdout,
                    "logrows": m.circuit["logrows"],
                    "proof_bytes": len(bytes(proof["proof"])),
                    "prove_s": round(statistics.median(prove_s), 3),
                    "verify_proof_gas": gas["verify_proof"],
                    "submit_gas": gas["submit"],
                    "verifier": gas["verifier_mode"],
                    "verifier_runtime_bytes": gas["verifier_runtime_bytes"],
                    "input_visibility": m.circuit["visibility"]["input"],
                    "setup_s": m.data["timings_s"]["setup"],
                    "pk_bytes": m.data["artifacts"][manifest_mod.PK]["bytes"],
                    "instances": m.circuit["num_instances"],
                    "fidelity_max_abs_error": m.data["fidelity"]["max_abs_error"],
                })
        finally:
            chain.chain_down(state=Path(tmp) / "chain")
    return rows


def batching_targets(rows: list[dict]) -> dict:
    """How K = BATCHING_TARGET_K (or the largest K measured, when the curve stops short of it) compares with
    issue 15's targets, from the measured rows."""
    by_k = {r["k"]: r for r in rows if "error" not in r}
    if 1 not in by_k or len(by_k) < 2:
        return {}
    top = by_k[BATCHING_TARGET_K if BATCHING_TARGET_K in by_k else max(by_k)]
    measured = {
        "gas_per_inference": top["gas_per_inference"],
        "action_gas_per_inference": top["action_gas_per_inference"],
        "prove_s_per_inference_vs_k1": top["prove_s_per_inference"] / by_k[1]["prove_s_per_inference"],
    }
    if 64 in by_k:
        measured["prove_s_per_inference_vs_k64"] = top["prove_s_per_inference"] / by_k[64]["prove_s_per_inference"]
    return {"k": top["k"], **{name: {"measured": round(value, 4), "target": BATCHING_TARGETS[name],
                                     "met": value <= BATCHING_TARGETS[name]}
                              for name, value in measured.items()}}


def batching_gas_model(rows: list[dict]) -> dict:
    """Gas as a line in K, from the two largest K measured: verification = fixed + per_borrower x K, and the
    gate's own work (the whole action less verification) likewise. Says where the per-borrower targets can
    and cannot be met: the fixed part (pairing check, transcript, openings) spreads over K, the per-borrower
    parts (a borrower's instances; its record's read and write, its event, its subject) never shrink."""
    ok = sorted((r for r in rows if "error" not in r and r.get("verify_proof_gas")), key=lambda r: r["k"])
    if len(ok) < 2 or ok[-1]["k"] == ok[-2]["k"]:
        return {}
    a, b = ok[-2], ok[-1]
    dk = b["k"] - a["k"]
    verify_each = (b["verify_proof_gas"] - a["verify_proof_gas"]) / dk
    gate_each = ((b["submit_gas"] - b["verify_proof_gas"]) - (a["submit_gas"] - a["verify_proof_gas"])) / dk
    verify_fixed = b["verify_proof_gas"] - verify_each * b["k"]
    action_fixed = b["submit_gas"] - (verify_each + gate_each) * b["k"]

    def k_for(target: float, fixed: float, each: float) -> int | None:
        """The smallest K whose per-borrower gas is within the target on this line (None: no K)."""
        return None if each >= target else max(1, math.ceil(fixed / (target - each)))

    return {
        "from_k": [a["k"], b["k"]],
        "verify_fixed_gas": round(verify_fixed), "verify_per_borrower_gas": round(verify_each),
        "gate_per_borrower_gas": round(gate_each), "action_fixed_gas": round(action_fixed),
        "action_per_borrower_floor_gas": round(verify_each + gate_each),
        "k_for_verify_target": k_for(BATCHING_TARGETS["gas_per_inference"], verify_fixed, verify_each),
        "k_for_action_target": k_for(BATCHING_TARGETS["action_gas_per_inference"], action_fixed,
                                     verify_each + gate_each),
    }


# Throughput (issue 15): inferences proven per hour by `zkinfer batch`'s runner, for each K in the list and
# 1 or 2 local workers (worker start-up included); the best configuration is the section's headline.
THROUGHPUT_KS = (1, 64, 256)
THROUGHPUT_KS_ENV = "ZKINFER_BENCH_THROUGHPUT_KS"
THROUGHPUT_WORKERS = (1, 2)
THROUGHPUT_TARGET_PER_HOUR = 15_000


def throughput_configurations(circuit_dir: Path, k: int, workers_list=THROUGHPUT_WORKERS,
                              progress: Callable | None = None) -> list[dict]:
    """`measure_batch` on one circuit with each number of workers; a configuration whose provers together
    would not fit in memory is recorded as skipped."""
    from . import resources
    from .compile import CircuitSettings
    from .jobs import measure_batch

    need = resources.estimate(CircuitSettings.load(circuit_dir / manifest_mod.SETTINGS))
    out = []
    for workers in workers_list:
        packs = max(4, 2 * workers)
        row = {"k": k, "workers": workers, "inferences": k * packs}
        together = resources.MemoryEstimate(need.logrows, need.pk_bytes * workers, need.peak_bytes * workers)
        if resources.shortfall(together):  # the build's own memory check decides; the message is about workers
            out.append({**row, "skipped": f"{workers} provers at once would need ~{together.peak_bytes / 2**30:.1f} GB "
                                          f"(~{need.peak_bytes / 2**30:.1f} GB each, logrows {need.logrows}); "
                                          f"{resources.available_bytes() / 2**30:.1f} GB available"})
            continue
        _say(progress, f"[throughput] K={k}: {k * packs} inferences with {workers} worker(s)")
        s = measure_batch(circuit_dir, n_inputs=k * packs, workers=workers)
        out.append({**row, "elapsed_s": round(s.elapsed_s, 2), "proofs_per_minute": round(s.proofs_per_minute, 3),
                    "inferences_per_hour": round(60 * s.inferences_per_minute)})
    return out


def bench_throughput(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> dict:
    """Inferences per hour from the batch runner at each K (the batching section's circuits) and 1 or 2
    workers; `k`, `workers`, `inferences_per_hour` name the best."""
    configs = []
    for k in _ks(THROUGHPUT_KS_ENV, THROUGHPUT_KS):
        m, build = build_batching_circuit(circuits_dir, k, progress)
        if m is None:
            configs.append(_failure(k, "build", build))
            break
        configs.extend(throughput_configurations(m.dir, k, progress=progress))
    measured = [c for c in configs if "inferences_per_hour" in c]
    best = max(measured, key=lambda c: c["inferences_per_hour"], default={})
    return {"circuit": BATCHING_MODEL, "k": best.get("k"), "workers": best.get("workers"),
            "inferences_per_hour": best.get("inferences_per_hour"), "target_per_hour": THROUGHPUT_TARGET_PER_HOUR,
            "configurations": configs}


def bench_estimates(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> list:
    """Per zoo model: `zkinfer circuit estimate`'s predictions (from its ONNX and calibration data, with the
    build's options) against the built circuit: logrows, pk bytes, peak RSS and seconds of a proof (in a
    process of its own), and verification gas on anvil (a gate's path for models a gate consumes, the
    verifier alone for the others)."""
    from . import chain, zoo
    from .build import BuildOptions
    from .compile import CircuitArgs, Visibility
    from .estimate import estimate_circuit

    rows = []
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-estimates-") as tmp:
        node = chain.chain_up(state=Path(tmp) / "chain")
        try:
            for name in models or zoo.list_models():
                m = _zoo_circuit(circuits_dir, name, progress)
                c = m.circuit
                options = BuildOptions(visibility=Visibility(**c["visibility"]), batch_size=c["batch_size"],
                                       circuit_args=CircuitArgs(**c.get("circuit_args", {})))
                _say(progress, f"[estimates] {name}: estimate, then a proof")
                predicted = estimate_circuit(m.data["source"]["onnx"], m.data["source"]["data"], options).to_dict()
                path = Path(tmp) / f"{name}.proof.json"
                prove_s, peak_mb = prove_in_process(m.dir, 1, path)
                measured = {"logrows": c["logrows"], "pk_bytes": m.data["artifacts"][manifest_mod.PK]["bytes"],
                            "peak_bytes": int(peak_mb * 2**20), "prove_s": round(prove_s[0], 3),
                            "instances": c["num_instances"], "verify_gas": None}
                if name in GAS_CONSUMERS:
                    gas = measure_gas(m.dir, path, node.rpc_url, GAS_CONSUMERS[name])
                    measured["verify_gas"], measured["verifier_mode"] = gas["verify_proof"], gas["verifier_mode"]
                else:  # no gate acts on it: its verifier's gas alone
                    measured["verify_gas"], measured["verifier_mode"] = measure_verify_gas(m.dir, path, node.rpc_url)
                rows.append({"model": name, "predicted": predicted, "measured": measured,
                             "ratios": estimate_ratios(predicted, measured)})
        finally:
            chain.chain_down(state=Path(tmp) / "chain")
    return rows


def estimate_ratios(predicted: dict, measured: dict) -> dict:
    """predicted / measured for each quantity both have, and whether it is within the 2x target."""
    out = {}
    for key in ("logrows", "pk_bytes", "peak_bytes", "prove_s", "verify_gas"):
        if predicted.get(key) and measured.get(key):
            r = predicted[key] / measured[key]
            out[key] = {"ratio": round(r, 3), "within_2x": 0.5 <= r <= 2.0}
    return out


SECTIONS: dict[str, Callable] = {"models": bench_models, "overhead": bench_overhead, "batching": bench_batching,
                                 "throughput": bench_throughput, "gas": bench_gas, "estimates": bench_estimates,
                                 "models_in": bench_models_in, "classic_in": bench_classic_in, "node": bench_node}


def machine() -> dict:
    from . import __version__

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "ram_gb": round(ram / 2**30, 1), "processor": platform.processor() or platform.machine(),
            "ezkl": EZKL_VERSION, "zkinfer": __version__}


def run(out_path: str | os.PathLike = DEFAULT_OUT, sections: list[str] | None = None,
        circuits_dir: str | os.PathLike = "circuits", models: list[str] | None = None,
        progress: Callable | None = None, readme: str | os.PathLike | None = None) -> dict:
    """Run the named sections (default: all), merge them into the results file, then write the report (and
    regenerate `readme`'s benchmark blocks, when given; see `report`)."""
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
            results["batching_gas_model"] = batching_gas_model(results[name])
        _say(progress, f"[{name}] done in {time.perf_counter() - t:.0f} s")
        results.setdefault("measured_at", {})[name] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"] = machine()
    results["ezkl_version"] = EZKL_VERSION
    write_json_atomic(out_path, results)
    report(out_path, progress=progress, readme=readme)
    return results


def report(results_path: str | os.PathLike = DEFAULT_OUT, readme: str | os.PathLike | None = None,
           progress: Callable | None = None) -> Path:
    """REPORT.md and its plots beside the results file, from it alone (`zkinfer bench --report-only`); with
    `readme` (a file that exists), its `<!-- bench:NAME -->` blocks regenerated from the same results."""
    from .bench_report import update_readme, write_report
    from .errors import UsageError

    results_path = Path(results_path)
    if not results_path.is_file():
        raise UsageError(f"results file not found: {results_path} (run `make bench` first)")
    results = json.loads(results_path.read_text())
    path = write_report(results, results_path.parent)
    if readme is not None and Path(readme).is_file():
        try:
            blocks = update_readme(results, readme)
        except ValueError as e:
            raise UsageError(str(e)) from None
        _say(progress, f"{readme}: regenerated {', '.join(blocks) or 'no'} benchmark block(s)")
    return path
