"""The batch coordinator: read inputs into the store, recover from a crash, dispatch, record results.

One coordinator per OUTDIR (OutDirLock). On start it repairs what a dead predecessor left:

* jobs marked `running` go back to `queued` (their prover died with the coordinator);
* a proof file for a queued job is adopted, not proven again, if it belongs to that job (same circuit
  manifest, same input hash): the predecessor died after publishing the file but before recording it;
* stray temporary files in OUTDIR/proofs (a write cut short) are removed; proof files only ever appear
  whole, by rename;
* a proved job whose proof file has gone is queued again.

Then every queued job is sent to the backend, at most one per worker; each result is written (proof file,
then the store) by this process alone. Ctrl-C (or SIGTERM) stops dispatching, kills the workers, requeues
what they held and reports how to resume.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import write_json_atomic
from ..errors import ProofError, UsageError
from ..prove import Prover
from .progress import Progress
from .sources import read_inputs
from .store import PROOFS_DIR, JobStore, OutDirLock
from .worker import FAILED, LOST, PROVED, TIMEOUT, Outcome, Task

BACKENDS = ("local", "ray")
DEFAULT_TIMEOUT_S = 600.0
# A job whose prover process dies (OOM-killed, node lost) is retried this many times in all before it fails.
MAX_ATTEMPTS = 3
_POLL_S = 0.5


@dataclass
class BatchSummary:
    out_dir: Path
    counts: dict[str, int]                   # the whole store after this run: queued/running/proved/failed
    rows_read: int = 0
    invalid_rows: int = 0                    # rows read that are not valid inputs (failed jobs at once)
    new_jobs: int = 0
    duplicates: int = 0                      # rows whose job already existed (same circuit and input)
    proved_now: int = 0
    failed_now: int = 0
    adopted: int = 0                         # proof files recovered from a crashed run
    requeued: int = 0                        # jobs a crashed or interrupted run left running
    interrupted: bool = False
    elapsed_s: float = 0.0                   # dispatching and proving, this run
    failures: list[dict] = field(default_factory=list)

    @property
    def proved(self) -> int:
        return self.counts["proved"]

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def remaining(self) -> int:
        return self.counts["queued"] + self.counts["running"]

    @property
    def proofs_per_minute(self) -> float | None:
        return 60 * self.proved_now / self.elapsed_s if self.proved_now and self.elapsed_s else None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed or self.remaining else 0


def run_batch(circuit_dir: str | os.PathLike, inputs: str | os.PathLike | None, out_dir: str | os.PathLike,
              workers: int = 1, backend: str = "local", address: str | None = None, gpus_per_job: float = 0,
              cpus_per_job: float = 1, threads_per_worker: int | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S, retry_failed: bool = False,
              progress: Progress | None = None) -> BatchSummary:
    """`zkinfer batch`: prove every row of `inputs` (JSONL or CSV) into `out_dir`, resuming what is there.

    `inputs` may be None to only finish the jobs already in the store. Returns a summary; raises
    UsageError for bad arguments or unreadable files. Ctrl-C returns a summary with `interrupted` set.
    Local provers are spawned processes: a script calling this needs an `if __name__ == "__main__":` guard.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if timeout_s <= 0:
        raise UsageError("--timeout must be positive")
    if backend == "local" and (address or gpus_per_job or cpus_per_job != 1):
        raise UsageError("--address, --gpus-per-job and --cpus-per-job apply to --backend ray only")
    # Checks every artifact against the manifest once, here; workers trust this check.
    prover = Prover(circuit_dir)
    manifest = prover.manifest
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    with OutDirLock(out), JobStore(out, create=True) as store:
        store.bind_circuit(manifest.sha256, manifest.name, str(Path(circuit_dir).resolve()))
        summary = BatchSummary(out_dir=out, counts=store.counts())
        coordinator = _Coordinator(store, progress, summary)
        outcome = "error"
        try:
            with _sigterm_as_interrupt():
                if inputs is not None:
                    rows = _RowCounter(read_inputs(inputs, manifest.sha256, prover.parse_input))
                    summary.new_jobs, summary.duplicates = store.add(rows)
                    summary.rows_read, summary.invalid_rows = rows.n, rows.invalid
                summary.requeued, summary.adopted = _recover(store, manifest.sha256)
                if retry_failed:
                    store.requeue_failed()
                coordinator.run(backend, workers, lambda: _make_backend(
                    backend, Path(circuit_dir), manifest.sha256, workers, timeout_s, address, gpus_per_job,
                    cpus_per_job, threads_per_worker))
            outcome = "completed"
        except KeyboardInterrupt:
            summary.interrupted, outcome = True, "interrupted"
        finally:
            store.requeue_running("the run that was proving it stopped")
            if coordinator.run_id:
                store.end_run(coordinator.run_id, outcome)
        summary.counts = store.counts()
        summary.failures = store.failures()
    return summary


