"""Batch progress: a rich progress bar on a terminal, plain periodic lines in logs (CI, pipes, files)."""

from __future__ import annotations

import os
import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    def start(self, total: int, done: int) -> None:
        """`total` jobs in the store, `done` of them already finished before this run."""

    def advance(self, job_id: str, kind: str, reason: str | None) -> None:
        """One job finished in this run: kind is proved | failed."""

    def close(self) -> None: ...


def auto_progress(stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    if stream.isatty() and not os.environ.get("CI"):
        return RichProgress(stream)
    return LineProgress(stream)


def _eta(remaining: int, rate_per_s: float | None) -> str:
    if not rate_per_s:
        return "ETA unknown"
    s = int(remaining / rate_per_s)
    return f"ETA {s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class LineProgress:
    """A line every `every_s` seconds (and one per failure), for logs that a bar would garble."""

    def __init__(self, stream: TextIO, every_s: float = 10.0):
        self.stream, self.every_s = stream, every_s

    def start(self, total: int, done: int) -> None:
        self.total, self.done_before, self.proved, self.failed, self.reported = total, done, 0, 0, 0
        self.t0 = self.last = time.monotonic()
        self._line(f"batch: {total} jobs, {done} already proved or failed, {total - done} to prove")

    def advance(self, job_id: str, kind: str, reason: str | None) -> None:
        if kind == "proved":
            self.proved += 1
        else:
            self.failed += 1
            self._line(f"failed {job_id}: {reason}")
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self._report(now)

    def _status(self, now: float) -> str:
        n = self.proved + self.failed
        rate = n / (now - self.t0) if now > self.t0 else None
        done = self.done_before + n
        return (f"progress: {done}/{self.total} ({self.proved} proved, {self.failed} failed in this run), "
                f"{(rate or 0) * 60:.1f} jobs/min, {_eta(self.total - done, rate)}")

    def _report(self, now: float) -> None:
        self.last, self.reported = now, self.proved + self.failed
        self._line(self._status(now))

    def close(self) -> None:
        if self.proved + self.failed != self.reported:
            self._report(time.monotonic())

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class RichProgress:
    """A live bar: done/total, failures, the run's rate and ETA (rich repaints it in place on a terminal)."""

    def __init__(self, stream: TextIO):
        from rich.console import Console

        self.console = Console(file=stream)

    def start(self, total: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
        from rich.text import Text

        class RateAndEta(ProgressColumn):
            # This run's completions over its wall time, like LineProgress (rich's own speed needs two samples).
            def render(self, task):
                n, t0 = task.fields["done_now"], task.fields["t0"]
                rate = n / (time.monotonic() - t0) if n else None
                return Text(f"{(rate or 0) * 60:.1f}/min  {_eta(int(task.remaining or 0), rate)}")

        self.bar = Progress(TextColumn("proving"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), RateAndEta(),
                            console=self.console)
        self.bar.start()
        self.task = self.bar.add_task("proving", total=total, completed=done, failed=0, done_now=0,
                                      t0=time.monotonic())
        self.failed = self.done_now = 0

    def advance(self, job_id: str, kind: str, reason: str | None) -> None:
        if kind != "proved":
            self.failed += 1
            self.console.print(f"failed {job_id}: {reason}", markup=False, highlight=False)
        self.done_now += 1
        self.bar.update(self.task, advance=1, failed=self.failed, done_now=self.done_now)

    def close(self) -> None:
        self.bar.stop()
