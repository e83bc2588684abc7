"""The batch coordinator: read inputs into the store, recover from a crash, dispatch, record results.

A job is one inference (one input row). A circuit proving K inferences at once (K slots, see
`layout.SlotLayout`) gets its queued jobs in packs of K, in submission order (store seq); each pack is one
proof, `OUTDIR/proofs/<pack id>.json`, whose id derives from its members' ids (`sources.pack_id`; for K = 1,
the job's own id). The last pack of a batch may hold fewer than K jobs: it is dispatched only once no
other pack is in flight (a failed pack's good rows come back to the queue and may fill it), and the prover
pads it by repeating its last row; with `pad=False` it stays queued instead, waiting for more rows.

A row outside the calibrated range fails alone: the pack's witness is checked before proving, and when
it fails, each of its rows is checked alone (witness and mock prover, no proof); the rows at fault fail,
the others go back to the queue and are packed again (`worker._bad_rows`).

One coordinator per OUTDIR (OutDirLock). On start it repairs what a dead predecessor left:

* jobs marked `running` go back to `queued` (their prover died with the coordinator);
* a proof file no proved job refers to is adopted, not proven again, if it belongs to queued jobs: same
  circuit manifest, its `slots` name queued jobs of this store with their input hashes, and its name is
  their pack id. The predecessor died after publishing the file but before recording it;
* stray temporary files in OUTDIR/proofs (a write cut short) are removed; proof files only ever appear
  whole, by rename;
* a proved job whose proof file has gone is queued again, and with it every job of that proof.

Then queued packs are sent to the backend, at most one per worker; each result is written (proof file,
then every member in one store transaction) by this process alone, so no job is ever proved twice. Ctrl-C
(or SIGTERM) stops dispatching, kills the workers, requeues what they held and reports how to resume.
"""

from __future__ import annotations

import bisect
import json
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import faults, layout, prooffile
from ..blinding import new_salt
from ..errors import ProofError, UsageError
from ..layout import SlotLayout
from ..prooffile import ProofFile, ProofSlot
from ..prove import Prover
from .progress import Progress
from .sources import pack_id, read_inputs
from .store import PROOFS_DIR, Job, JobStore, OutDirLock
from .worker import FAILED, LOST, PROVED, TIMEOUT, Outcome, Task

BACKENDS = ("local", "ray")
DEFAULT_TIMEOUT_S = 600.0
# A job whose prover process dies (OOM-killed, node lost) is retried this many times in all before it fails.
MAX_ATTEMPTS = 3
_POLL_S = 0.5


@dataclass
class BatchSummary:
    out_dir: Path
    counts: dict[str, int]                   # the whole store after this run: queued/running/proved/failed jobs
    slots: int = 1                           # inferences (jobs) per proof: the circuit's K
    rows_read: int = 0
    invalid_rows: int = 0                    # rows read that are not valid inputs (failed jobs at once)
    new_jobs: int = 0
    duplicates: int = 0                      # rows whose job already existed (same circuit and input)
    proved_now: int = 0                      # jobs (inferences) proved in this run
    proofs_now: int = 0                      # proofs made in this run (one per pack of up to K jobs)
    padded_now: int = 0                      # padding slots in those proofs
    failed_now: int = 0
    adopted: int = 0                         # proof files recovered from a crashed run
    requeued: int = 0                        # jobs a crashed or interrupted run left running
    waiting: int = 0                         # pad=False: queued jobs left for a full pack
    proofs: int = 0                          # proof files in the store after this run
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
        return 60 * self.proofs_now / self.elapsed_s if self.proofs_now and self.elapsed_s else None

    @property
    def inferences_per_minute(self) -> float | None:
        return 60 * self.proved_now / self.elapsed_s if self.proved_now and self.elapsed_s else None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed or self.remaining - self.waiting else 0