def _make_backend(backend, circuit_dir, manifest_sha256, workers, timeout_s, address, gpus_per_job, cpus_per_job,
                  threads_per_worker):
    if backend == "ray":
        from .ray_backend import RayBackend

        return RayBackend(circuit_dir, manifest_sha256, workers, timeout_s, address=address,
                          gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job,
                          threads_per_worker=threads_per_worker)
    from .local import LocalBackend

    return LocalBackend(circuit_dir, workers, timeout_s, threads_per_worker)


class _RowCounter:
    """Counts the rows (and the invalid ones) as the store consumes them in one pass."""

    def __init__(self, specs):
        self._specs, self.n, self.invalid = specs, 0, 0

    def __iter__(self):
        for spec in self._specs:
            self.n += 1
            self.invalid += spec.error is not None
            yield spec


class _Coordinator:
    def __init__(self, store: JobStore, progress: Progress | None, summary: BatchSummary):
        self.store, self.progress, self.summary = store, progress, summary
        self.run_id: str | None = None  # a run is recorded only when there is something to prove

    def run(self, backend_name: str, workers: int, make_backend) -> None:
        queue = self.store.ids("queued")
        counts = self.store.counts()
        if self.progress:
            self.progress.start(total=sum(counts.values()), done=counts["proved"] + counts["failed"])
        if not queue:
            self._close_progress()
            return
        self.run_id = self.store.start_run(backend_name, workers)
        t0 = time.monotonic()
        backend = None
        try:
            backend = make_backend()
            queue.reverse()  # pop() from the end = submission order
            while queue or backend.busy():
                while queue and backend.free_slots():
                    job = self.store.job(queue.pop())
                    self.store.mark_running(job.id, self.run_id, backend.name)
                    backend.submit(Task(job.id, job.input_data, job.source))
                for outcome in backend.poll(_POLL_S):
                    if self._record(outcome):
                        queue.append(outcome.job_id)
        finally:
            self.summary.elapsed_s = time.monotonic() - t0
            if backend is not None:
                backend.close()
            self._close_progress()

    def _close_progress(self) -> None:
        if self.progress:
            self.progress.close()

    def _record(self, o: Outcome) -> bool:
        """Write one result. Returns True when the job should be dispatched again."""
        if o.kind == PROVED:
            rel = f"{PROOFS_DIR}/{o.job_id}.json"
            o.proof["zkinfer"]["job_id"] = o.job_id
            # File first, then the store: a crash in between leaves a file the next run adopts.
            write_json_atomic(self.store.out_dir / rel, o.proof, indent=None)
            self.store.mark_proved(o.job_id, rel, o.proof["outputs"], o.proof["zkinfer"].get("prove_s"), o.worker,
                                   self.run_id)
            self.summary.proved_now += 1
        elif o.kind == LOST and self.store.job(o.job_id).attempts < MAX_ATTEMPTS:
            self.store.requeue(o.job_id, o.reason)
            return True
        else:
            assert o.kind in (FAILED, TIMEOUT, LOST), o.kind
            reason = o.reason if o.kind != LOST else f"{o.reason} (attempt {MAX_ATTEMPTS} of {MAX_ATTEMPTS})"
            self.store.mark_failed(o.job_id, reason, o.worker)
            self.summary.failed_now += 1
        if self.progress:
            self.progress.advance(o.job_id, PROVED if o.kind == PROVED else FAILED, o.reason)
        return False


