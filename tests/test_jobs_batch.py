"""Batch proving end to end: real proofs of the tiny circuit, real SQLite, real SIGKILLs, a real local Ray.

Few jobs per test (each proof takes seconds on 2 cores); one local batch is shared by the tests that only
read its results, and the Ray tests compare against it.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from pipeline import jobs
from pipeline.errors import UsageError
from pipeline.jobs import node_cache
from pipeline.jobs.local import LocalBackend
from pipeline.jobs.worker import LOST, PROVED, Task
from pipeline.manifest import load as load_manifest
from pipeline.prove import input_digest
from pipeline.verify import verify_proof

pytestmark = pytest.mark.slow


def samples(circuit):
    return [json.loads(line)["input_data"] for line in (circuit / "samples.jsonl").read_text().splitlines()]


def zkinfer(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True)


def _as_from_a_terminal():
    # A batch started from a terminal has Ctrl-C's default disposition; one started by a non-interactive
    # shell's `cmd &` (as CI scripts may run pytest) inherits SIGINT ignored, and Python keeps it ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_batch(circuit, inputs, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "batch", str(circuit), str(inputs), "--out",
                             str(out), *map(str, extra)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal)


def query(out, sql, *args):
    db = sqlite3.connect(out / "jobs.sqlite")
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def wait_until(condition, proc=None, timeout=120):
    t0 = time.monotonic()
    while not condition():
        assert proc is None or proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, "timed out waiting for the batch"
        time.sleep(0.05)


def proof_files(out):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "proofs").glob("*.json")}


def proved_attempts(out):
    return dict(query(out, "SELECT id, attempts FROM jobs WHERE state = 'proved'"))


# Rows 4-8 are not provable, each for its own reason; row 9 repeats row 1's input under another label.
BAD_ROWS = {
    "short": "in.jsonl line 4: input 0 has 7 values; the circuit expects shape [1, 8]",
    "nan": "in.jsonl line 5 input_data[0][0]: nan is not a finite number",
    "text": 'in.jsonl line 6 input_data[0][3]: expected a number, got "x"',
    "huge": "in.jsonl line 7: a lookup input reaches",
    None: "in.jsonl line 8 is not valid JSON",
}


@pytest.fixture(scope="module")
def batch_inputs(tiny_circuit, tmp_path_factory):
    s = samples(tiny_circuit)
    lines = [json.dumps({"id": "alice", "input_data": s[0]}), json.dumps({"input_data": s[1]}),
             json.dumps({"id": "carol", "input_data": s[2]}),
             json.dumps({"id": "short", "input_data": [s[0][0][:7]]}),
             '{"id": "nan", "input_data": [[NaN, 1, 2, 3, 4, 5, 6, 7]]}',
             json.dumps({"id": "text", "input_data": [[1, 2, 3, "x", 5, 6, 7, 8]]}),
             json.dumps({"id": "huge", "input_data": [[50.0] * 8]}),
             '{"id": "broken", "input_data": [[1, 2',
             json.dumps({"id": "alice-again", "input_data": s[0]})]
    p = tmp_path_factory.mktemp("inputs") / "in.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.fixture(scope="module")
def local_batch(tiny_circuit, batch_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    r = zkinfer("batch", tiny_circuit, batch_inputs, "--out", out, "--workers", 2)
    return r, out


def test_bad_rows_fail_with_reasons_while_good_rows_are_proved(local_batch, tiny_circuit):
    r, out = local_batch
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout.rstrip().endswith("3 proved, 5 failed")
    assert "9 rows (4 not valid inputs): 8 new jobs, 1 already submitted" in r.stdout
    for fragment in BAD_ROWS.values():
        assert fragment in r.stdout
    assert "outside the calibrated range" in r.stdout

    files = sorted((out / "proofs").glob("*.json"))
    assert len(files) == 3
    m = load_manifest(tiny_circuit)
    for f in files:
        proof = json.loads(f.read_text())
        assert proof["zkinfer"]["job_id"] == f.stem and proof["zkinfer"]["circuit_id"] == m.circuit_id
        assert jobs.job_id(m.circuit_id, proof["zkinfer"]["input_sha256"]) == f.stem
        assert proof["calldata"]["proof"] == proof["hex_proof"] and proof["outputs"]
    result = verify_proof(tiny_circuit, files[0])
    assert result.valid, result.reason


def test_duplicate_submission_proves_nothing(local_batch, tiny_circuit, batch_inputs):
    _, out = local_batch
    before, attempts, runs = proof_files(out), proved_attempts(out), query(out, "SELECT COUNT(*) FROM runs")
    r = zkinfer("batch", tiny_circuit, batch_inputs, "--out", out, "--workers", 2)
    assert r.returncode == 1
    assert "0 new jobs, 9 already submitted" in r.stdout and "this run:   0 proved, 0 failed" in r.stdout
    assert proof_files(out) == before and proved_attempts(out) == attempts
    assert set(attempts.values()) == {1}
    assert query(out, "SELECT COUNT(*) FROM runs") == runs  # nothing to prove: no run recorded


def test_the_same_inputs_as_csv_are_the_same_jobs(local_batch, tiny_circuit, tmp_path):
    _, local_out = local_batch
    out = tmp_path / "out"
    shutil.copytree(local_out, out)
    before = proof_files(out)
    csv_path = tmp_path / "borrowers.csv"
    rows = [f"b-{i}," + ",".join(map(str, x[0])) for i, x in enumerate(samples(tiny_circuit)[:3])]
    csv_path.write_text("id," + ",".join(f"f{i}" for i in range(8)) + "\n" + "\n".join(rows) + "\n")
    r = zkinfer("batch", tiny_circuit, csv_path, "--out", out)
    assert "3 rows: 0 new jobs, 3 already submitted" in r.stdout, r.stdout + r.stderr
    assert proof_files(out) == before
    exported = zkinfer("jobs", "export", out, "--format", "jsonl").stdout.splitlines()
    labels = {json.loads(line)["label"] for line in exported}
    assert {"b-0", "b-1", "b-2", "alice", "carol"} <= labels


def test_status_and_export_of_a_real_batch(local_batch):
    _, out = local_batch
    r = zkinfer("jobs", "status", out)
    assert r.returncode == 0, r.stderr
    assert "8: 3 proved, 5 failed, 0 queued, 0 running" in r.stdout
    assert "last run:   completed, local x2: 3 proved in" in r.stdout and "proofs/min" in r.stdout
    assert "[huge]" in r.stdout and "outside the calibrated range" in r.stdout

    r = zkinfer("jobs", "export", out, "--format", "csv")
    rows = r.stdout.splitlines()
    assert rows[0] == "id,label,output_0,proof_path,slot" and len(rows) == 5  # alice and alice-again share a proof
    by_label = {row.split(",")[1]: row.split(",") for row in rows[1:]}
    assert by_label["alice"][0] == by_label["alice-again"][0] and by_label["alice"][3] == by_label["alice-again"][3]
    assert set(by_label) == {"alice", "alice-again", "", "carol"}
    for row in rows[1:]:
        proof = json.loads(open(row.split(",")[3]).read())
        assert float(row.split(",")[2]) == proof["outputs"][0][0]
    exported = [json.loads(x) for x in zkinfer("jobs", "export", out, "--format", "jsonl").stdout.splitlines()]
    assert {e["label"] for e in exported} == {"alice", "alice-again", None, "carol"}


def test_resume_after_sigkill_and_ctrl_c_at_several_points(tiny_circuit, tmp_path):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"input_data": x}) + "\n" for x in samples(tiny_circuit)))
    out = tmp_path / "out"
    n = len(samples(tiny_circuit))

    def running():
        try:
            return bool(query(out, "SELECT 1 FROM jobs WHERE state = 'running'"))
        except sqlite3.OperationalError:  # the store is not created yet
            return False

    # 1. SIGKILL while the first proof is being made: nothing published, the job left `running`.
    p = start_batch(tiny_circuit, inputs, out)
    wait_until(running, p)
    p.kill()
    p.wait()
    assert proof_files(out) == {} and running()

    # 2. Ctrl-C after a proof: stops cleanly, says how to resume, leaves nothing running.
    p = start_batch(tiny_circuit, inputs, out)
    wait_until(lambda: len(proof_files(out)) >= 1, p)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stdout + stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    assert not running() and query(out, "SELECT outcome FROM runs")[-1] == ("interrupted",)

    # 3. SIGKILL mid-run, one more proof later.
    p = start_batch(tiny_circuit, inputs, out)
    k = len(proof_files(out))
    wait_until(lambda: len(proof_files(out)) > k, p)
    p.kill()
    p.wait()
    snapshot, attempts = proof_files(out), proved_attempts(out)
    assert len(snapshot) == len(attempts) >= 2
    # The killed coordinator took its prover with it (no orphan racing the next run).
    worker_pid = int(query(out, "SELECT worker FROM jobs WHERE state = 'proved' ORDER BY finished_at DESC")[0][0]
                     .split(":")[1])
    wait_until(lambda: not os.path.exists(f"/proc/{worker_pid}"), timeout=10)

    # 4. The crash between publishing a proof file and recording it: the file is there, the store still
    #    says `running` (the state a SIGKILL right after the rename leaves), plus a write cut short.
    published = sorted(attempts)[0]
    db = sqlite3.connect(out / "jobs.sqlite")
    db.execute("UPDATE jobs SET state = 'running', proof_path = NULL WHERE id = ?", (published,))
    db.commit()
    db.close()
    (out / "proofs" / f".{published}.json.k3x9.tmp").write_text('{"instances": [["0')

    r = zkinfer("batch", tiny_circuit, inputs, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{n} proved, 0 failed" in r.stdout and "1 proof file(s) adopted" in r.stdout
    final = proof_files(out)
    assert len(final) == n and not list((out / "proofs").glob(".*"))
    assert {name: final[name] for name in snapshot} == snapshot  # no finished proof rewritten
    assert {i: a for i, a in proved_attempts(out).items() if i in attempts} == attempts  # nor proven again
    assert query(out, "SELECT adopted FROM jobs WHERE id = ?", published) == [(1,)]
    for f in (out / "proofs").glob("*.json"):
        json.loads(f.read_text())  # every file whole
    assert verify_proof(tiny_circuit, out / "proofs" / f"{published}.json").valid
    assert [r[0] for r in query(out, "SELECT outcome FROM runs ORDER BY started_at")] == \
        [None, "interrupted", None, "completed"]


def test_timeout_kills_the_prover_and_fails_only_that_job(tiny_circuit, tmp_path):
    s = samples(tiny_circuit)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"id": "slow", "input_data": s[3]}) + "\n")
    summary = jobs.run_batch(tiny_circuit, inputs, tmp_path / "out", timeout_s=1.0)
    assert (summary.proved, summary.failed, summary.exit_code) == (0, 1, 1)
    assert "no proof after 1 s; the prover process was killed" in summary.failures[0]["reason"]

    summary = jobs.run_batch(tiny_circuit, inputs, tmp_path / "out", retry_failed=True)
    assert (summary.proved, summary.failed, summary.exit_code, summary.proved_now) == (1, 0, 0, 1)


def test_a_dead_prover_process_loses_only_its_job(tiny_circuit):
    backend = LocalBackend(tiny_circuit, workers=1, timeout_s=120)
    try:
        t0 = time.monotonic()
        while not backend.free_slots():
            assert not backend.poll(0.2) and time.monotonic() - t0 < 60
        backend.submit(Task.single("job-1", samples(tiny_circuit)[0], "in.jsonl line 1"))
        os.kill(backend._workers[0].process.pid, signal.SIGKILL)
        outcomes = []
        while not outcomes:
            outcomes = backend.poll(0.2)
        assert outcomes[0].kind == LOST and "in.jsonl line 1: prover process" in outcomes[0].reason
        assert "killed by SIGKILL" in outcomes[0].reason
        while not backend.free_slots():  # a fresh worker took its place
            assert not backend.poll(0.2) and time.monotonic() - t0 < 60
    finally:
        backend.close()


# ---- Ray: one local cluster for the module

@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    cache = tmp_path_factory.mktemp("node-cache")
    old = os.environ.get(node_cache.CACHE_ENV)
    os.environ[node_cache.CACHE_ENV] = str(cache)  # inherited by the Ray workers started below
    ray.init(num_cpus=2, include_dashboard=False)
    yield cache
    ray.shutdown()
    if old is None:
        os.environ.pop(node_cache.CACHE_ENV, None)
    else:
        os.environ[node_cache.CACHE_ENV] = old


def test_ray_backend_gives_the_same_results_as_local(local_batch, tiny_circuit, batch_inputs, ray_cluster, tmp_path):
    _, local_out = local_batch
    summary = jobs.run_batch(tiny_circuit, batch_inputs, tmp_path / "out", workers=2, backend="ray")
    assert (summary.proved, summary.failed, summary.exit_code) == (3, 5, 1)
    local_files = sorted(p.name for p in (local_out / "proofs").glob("*.json"))
    assert sorted(p.name for p in (tmp_path / "out" / "proofs").glob("*.json")) == local_files
    for name in local_files:
        a = json.loads((local_out / "proofs" / name).read_text())
        b = json.loads((tmp_path / "out" / "proofs" / name).read_text())
        assert (a["instances"], a["outputs"], a["calldata"]["instances"]) == \
               (b["instances"], b["outputs"], b["calldata"]["instances"])
    local_failures = {r[0]: r[1] for r in query(local_out, "SELECT id, reason FROM jobs WHERE state = 'failed'")}
    assert {f["id"]: f["reason"] for f in summary.failures} == local_failures

    # The circuit reached this node's cache once, by hard links to the driver's files (same machine).
    sha = load_manifest(tiny_circuit).circuit_id
    assert [p.name for p in ray_cluster.iterdir() if p.is_dir()] == [sha]
    if (ray_cluster / sha / "pk.key").stat().st_dev == (tiny_circuit / "pk.key").stat().st_dev:
        assert (ray_cluster / sha / "pk.key").stat().st_ino == (tiny_circuit / "pk.key").stat().st_ino


def test_a_run_mixing_local_and_ray_resumes(local_batch, tiny_circuit, batch_inputs, ray_cluster, tmp_path):
    _, local_out = local_batch
    out = tmp_path / "out"
    shutil.copytree(local_out, out)
    lost, published, untouched = sorted(proved_attempts(out))
    # A local coordinator died while proving `lost`, and right after publishing `published`'s file.
    (out / "proofs" / f"{lost}.json").unlink()
    db = sqlite3.connect(out / "jobs.sqlite")
    db.execute("UPDATE jobs SET state = 'running', proof_path = NULL WHERE id IN (?, ?)", (lost, published))
    db.commit()
    db.close()
    before = proof_files(out)

    summary = jobs.run_batch(tiny_circuit, batch_inputs, out, workers=2, backend="ray")
    assert (summary.proved, summary.failed, summary.requeued, summary.adopted, summary.proved_now) == (3, 5, 2, 1, 1)
    after = proof_files(out)
    assert {k: after[k] for k in before} == before
    assert query(out, "SELECT backend, attempts FROM jobs WHERE id = ?", lost) == [("ray", 2)]
    assert query(out, "SELECT backend, attempts FROM jobs WHERE id = ?", untouched) == [("local", 1)]
    assert [r[0] for r in query(out, "SELECT backend FROM runs ORDER BY started_at")] == ["local", "ray"]


def test_ray_ships_the_circuit_to_a_node_that_lacks_it(tiny_circuit, ray_cluster, tmp_path):
    import ray

    from pipeline.jobs.ray_backend import ProverActor, ship_circuit

    fresh = tmp_path / "other-node-cache"
    sha = load_manifest(tiny_circuit).circuit_id
    actor = ray.remote(ProverActor).options(
        num_cpus=1, runtime_env={"env_vars": {node_cache.CACHE_ENV: str(fresh)}}).remote(sha)
    try:
        assert ray.get(actor.load_local.remote(str(tmp_path / "not-on-this-node"))) is None
        ray.get(actor.load_shipped.remote(ship_circuit(ray, tiny_circuit)))
        shipped = fresh / sha / "pk.key"
        assert shipped.stat().st_ino != (tiny_circuit / "pk.key").stat().st_ino  # written from the object store
        sample = samples(tiny_circuit)[4]
        outcome = ray.get(actor.prove.remote(Task.single("j", sample, "in.jsonl line 1")))
        assert outcome.kind == PROVED, outcome.reason
        assert outcome.proof["zkinfer"]["input_sha256"] == input_digest(sample)
    finally:
        ray.kill(actor)


def test_gpus_per_job_needs_gpus(tiny_circuit, batch_inputs, ray_cluster, tmp_path):
    with pytest.raises(UsageError, match="--gpus-per-job 1: the local Ray instance has 0 GPUs"):
        jobs.run_batch(tiny_circuit, batch_inputs, tmp_path / "out", backend="ray", gpus_per_job=1)