def run_batch(circuit_dir: str | os.PathLike, inputs: str | os.PathLike | None, out_dir: str | os.PathLike,
              workers: int = 1, backend: str = "local", address: str | None = None, gpus_per_job: float = 0,
              cpus_per_job: float = 1, threads_per_worker: int | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S, retry_failed: bool = False,
              progress: Progress | None = None, pad: bool = True) -> BatchSummary:
    """`zkinfer batch`: prove every row of `inputs` (JSONL or CSV) into `out_dir`, resuming what is there.

    Each row is one inference; a K-slot circuit proves K rows per proof, padding the last pack by
    repeating its last row, or with `pad=False` leaving fewer than K rows queued for a later run.
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
    slots = prover.slots  # a circuit whose slots cannot be told apart is a usage error, before any work
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    with OutDirLock(out), JobStore(out, create=True) as store:
        store.bind_circuit(manifest.circuit_id, manifest.name, str(Path(circuit_dir).resolve()), slots.count)
        summary = BatchSummary(out_dir=out, counts=store.counts(), slots=slots.count)
        coordinator = _Coordinator(store, progress, summary, slots, pad)
        outcome = "error"
        try:
            with _sigterm_as_interrupt():
                if inputs is not None:
                    # Private inputs are named under the store's secret, so ids confirm no guess.
                    key = None if layout.inputs_public(manifest.circuit) else store.digest_key()
                    rows = _RowCounter(read_inputs(inputs, manifest.circuit_id, prover.parse_row, key))
                    summary.new_jobs, summary.duplicates = store.add(rows)
                    summary.rows_read, summary.invalid_rows = rows.n, rows.invalid
                summary.requeued, summary.adopted = _recover(store, manifest.circuit_id, slots,
                                                             layout.outputs_public(manifest.circuit))
                if retry_failed:
                    store.requeue_failed()
                coordinator.run(backend, workers, lambda: _make_backend(
                    backend, Path(circuit_dir), manifest.circuit_id, workers, timeout_s, address, gpus_per_job,
                    cpus_per_job, threads_per_worker))
            outcome = "completed"
        except KeyboardInterrupt:
            summary.interrupted, outcome = True, "interrupted"
        finally:
            store.requeue_running("the run that was proving it stopped")
            if coordinator.run_id:
                store.end_run(coordinator.run_id, outcome)
        summary.counts = store.counts()
        summary.proofs = store.proof_count()
        summary.failures = store.failures()
        if not pad and not summary.interrupted and summary.counts["queued"] < slots.count:
            summary.waiting = summary.counts["queued"]
    return summary


def _make_backend(backend, circuit_dir, circuit_id, workers, timeout_s, address, gpus_per_job, cpus_per_job,
                  threads_per_worker):
    if backend == "ray":
        from .ray_backend import RayBackend

        return RayBackend(circuit_dir, circuit_id, workers, timeout_s, address=address,
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
    def __init__(self, store: JobStore, progress: Progress | None, summary: BatchSummary, slots: SlotLayout,
                 pad: bool = True):
        self.store, self.progress, self.summary, self.slots, self.pad = store, progress, summary, slots, pad
        self.run_id: str | None = None  # a run is recorded only when there is something to prove
        self.in_flight: dict[str, list[Job]] = {}  # pack id -> its jobs, in slot order

    def _work_left(self, queue: list, busy: int) -> bool:
        """Whether the queue holds a pack to dispatch now or later: K jobs, or a partial pack to pad."""
        return len(queue) >= self.slots.count or bool(queue and self.pad) or busy > 0

    def _pack_ready(self, queue: list, busy: int) -> bool:
        # A partial pack goes last: packs in flight may hand good rows back (a row out of range failed).
        return len(queue) >= self.slots.count or (self.pad and busy == 0)

    def run(self, backend_name: str, workers: int, make_backend) -> None:
        queue = self.store.queued()  # (seq, id), ascending: packs are formed in submission order
        counts = self.store.counts()
        if self.progress:
            self.progress.start(total=sum(counts.values()), done=counts["proved"] + counts["failed"])
        if not self._work_left(queue, 0):
            self._close_progress()
            return
        self.run_id = self.store.start_run(backend_name, workers)
        t0 = time.monotonic()
        backend = None
        try:
            backend = make_backend()
            while self._work_left(queue, backend.busy()):
                while queue and backend.free_slots() and self._pack_ready(queue, backend.busy()):
                    members = [job_id for _, job_id in queue[:self.slots.count]]
                    del queue[:self.slots.count]
                    backend.submit(self._task(members, backend.name))
                for outcome in backend.poll(_POLL_S):
                    for item in self._record(outcome):
                        bisect.insort(queue, item)
        finally:
            self.summary.elapsed_s = time.monotonic() - t0
            if backend is not None:
                backend.close()
            self._close_progress()

    def _task(self, job_ids: list[str], backend_name: str) -> Task:
        jobs = [self.store.job(i) for i in job_ids]
        pid = pack_id(job_ids, self.slots.count)
        self.store.mark_pack_running(pid, job_ids, self.run_id, backend_name)
        self.in_flight[pid] = jobs
        return Task(pid, tuple(job_ids), tuple(j.input_data for j in jobs), tuple(j.source for j in jobs))

    def _close_progress(self) -> None:
        if self.progress:
            self.progress.close()

    def _record(self, o: Outcome) -> list[tuple[int, str]]:
        """Write one pack's result. Returns the (seq, id) of its jobs that go back to the queue."""
        jobs = self.in_flight.pop(o.pack_id)
        if o.kind == PROVED:
            self._publish(o, jobs)
            return []
        back: list[tuple[int, str]] = []
        for job in jobs:
            if o.kind == LOST:
                if self.store.job(job.id).attempts < MAX_ATTEMPTS:
                    self.store.requeue(job.id, o.reason)
                    back.append((job.seq, job.id))
                else:
                    self._fail(job, f"{o.reason} (attempt {MAX_ATTEMPTS} of {MAX_ATTEMPTS})", o.worker)
            elif o.bad_rows is not None and job.id not in o.bad_rows:
                self.store.requeue(job.id, None)  # a good row of a pack another row spoiled: packed again
                back.append((job.seq, job.id))
            else:
                assert o.kind in (FAILED, TIMEOUT), o.kind
                self._fail(job, o.bad_rows[job.id] if o.bad_rows else o.reason, o.worker,
                           o.error_class if o.kind == FAILED else None)
        return back

    def _fail(self, job: Job, reason: str, worker: str | None, error_class: str | None = None) -> None:
        self.store.mark_failed(job.id, reason, worker, error_class)
        self.summary.failed_now += 1
        if self.progress:
            self.progress.advance(job.id, FAILED, reason)

    def _publish(self, o: Outcome, jobs: list[Job]) -> None:
        proof = ProofFile.from_json(o.proof, o.pack_id)
        rel = f"{PROOFS_DIR}/{o.pack_id}.json"
        proof.meta.pack_id = o.pack_id
        if self.slots.count == 1:
            proof.meta.job_id = jobs[0].id
        labels = self.store.labels(j.id for j in jobs)
        for entry in proof.slots:
            job = jobs[min(entry.slot, len(jobs) - 1)]  # padding slots repeat the last real row
            if entry.input_sha256 is None:  # private inputs: workers name none; the store's keyed digest does
                entry.input_sha256 = job.input_sha256
            elif entry.input_sha256 != job.input_sha256:
                raise ProofError(f"{o.pack_id}: slot {entry.slot} proves another input than job {job.id}")
            entry.job_id, entry.labels = job.id, labels[job.id]
        # File first, then the store: a crash in between leaves a file the next run adopts.
        proof.write(self.store.out_dir / rel, crash_point="proof-temp-written")
        faults.point("proof-published")
        self.store.mark_pack_proved(o.pack_id, rel, [(j.id, i, proof.slots[i].outputs) for i, j in enumerate(jobs)],
                                    proof.meta.prove_s, o.worker, self.run_id)
        self.summary.proved_now += len(jobs)
        self.summary.proofs_now += 1
        self.summary.padded_now += self.slots.count - len(jobs)
        if self.progress:
            for job in jobs:
                self.progress.advance(job.id, PROVED, None)


