"""Crash safety: batches and builds SIGKILLed at random moments, then resumed.

Batch: one inputs file, one OUTDIR; `zkinfer batch` (a real subprocess, its own process group) is killed
again and again (`kills` times), each time either at a random moment from outside (SIGKILL to the whole
group) or at a chosen crash point (`pipeline.faults`: a proof file's temporary copy written but not renamed,
a proof file published but not recorded, a store transaction about to COMMIT), then resumed by running the
same command until it exits 0. After every kill: `PRAGMA integrity_check` is ok and every file under
proofs/ with a final name is a whole proof. At the end: the proof set is exactly the one an uninterrupted
run makes (one file per job, named by the job's content-derived id), each verifies, no job is in two proof
files, no temporary file is left, the store says every job is proved.

Build: a circuit is rebuilt (other weights, so the build does real work) into the folder of a built one and
killed at a random moment; the folder must still hold a usable circuit (it loads, its artifacts match, it
proves and verifies), and the next build completes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ..faults import ENV as CRASH_ENV
from .report import CheckResult

CRASH_POINTS = ("proof-temp-written", "proof-published", "store-commit")


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop(CRASH_ENV, None)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def _start(argv: list[str], env: dict, log) -> subprocess.Popen:
    """`zkinfer ARGV` (or `python -c CODE` when argv starts with -c) in its own process group."""
    cmd = [sys.executable, *argv] if argv[0] == "-c" else [sys.executable, "-m", "pipeline.cli", *argv]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)


def _kill_after(p: subprocess.Popen, wait_s: float) -> tuple[int, bool]:
    """(exit code, whether it was killed): `p` SIGKILLed, with its process group, if still running after
    `wait_s` seconds."""
    try:
        return p.wait(timeout=wait_s), False
    except subprocess.TimeoutExpired:
        _kill_group(p)
        return -signal.SIGKILL, True


def _kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def _integrity(db: Path) -> str:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def _whole_proofs(proofs: Path) -> list[str]:
    """Final-named files under proofs/ that are not a whole proof file (must be none)."""
    from ..prooffile import ProofFile

    bad = []
    for f in proofs.glob("*.json"):
        try:
            ProofFile.from_json(json.loads(f.read_text()), f.name)
        except Exception as e:  # noqa: BLE001 (anything unreadable is a partial file)
            bad.append(f"{f.name}: {type(e).__name__}")
    return bad


def expected_ids(circuit_dir: Path, inputs: Path) -> set[str]:
    """The proof files an uninterrupted run makes: one per distinct valid row, named by its job id."""
    from ..jobs.sources import read_inputs
    from ..prove import Prover

    prover = Prover(circuit_dir)
    return {s.id for s in read_inputs(inputs, prover.manifest.circuit_id, prover.parse_row) if s.error is None}


def batch_kills(circuit_dir: Path, rows: list[list[float]], work: Path, kills: int = 5, seed: int = 13,
                max_wait_s: float = 20.0, log=None) -> CheckResult:
    from ..jobs.store import DB_FILE, PROOFS_DIR, JobStore
    from ..verify import verify_proof

    t0 = time.perf_counter()
    res = CheckResult("crash_resume")
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    inputs = work / "rows.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"r{i}", "input_data": [r]}) + "\n" for i, r in enumerate(rows)))
    out = work / "out"
    argv = ["batch", str(circuit_dir), str(inputs), "--out", str(out), "--workers", "1", "--threads-per-worker", "1"]
    logf = open(work / "batch.log", "ab")
    log_kills = []
    n_rows = len(rows)
    done, tries = 0, 0
    while done < kills and tries < 4 * kills:
        # Alternate: crash points in turn (each at its n-th hit), and kills at a random moment from outside.
        if tries % 2 == 0:
            point = CRASH_POINTS[(done // 2) % len(CRASH_POINTS)]
            hit = rng.randint(1, 3) if point != "store-commit" else rng.randint(2, 9)
            p = _start(argv, _env({CRASH_ENV: f"{point}@{hit}"}), logf)
            try:
                code = p.wait(timeout=600)
            except subprocess.TimeoutExpired:
                code = None
            _kill_group(p)  # its prover processes, orphaned by the coordinator's death
            killed = code == -signal.SIGKILL
            what = f"crash point {point} (hit {hit})"
        else:
            wait = rng.uniform(2.0, max_wait_s)
            code, killed = _kill_after(_start(argv, _env(), logf), wait)
            what = f"SIGKILL at {wait:.1f} s"
        tries += 1
        if not killed:
            # The batch finished before the kill came: give it more rows (same file, same OUTDIR) and go on.
            extra = [[round(rng.uniform(-3.5, 3.5), 3) for _ in rows[0]] for _ in range(max(2, len(rows) // 2))]
            with open(inputs, "a") as f:
                f.writelines(json.dumps({"id": f"r{n_rows + i}", "input_data": [r]}) + "\n"
                             for i, r in enumerate(extra))
            n_rows += len(extra)
            log_kills.append({"kill": what, "happened": False, "exit": code, "rows_added": len(extra)})
            continue
        done += 1
        db = out / DB_FILE
        integrity = _integrity(db) if db.exists() else "ok"
        partial = _whole_proofs(out / PROOFS_DIR) if (out / PROOFS_DIR).exists() else []
        proofs_now = len(list((out / PROOFS_DIR).glob("*.json"))) if (out / PROOFS_DIR).exists() else 0
        ok = integrity == "ok" and not partial
        res.case(ok, "kill", f"after {what}: integrity {integrity}, partial files {partial}")
        log_kills.append({"kill": what, "happened": True, "proof_files": proofs_now, "integrity": integrity,
                          "partial_files": partial})
    # Resume until done (a last run without any kill).
    resumes = 0
    code = None
    while resumes < 3:
        resumes += 1
        p = _start(argv, _env(), logf)
        code = p.wait(timeout=1800)
        _kill_group(p)
        if code == 0:
            break
    logf.close()
    expected = expected_ids(circuit_dir, inputs)
    files = {f.stem for f in (out / PROOFS_DIR).glob("*.json")}
    leftovers = [f.name for f in (out / PROOFS_DIR).iterdir() if not f.name.endswith(".json")]
    job_of_file = {}
    for f in (out / PROOFS_DIR).glob("*.json"):
        meta = json.loads(f.read_text()).get("zkinfer", {})
        job_of_file[f.stem] = meta.get("job_id")
    with JobStore(out) as store:
        counts = store.counts()
        adopted = store.db.execute("SELECT COUNT(*) FROM jobs WHERE adopted = 1").fetchone()[0]
        attempts = store.db.execute("SELECT SUM(attempts) FROM jobs").fetchone()[0]
    lost = sorted(expected - files)
    extra = sorted(files - expected)
    jobs_listed = list(job_of_file.values())
    duplicated = len(jobs_listed) - len(set(jobs_listed))
    res.case(code == 0, "resume", f"final resume exited {code}")
    res.case(not lost, "lost", f"lost proofs: {lost}")
    res.case(not extra and duplicated == 0, "duplicated", f"extra proof files {extra}, {duplicated} jobs twice")
    res.case(not leftovers, "partial", f"files left in proofs/: {leftovers}")
    res.case(_integrity(out / DB_FILE) == "ok", "integrity", "integrity_check failed at the end")
    res.case(counts["proved"] == len(expected) and counts["queued"] == counts["running"] == 0, "store",
             f"store counts {counts}")
    not_valid = []
    for pid in sorted(files & expected):
        r = verify_proof(circuit_dir, out / PROOFS_DIR / f"{pid}.json")
        if not r.valid:
            not_valid.append(f"{pid}: {r.reason}")
    res.case(not not_valid, "verify", f"proofs that do not verify: {not_valid[:3]}")
    res.details.update(kills=log_kills, resumes=resumes, adopted_proof_files=adopted, dispatches=attempts,
                       expected_proofs=len(expected), proof_files=len(files))
    res.seconds = time.perf_counter() - t0
    n_killed = sum(k["happened"] for k in log_kills)
    at_points = sum(1 for k in log_kills if k["happened"] and "point" in k["kill"])
    res.notes = (f"{n_killed} SIGKILLs of a {n_rows}-row batch ({at_points}"
                 f" at crash points: proof temp written, proof published before recording, store commit; the "
                 f"rest at random moments), then resumed: {len(files)} of {len(expected)} proofs, "
                 f"{len(lost)} lost, {duplicated + len(extra)} duplicated, {len(not_valid)} not verifying, "
                 f"{adopted} adopted after a crash, integrity ok after every kill")
    return res


def build_kills(root: Path, kills: int = 3, seed: int = 13, max_wait_s: float = 25.0,
                crash_install: bool = True) -> CheckResult:
    """Rebuilds of the subject circuit killed at random moments; the folder keeps a usable circuit."""
    from .. import manifest as manifest_mod
    from . import subject

    t0 = time.perf_counter()
    res = CheckResult("crash_resume_build")
    rng = random.Random(seed)
    s = subject.build(root, "buildkill")
    log = open(root / "buildkill.log", "ab")
    events = []

    def rebuild_argv(bias: float) -> list[str]:
        # The subject's own build (its calibration ladder and layout), run as a separate process to kill.
        return ["-c", f"from pipeline.reliability import subject; subject.build({str(root)!r}, 'buildkill', "
                f"bias={bias!r})"]

    def usable() -> str | None:
        from ..prove import Prover
        from ..verify import verify_proof

        manifest_mod.forget_verification_cache()
        try:
            m = manifest_mod.load(s.dir)
            manifest_mod.verify_artifacts(m)
            sample = json.loads((s.dir / manifest_mod.SAMPLES).read_text().splitlines()[0])["input_data"]
            Prover(s.dir).prove(sample, root / "buildkill.proof.json")
            r = verify_proof(s.dir, root / "buildkill.proof.json")
            return None if r.valid else f"proof invalid: {r.reason}"
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {e}"

    # How long an uninterrupted rebuild takes here, so kills land inside a build, not after it.
    t_build = time.perf_counter()
    p = _start(rebuild_argv(0.0625), _env(), log)
    code = p.wait(timeout=900)
    t_build = time.perf_counter() - t_build
    res.details["uninterrupted_build_s"] = round(t_build, 1)
    done, tries = 0, 0
    while done < kills and tries < 3 * kills:
        tries += 1
        bias = 0.125 * tries
        wait = rng.uniform(0.05 * t_build, 0.9 * t_build)
        code, killed = _kill_after(_start(rebuild_argv(bias), _env(), log), wait)
        why = usable()
        events.append({"kill_at_s": round(wait, 1), "killed": killed, "exit": code, "usable_after": why is None,
                       "problem": why})
        if not killed:
            continue  # it finished first: not a kill, try again
        done += 1
        res.case(why is None, "build-kill", f"build killed at {wait:.1f} s: {why}")
    if crash_install:
        # The moment a kill can hurt most: the finished build moving its files into place.
        p = _start(rebuild_argv(-0.25), _env({CRASH_ENV: "build-install@2"}), log)
        code = p.wait(timeout=900)
        _kill_group(p)
        why = usable()
        res.case(why is None, "build-install", f"build killed while installing its files: {why}")
        events.append({"kill": "crash point build-install (2nd file)", "exit": code, "usable_after": why is None,
                       "problem": why})
        res.details["install_window"] = events[-1]
    p = _start(rebuild_argv(0.0), _env(), log)
    code = p.wait(timeout=900)
    why = usable() if code == 0 else f"rebuild exited {code}"
    res.case(why is None, "rebuild", f"clean rebuild: {why}")
    log.close()
    res.details["builds"] = events
    res.seconds = time.perf_counter() - t0
    return res
