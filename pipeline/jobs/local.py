"""The local backend: N prover processes on this machine, one task (the pack of jobs one proof covers: one
job for a one-slot circuit) at a time each, with a per-task timeout.

Not a multiprocessing.Pool: a pool cannot kill the one worker whose proof hangs (ezkl's `prove` deadlocks on
some inputs) without taking the pool down. Here each worker has its own pipe, the coordinator knows which
task each one holds, and a worker past its deadline is killed and replaced; only its task fails.

Workers are started with `spawn`: ezkl is a Rust extension with its own thread pools, which do not survive
a fork.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from pathlib import Path

from ..errors import ProofError
from .worker import LOST, TIMEOUT, Outcome, Task, serve


class _Worker:
    def __init__(self, ctx, circuit_dir: Path, threads: int | None):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, str(circuit_dir), threads, os.getpid()),
                                   name="zkinfer-prover", daemon=True)
        self.process.start()
        child.close()
        self.label: str | None = None   # host:pid, once it reported ready
        self.task: Task | None = None
        self.deadline = 0.0

    def stop(self) -> None:
        """An idle worker is asked to exit; a busy (or stuck) one is killed."""
        if self.task is None and self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(timeout=5)
            except OSError:
                pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=10)
        self.conn.close()


class LocalBackend:
    name = "local"

    def __init__(self, circuit_dir: Path, workers: int, timeout_s: float, threads_per_worker: int | None = None):
        self._ctx = multiprocessing.get_context("spawn")
        self._circuit_dir = circuit_dir
        self._threads = threads_per_worker
        self._timeout_s = timeout_s
        self._workers = [self._start() for _ in range(workers)]

    def _start(self) -> _Worker:
        return _Worker(self._ctx, self._circuit_dir, self._threads)

    def free_slots(self) -> int:
        return sum(1 for w in self._workers if w.label and w.task is None)

    def busy(self) -> int:
        return sum(1 for w in self._workers if w.task is not None)

    def submit(self, task: Task) -> None:
        w = next(w for w in self._workers if w.label and w.task is None)
        w.conn.send(task)
        w.task, w.deadline = task, time.monotonic() + self._timeout_s

    def poll(self, timeout: float) -> list[Outcome]:
        """Wait up to `timeout` seconds for something to happen; return the tasks that finished."""
        deadlines = [w.deadline - time.monotonic() for w in self._workers if w.task]
        wait([w.conn for w in self._workers] + [w.process.sentinel for w in self._workers],
             timeout=max(0.0, min([timeout, *deadlines])))
        outcomes: list[Outcome] = []
        for i, w in enumerate(self._workers):
            if w.conn.poll():  # read what a worker sent before looking at whether it has died since
                try:
                    msg = w.conn.recv()
                except (EOFError, OSError):
                    msg = None
                if isinstance(msg, Outcome):
                    outcomes.append(msg)
                    w.task = None
                    continue
                if isinstance(msg, tuple) and msg[0] == "ready":
                    w.label = msg[1]
                    continue
                if isinstance(msg, tuple) and msg[0] == "error":
                    raise ProofError(f"a prover worker could not load the circuit: {msg[1]}")
            if not w.process.is_alive():
                if w.label is None:
                    raise ProofError(f"a prover worker exited while starting (exit code {w.process.exitcode})")
                if w.task:
                    outcomes.append(Outcome(w.task.pack_id, LOST, worker=w.label,
                                            reason=f"{w.task.where}: prover process {w.label} died "
                                                   f"({_exit_reason(w.process.exitcode)})"))
                w.stop()
                self._workers[i] = self._start()
            elif w.task and time.monotonic() > w.deadline:
                outcomes.append(Outcome(w.task.pack_id, TIMEOUT, worker=w.label,
                                        reason=f"{w.task.where}: no proof after {self._timeout_s:g} s; "
                                               "the prover process was killed"))
                w.stop()
                self._workers[i] = self._start()
        return outcomes

    def close(self) -> None:
        """Stop every worker now: a job in flight is abandoned (the coordinator requeues it)."""
        for w in self._workers:
            w.stop()
        self._workers = []


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