# One slot, the whole input: what a store's proof files are read as when no layout is given (tests).
_ONE_SLOT = SlotLayout(1, False, (), (), False)


def _recover(store: JobStore, circuit_id: str, slots: SlotLayout | None = None,
             outputs_public: bool = True) -> tuple[int, int]:
    """Repair what a crashed coordinator left (we hold the lock: no one else is working here).
    -> (jobs requeued, proof files adopted)"""
    slots = slots or _ONE_SLOT
    proofs = store.out_dir / PROOFS_DIR
    for tmp in proofs.glob(".*.tmp"):  # atomic_path's temporaries: a write that never finished
        tmp.unlink(missing_ok=True)
    requeued = store.requeue_running("the run that was proving it died")
    for job in store.jobs("proved"):
        if not (store.out_dir / job.proof_path).exists():  # every job of that proof is requeued in turn
            store.requeue(job.id, f"proof file {job.proof_path} was missing", forget_proof=True)
    adopted = 0
    recorded = store.proof_paths()
    for path in sorted(proofs.glob("*.json")):
        rel = f"{PROOFS_DIR}/{path.name}"
        if rel in recorded:
            continue
        found = _adoptable(store, path, circuit_id, slots, outputs_public)
        if found is not None:
            prove_s, members = found
            store.mark_pack_proved(path.stem, rel, members, prove_s, None, None, adopted=True)
            adopted += 1
    return requeued, adopted


