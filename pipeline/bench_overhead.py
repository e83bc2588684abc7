"""Benchmark section `overhead`: what zkinfer costs over ezkl alone, on the same circuit files, in one run.

Per zoo model, interleaved (one of each, then again, `runs` times, so a machine that slows down slows every
contender alike):

- prove: `Prover.prove` in this process (library) against `pipeline.plain_ezkl.prove_files` (ezkl's
  gen_witness + prove, nothing else) in this process; `zkinfer prove` (a CLI process) against
  `plain_ezkl.BARE_PROVE_SCRIPT` (a Python process importing only ezkl);
- verify: `verify_proof` against `ezkl.verify`, in this process and as processes;
- a whole batch: N rows through `zkinfer batch` (a CLI process, one worker) against a loop of
  `prove_files` over the same rows in this process (K = 1 circuits).

Medians with min and max. The CLI's fixed start-up (`zkinfer --help`: Python, click, zkinfer's imports)
and a bare `import ezkl` are timed apart. One library prove is profiled (cProfile): the time inside ezkl's
native calls (witness, mock, prove), and the largest items outside them.

zkinfer's prove does more than the bare script, on purpose: it validates the input's shape and values,
runs ezkl's mock prover on the witness (ezkl's prove hangs on a witness that falls off a lookup table),
decodes outputs and writes the proof file with its calldata. A CLI process also checks every artifact it
proves with against the manifest's sha256 (the proving key included: hundreds of MB) and authenticates the
manifest; a library `Prover` does that once per process (cached by size, mtime and inode). Verification
runs ezkl's verifier twice: on the proof, and on the proof less its last byte, which must fail (appended
bytes are refused).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RUNS_ENV = "ZKINFER_BENCH_RUNS"
DEFAULT_RUNS = 3
BATCH_ROWS = 4
EZKL_CALLS = ("gen_witness", "mock", "prove", "verify")


@dataclass(frozen=True)
class Measured:
    """One child process: exit code, wall seconds, its own peak resident memory, its output."""

    returncode: int
    wall_s: float
    peak_rss_mb: float
    stderr_tail: str  # the last 3 lines
    stdout: str = ""


def _high_water_kib(pid: int) -> int | None:
    """The process's peak resident memory so far (VmHWM, KiB), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def run_measured(cmd: list[str], timeout_s: float | None = None, env: dict | None = None) -> Measured:
    """Run `cmd` and measure it: wall seconds, and peak RSS from the child's own VmHWM, polled while it runs.

    Not the kernel's rusage: Linux carries a parent's high-water mark into a child it forks and execs
    (`ru_maxrss` is at least the parent's RSS at fork), so a 100 MB child of a 1 GB benchmark process reads
    1 GB. VmHWM belongs to the child's own address space, which exec makes afresh. A child that ends before
    the first poll falls back to rusage."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        deadline = None if timeout_s is None else t + timeout_s
        peak_kib = 0
        while True:
            peak_kib = max(peak_kib, _high_water_kib(p.pid) or 0)
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                p.kill()
                pid, status, usage = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        out.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
        stdout = out.read().decode(errors="replace")
    return Measured(p.returncode, wall, round((peak_kib or usage.ru_maxrss) / 1024, 1), "\n".join(tail), stdout)


def zkinfer_command() -> list[str]:
    """The `zkinfer` console script next to this interpreter, or the same entry point through -m."""
    script = Path(sys.executable).with_name("zkinfer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline.cli"]


def spread(values: list[float], digits: int = 4) -> dict:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "runs": len(values)}


def runs_setting() -> int:
    return max(1, int(os.environ.get(RUNS_ENV) or DEFAULT_RUNS))


def _timed(fn: Callable) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _process_s(cmd: list[str]) -> float:
    m = run_measured(cmd)
    if m.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited {m.returncode}: {m.stderr_tail}")
    return m.wall_s


def profile_prove(prover, sample, out_path: Path, top: int = 8) -> dict:
    """cProfile one library prove: seconds inside ezkl's native calls (by call) and the largest items
    outside them (own time)."""
    prof = cProfile.Profile()
    prof.enable()
    prover.prove(sample, out_path)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(tt for _cc, _nc, tt, _ct, _callers in stats.values())
    native, rest = {}, []
    for (file, line, name), (_cc, calls, tt, _ct, _callers) in stats.items():
        call = next((c for c in EZKL_CALLS if name == f"<built-in method {c}>" or name.endswith(f"ezkl.{c}>")), None)
        if call and file == "~":
            native[call] = round(native.get(call, 0.0) + tt, 4)
        else:
            rest.append((tt, f"{Path(file).name}:{line}({name})", calls))
    rest.sort(reverse=True)
    inside = sum(native.values())
    return {"total_s": round(total, 4), "inside_ezkl_s": round(inside, 4), "ezkl_calls_s": native,
            "outside_ezkl_s": round(total - inside, 4),
            "top_outside_ezkl": [{"function": f, "own_s": round(tt, 4), "calls": n} for tt, f, n in rest[:top]]}


def overhead_of(circuit_dir: str | os.PathLike, runs: int = DEFAULT_RUNS, batch_rows: int = BATCH_ROWS,
                profile: bool = True, progress: Callable | None = None) -> dict:
    """zkinfer against bare ezkl on one built circuit (see the module docstring). `batch_rows` 0: no batch."""
    from . import manifest as manifest_mod
    from . import plain_ezkl
    from .inputs import to_circuit_values
    from .jobs import write_benchmark_inputs
    from .prove import Prover
    from .verify import verify_proof

    d = Path(circuit_dir)
    zk = zkinfer_command()
    t = time.perf_counter()
    prover = Prover(d)
    load_s = time.perf_counter() - t
    sample = json.loads(prover.manifest.artifact(manifest_mod.SAMPLES).read_text().splitlines()[0])["input_data"]
    times: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds)

    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-overhead-") as tmp:
        w = Path(tmp)
        zk_input, bare_input = w / "input.json", w / "bare_input.json"
        zk_input.write_text(json.dumps({"input_data": sample}))
        prescale = prover.circuit.get("input_prescale")
        bare_input.write_text(json.dumps({"input_data": to_circuit_values(sample, prescale)}))
        zk_proof, cli_proof, bare_proof = w / "zk.proof.json", w / "cli.proof.json", w / "bare.proof.json"
        peak_cli = 0.0
        for r in range(runs):
            if progress:
                progress(f"[overhead] {prover.manifest.name}: run {r + 1}/{runs}")
            add("prove_zkinfer_library", _timed(lambda: prover.prove(sample, zk_proof)))
            add("prove_ezkl_library", _timed(lambda: plain_ezkl.prove_files(bare_input, d, w / "w.json", bare_proof)))
            cli = run_measured([*zk, "prove", str(d), str(zk_input), "--out", str(cli_proof)])
            if cli.returncode:
                raise RuntimeError(f"zkinfer prove exited {cli.returncode}: {cli.stderr_tail}")
            add("prove_zkinfer_cli", cli.wall_s)
            peak_cli = max(peak_cli, cli.peak_rss_mb)
            add("prove_ezkl_script", _process_s([sys.executable, "-c", plain_ezkl.BARE_PROVE_SCRIPT,
                                                 *plain_ezkl.prove_args(bare_input, d, w / "ws.json", bare_proof)]))

            def verify_zk():
                if not verify_proof(d, zk_proof).valid:
                    raise RuntimeError("zkinfer's proof did not verify")

            def verify_bare():
                if not plain_ezkl.verify_files(bare_proof, d):
                    raise RuntimeError("bare ezkl's proof did not verify")

            add("verify_zkinfer_library", _timed(verify_zk))
            add("verify_ezkl_library", _timed(verify_bare))
            add("verify_zkinfer_cli", _process_s([*zk, "verify", str(d), str(cli_proof)]))
            add("verify_ezkl_script", _process_s([sys.executable, "-c", plain_ezkl.BARE_VERIFY_SCRIPT,
                                                  *plain_ezkl.verify_args(bare_proof, d)]))
            if batch_rows and prover.slots.count == 1:
                rows = write_benchmark_inputs(d, batch_rows, w / f"rows{r}.jsonl")
                add("batch_zkinfer_cli", _process_s([*zk, "batch", str(d), str(rows), "--out", str(w / f"batch{r}"),
                                                     "--workers", "1"]))

                def bare_loop(rows_path: Path = rows):
                    for i, line in enumerate(rows_path.read_text().splitlines()):
                        path = w / f"bare_row{i}.json"
                        path.write_text(json.dumps({"input_data": to_circuit_values(
                            json.loads(line)["input_data"], prescale)}))
                        plain_ezkl.prove_files(path, d, w / "wb.json", w / f"bare_row{i}.proof.json")

                add("batch_ezkl_loop", _timed(bare_loop))
        prof = profile_prove(prover, sample, zk_proof) if profile else None

    def med(key: str) -> float:
        return round(statistics.median(times[key]), 4)

    row = {
        "model": prover.manifest.name,
        "zkinfer_prove_s": med("prove_zkinfer_library"), "ezkl_prove_s": med("prove_ezkl_library"),
        "prove_ratio": round(med("prove_zkinfer_library") / med("prove_ezkl_library"), 3),
        "zkinfer_verify_s": med("verify_zkinfer_library"), "ezkl_verify_s": med("verify_ezkl_library"),
        "verify_ratio": round(med("verify_zkinfer_library") / med("verify_ezkl_library"), 3),
        "cli_prove_ratio": round(med("prove_zkinfer_cli") / med("prove_ezkl_script"), 3),
        "logrows": prover.circuit["logrows"], "runs": runs,
        "prover_load_s": round(load_s, 4), "cli_prove_peak_rss_mb": peak_cli,
        "timings": {k: spread(v) for k, v in times.items()},
    }
    if "batch_zkinfer_cli" in times:
        row["batch"] = {"rows": batch_rows, "zkinfer_batch_s": med("batch_zkinfer_cli"),
                        "ezkl_loop_s": med("batch_ezkl_loop"),
                        "ratio": round(med("batch_zkinfer_cli") / med("batch_ezkl_loop"), 3)}
    if prof is not None:
        row["profile"] = prof
    return row


def cli_startup(runs: int = DEFAULT_RUNS) -> dict:
    """The fixed cost of a process: `zkinfer --help` (Python, click, zkinfer's imports) and `import ezkl`."""
    zk = [_process_s([*zkinfer_command(), "--help"]) for _ in range(runs)]
    ez = [_process_s([sys.executable, "-c", "import ezkl"]) for _ in range(runs)]
    return {"zkinfer_help_s": spread(zk), "python_import_ezkl_s": spread(ez)}


def bench_overhead(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> list:
    """Per zoo model (or those given): `overhead_of` its circuit, with the CLI start-up cost in every row."""
    from . import zoo

    runs = runs_setting()
    startup = cli_startup(runs)
    rows = []
    for name in models or zoo.list_models():
        if progress:
            progress(f"[overhead] {name}: build")
        m = zoo.build_zoo_model(name, circuits_dir / name, progress=progress).manifest
        rows.append({**overhead_of(m.dir, runs=runs, progress=progress), "cli_startup": startup})
    return rows
