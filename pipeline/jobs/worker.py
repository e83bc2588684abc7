"""What runs in a prover worker (a local process or a Ray actor): prove one pack, report the outcome.

A pack is the jobs (inferences) one proof covers: one job for a one-slot circuit, up to K for a K-slot
circuit (fewer only at the end of a batch: the prover pads by repeating the last row).

Workers never touch the job store or OUTDIR: they return the proof to the coordinator, which writes the
proof file and records the result. That keeps one writer, and lets Ray workers run on machines that do
not see OUTDIR at all.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from dataclasses import dataclass

from ..errors import OutOfRangeError, ZkinferError

PROVED, FAILED, TIMEOUT, LOST = "proved", "failed", "timeout", "lost"


@dataclass(frozen=True)
class Task:
    pack_id: str
    job_ids: tuple[str, ...]     # the real members, in slot order
    rows: tuple[list, ...]       # each member's input_data (one inference)
    wheres: tuple[str, ...]      # each member's "inputs.csv line 5"

    @classmethod
    def single(cls, job_id: str, input_data: list, where: str) -> Task:
        """One job as its own proof (a one-slot circuit)."""
        return cls(job_id, (job_id,), (input_data,), (where,))

    @property
    def where(self) -> str:
        return ", ".join(self.wheres)


@dataclass
class Outcome:
    pack_id: str
    kind: str                    # PROVED | FAILED (the input's or the prover's fault) | TIMEOUT | LOST (worker died)
    proof: dict | None = None
    reason: str | None = None
    worker: str | None = None    # host:pid that ran it
    # FAILED because some rows lie outside the calibrated range: job id -> why, for those rows only. The
    # pack's other jobs did nothing wrong and go back to the queue. None: every member failed with `reason`.
    bad_rows: dict[str, str] | None = None
    # FAILED: the class of the error (`pipeline.errors`: OutOfRangeError for rows outside the calibrated
    # range), recorded with each failed job so readers need not parse `reason`.
    error_class: str | None = None


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_task(prover, task: Task) -> Outcome:
    """Prove one pack; any failure becomes its reason and the worker lives on."""
    try:
        try:
            proof = prover.prove_rows(list(task.rows), where=task.where)
        except OutOfRangeError as e:
            bad = _bad_rows(prover, task, e)
            reason = e.message if bad else f"{e.message} (no row of this pack fails alone)"
            return Outcome(task.pack_id, FAILED, reason=reason, worker=worker_label(), bad_rows=bad,
                           error_class=type(e).__name__)
    except ZkinferError as e:
        return Outcome(task.pack_id, FAILED, reason=e.message, worker=worker_label(), error_class=type(e).__name__)
    except BaseException as e:
        # pyo3 turns a Rust panic into PanicException, a BaseException: it fails this pack, not the batch.
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return Outcome(task.pack_id, FAILED, reason=f"{task.where}: unexpected {type(e).__name__}: {e}",
                       worker=worker_label(), error_class=type(e).__name__)
    return Outcome(task.pack_id, PROVED, proof=proof, worker=worker_label())


def _bad_rows(prover, task: Task, error: OutOfRangeError) -> dict[str, str] | None:
    """Which rows of a pack whose witness left the calibrated range are at fault: each row is checked
    alone (witness and mock prover, no proof). A pack of one row needs no check. None when no row fails
    alone (rows that interact, which batch models do not): then the whole pack fails with `error`."""
    if len(task.job_ids) == 1:
        return {task.job_ids[0]: error.message}
    bad = {}
    for job_id, row, where in zip(task.job_ids, task.rows, task.wheres, strict=True):
        why = prover.check_row(row, where)
        if why:
            bad[job_id] = why
    return bad or None


def serve(conn, circuit_dir: str, threads: int | None, parent_pid: int) -> None:
    """Entry point of a local worker process (spawned): load the circuit once, then prove tasks from `conn`.

    Messages out: ("ready", label) once loaded, ("error", message) if loading failed, then one Outcome per
    Task received. A None task or a closed pipe ends the process.
    """
    _exit_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the coordinator decides what stops and when.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads:
        os.environ["RAYON_NUM_THREADS"] = str(threads)  # read by ezkl's rayon pool when it first starts
    from ..prove import Prover

    try:
        # The coordinator checked the artifacts against the manifest: hashing a multi-GB key per worker is waste.
        prover = Prover(circuit_dir, check_artifacts=False)
    except ZkinferError as e:
        conn.send(("error", e.message))
        return
    conn.send(("ready", worker_label()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(run_task(prover, task))


def _exit_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this worker when the coordinator dies (Linux), so a killed batch leaves no
    orphan provers behind that would race the next run. Elsewhere a closed pipe ends an idle worker."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(1)