def _adoptable(store: JobStore, path: Path, circuit_id: str, slots: SlotLayout, outputs_public: bool = True):
    """(prove_s, [(job id, slot, outputs)]) if the file at `path` is a whole proof of queued jobs of this
    store under this circuit, named by their pack id; else None."""
    try:
        proof = prooffile.load(path)
        meta = proof.meta
        if (meta is None or meta.circuit_id != circuit_id or not proof.ezkl["instances"]
                or not proof.hex_proof or (outputs_public and proof.outputs is None)):
            return None
        entries = proof.slots
        if entries is None:  # written before proofs had slots: one job per file
            if slots.count != 1:
                return None
            entries = [ProofSlot(slot=0, input_sha256=meta.input_sha256, padding=False, outputs=proof.outputs,
                                 job_id=meta.job_id)]
        n = sum(not e.padding for e in entries)
        real, padding = entries[:n], entries[n:]
        ids = [e.job_id for e in real]
        if ([e.slot for e in entries] != list(range(slots.count)) or not real or len(set(ids)) != n
                or any(e.padding for e in real)
                or any(not e.padding or e.job_id != real[-1].job_id for e in padding)
                or pack_id(ids, slots.count) != path.stem or (meta.pack_id or path.stem) != path.stem):
            return None
        for e in real:
            job = store.job(e.job_id)
            if job.state != "queued" or job.input_sha256 != e.input_sha256:
                return None
        return meta.prove_s, [(e.job_id, e.slot, slots.outputs_of(proof.outputs, e.slot) if outputs_public else None)
                              for e in real]
    except (UsageError, OSError, ValueError, KeyError, TypeError, AttributeError):
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


def write_benchmark_inputs(circuit_dir: str | os.PathLike, n_inputs: int, path: str | os.PathLike) -> Path:
    """`n_inputs` distinct batch rows (JSONL) for benchmarks: the circuit's saved samples (their rows), each
    repeated with a tiny offset (1e-6 per copy) so every one is a distinct job."""
    prover = Prover(circuit_dir)
    samples_path = Path(circuit_dir) / "samples.jsonl"
    # Each saved sample is a whole circuit input: K inferences for a K-slot circuit.
    samples = [row for line in samples_path.read_text().splitlines() if line.strip()
               for row in prover.slots.unpack(prover.parse_input(json.loads(line), "sample"))]
    if not samples:
        raise UsageError(f"{samples_path} holds no samples to benchmark with")
    rows = []
    for i in range(n_inputs):
        base = samples[i % len(samples)]
        offset = 1e-6 * (i // len(samples))
        row = {"input_data": [[v + offset for v in t] for t in base]}
        if prover.blinding:  # hashed inputs: each row its own subject's salt
            row["salt"] = new_salt()
        rows.append(json.dumps(row))
    Path(path).write_text("\n".join(rows) + "\n")
    return Path(path)


def measure_batch(circuit_dir: str | os.PathLike, n_inputs: int = 6, workers: int = 1,
                  threads_per_worker: int | None = None, backend: str = "local") -> BatchSummary:
    """A fresh batch of `n_inputs` distinct inputs (`write_benchmark_inputs`), for `make bench`; a K-slot
    circuit proves K of them per proof. The summary's rates count the batch's dispatch-to-last-result time,
    worker start-up included. ProofError unless every input was proved."""
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-") as tmp:
        inputs = write_benchmark_inputs(circuit_dir, n_inputs, Path(tmp) / "inputs.jsonl")
        summary = run_batch(circuit_dir, inputs, Path(tmp) / "out", workers=workers, backend=backend,
                            threads_per_worker=threads_per_worker)
    if summary.proved != n_inputs:
        raise ProofError(f"benchmark batch proved {summary.proved} of {n_inputs}: "
                         + "; ".join(f["reason"] for f in summary.failures[:3]))
    return summary


def measure_throughput(circuit_dir: str | os.PathLike, n_inputs: int = 6, workers: int = 1,
                       threads_per_worker: int | None = None, backend: str = "local") -> float:
    """Proofs per minute of `measure_batch`."""
    return measure_batch(circuit_dir, n_inputs, workers, threads_per_worker, backend).proofs_per_minute