def _recover(store: JobStore, manifest_sha256: str) -> tuple[int, int]:
    """Repair what a crashed coordinator left (we hold the lock: no one else is working here). -> (requeued, adopted)"""
    proofs = store.out_dir / PROOFS_DIR
    for tmp in proofs.glob(".*.tmp"):  # atomic_path's temporaries: a write that never finished
        tmp.unlink(missing_ok=True)
    requeued = store.requeue_running("the run that was proving it died")
    for job in store.jobs("proved"):
        if not (store.out_dir / job.proof_path).exists():
            store.requeue(job.id, f"proof file {job.proof_path} was missing")
    adopted = 0
    for job in store.jobs("queued"):
        rel = f"{PROOFS_DIR}/{job.id}.json"
        proof = _proof_for(store.out_dir / rel, job.id, job.input_sha256, manifest_sha256)
        if proof is not None:
            store.mark_proved(job.id, rel, proof["outputs"], proof["zkinfer"].get("prove_s"), None, None, adopted=True)
            adopted += 1
    return requeued, adopted


def _proof_for(path: Path, job_id: str, input_sha256: str | None, manifest_sha256: str) -> dict | None:
    """The proof file at `path` if it is a whole proof of this job's input under this circuit, else None."""
    try:
        proof = json.loads(path.read_text())
        meta = proof["zkinfer"]
        if (meta["manifest_sha256"] == manifest_sha256 and meta["input_sha256"] == input_sha256
                and meta.get("job_id") == job_id and proof["instances"] and proof["hex_proof"]
                and "outputs" in proof):
            return proof
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


class _sigterm_as_interrupt:
    """SIGTERM (what schedulers send) stops a batch the way Ctrl-C does. Main thread only."""

    def __enter__(self):
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def measure_throughput(circuit_dir: str | os.PathLike, n_inputs: int = 6, workers: int = 1,
                       threads_per_worker: int | None = None, backend: str = "local") -> float:
    """Proofs per minute for a fresh batch of `n_inputs` distinct inputs (for `make bench`).

    The inputs are the circuit's saved samples, each repeated with a tiny offset (1e-6 per copy) so every
    one is a distinct job; the time is the batch's dispatch-to-last-result time, worker start-up included.
    """
    prover = Prover(circuit_dir)
    samples_path = Path(circuit_dir) / "samples.jsonl"
    samples = [json.loads(line)["input_data"] for line in samples_path.read_text().splitlines() if line.strip()]
    if not samples:
        raise UsageError(f"{samples_path} holds no samples to benchmark with")
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-") as tmp:
        inputs = Path(tmp) / "inputs.jsonl"
        rows = []
        for i in range(n_inputs):
            base = prover.parse_input({"input_data": samples[i % len(samples)]}, "sample")
            offset = 1e-6 * (i // len(samples))
            rows.append(json.dumps({"input_data": [[v + offset for v in t] for t in base]}))
        inputs.write_text("\n".join(rows) + "\n")
        summary = run_batch(circuit_dir, inputs, Path(tmp) / "out", workers=workers, backend=backend,
                            threads_per_worker=threads_per_worker)
    if summary.proved != n_inputs:
        raise ProofError(f"benchmark batch proved {summary.proved} of {n_inputs}: "
                         + "; ".join(f["reason"] for f in summary.failures[:3]))
    return summary.proofs_per_minute
