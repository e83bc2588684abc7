"""A lost Ray node: a real multi-node Ray cluster on this machine (Ray's own `cluster_utils.Cluster`: a head
and two worker nodes, each its own raylet and object store, separate processes), a batch run on it with
`--backend ray`, and one worker node killed (all its processes, no graceful shutdown) while it proves.

The head has no CPUs, so the provers (1 CPU each) land on the worker nodes, one per node; each node has its
own circuit cache folder (`ZKINFER_CIRCUIT_CACHE`), filled when its first prover starts. The batch must
complete with every job proved once: the lost node's job comes back as LOST, is retried on the surviving
node, and the store shows it (attempts > 1): those are the retried jobs the report names.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from .report import CheckResult


def run(circuit_dir: Path, rows: list[list[float]], work: Path, kill_after_proved: int = 1,
        timeout_s: float = 900.0) -> CheckResult:
    import ray
    from ray.cluster_utils import Cluster

    from ..jobs import run_batch
    from ..jobs.store import DB_FILE, PROOFS_DIR, JobStore
    from ..verify import verify_proof
    from .crash import _integrity, expected_ids

    t0 = time.perf_counter()
    res = CheckResult("ray_node_loss")
    work.mkdir(parents=True, exist_ok=True)
    inputs = work / "rows.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"r{i}", "input_data": [r]}) + "\n" for i, r in enumerate(rows)))
    out = work / "out"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1, env_vars={"ZKINFER_CIRCUIT_CACHE": str(work / f"cache-node{i}")})
             for i in range(2)]
    cluster.wait_for_nodes()
    killed: dict = {}

    def killer():
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                with JobStore(out) as store:
                    c = store.counts()
            except Exception:  # noqa: BLE001 (the store is not created yet)
                continue
            # Only when both provers are busy: each node runs one (1 CPU per node, none on the head), so the
            # node killed then surely holds a job in flight, the one that must come back and be retried. One
            # running job alone may be on the node that survives (that made this check flaky).
            if c["proved"] >= min(kill_after_proved, max(0, len(rows) - 2)) and c["running"] >= 2:
                victim = nodes[0]
                killed.update(node=victim.unique_id, at_proved=c["proved"], t=round(time.perf_counter() - t0, 1))
                cluster.remove_node(victim, allow_graceful=False)
                return

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        summary = run_batch(circuit_dir, inputs, out, workers=2, backend="ray", address=cluster.address,
                            threads_per_worker=1, timeout_s=600)
    finally:
        thread.join(timeout=5)
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    expected = expected_ids(circuit_dir, inputs)
    files = {f.stem for f in (out / PROOFS_DIR).glob("*.json")}
    with JobStore(out) as store:
        retried = [dict(r) for r in store.db.execute(
            "SELECT j.id, j.attempts, j.worker, (SELECT GROUP_CONCAT(label) FROM labels l WHERE l.job_id = j.id) "
            "AS labels FROM jobs j WHERE attempts > 1 ORDER BY seq")]
        counts = store.counts()
    jobs_in_files = [json.loads((out / PROOFS_DIR / f"{f}.json").read_text())["zkinfer"].get("job_id") for f in files]
    lost, extra = sorted(expected - files), sorted(files - expected)
    dup = len(jobs_in_files) - len(set(jobs_in_files))
    invalid = [f for f in sorted(files) if not verify_proof(circuit_dir, out / PROOFS_DIR / f"{f}.json").valid]
    caches = {p.name: sum(1 for _ in p.rglob("*") if _.is_file()) for p in sorted(work.glob("cache-node*"))}
    res.case(bool(killed), "node-killed", "the worker node was never killed (the batch finished first)")
    res.case(summary.exit_code == 0, "completed", f"batch exit {summary.exit_code}: {summary.failures[:2]}")
    res.case(not lost, "lost", f"lost: {lost}")
    res.case(not extra and dup == 0, "duplicated", f"extra {extra}, {dup} jobs in two files")
    res.case(not invalid, "verify", f"not verifying: {invalid}")
    res.case(_integrity(out / DB_FILE) == "ok", "integrity", "integrity_check failed")
    res.case(bool(retried) or not killed, "retried-reported", "a node was lost but no job shows a retry")
    res.details.update(killed=killed, retried_jobs=retried, counts=counts, node_cache_files=caches,
                       proofs=len(files), expected=len(expected))
    res.seconds = time.perf_counter() - t0
    names = ", ".join(f"{r['labels'] or r['id'][:12]} ({r['attempts']} attempts)" for r in retried) or "none"
    res.notes = (f"Ray cluster (head + 2 worker nodes, cluster_utils), {len(rows)}-row batch, worker node killed "
                 f"after {killed.get('at_proved', '?')} proof(s): {len(files)} of {len(expected)} proofs, "
                 f"{len(lost)} lost, {dup + len(extra)} duplicated, {len(invalid)} not verifying; retried: {names}")
    return res
