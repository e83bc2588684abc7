"""Helpers shared by the checks: the real CLI run in-process, with its exit code, output and any traceback."""

from __future__ import annotations

import contextlib
import io
import time
import traceback
from dataclasses import dataclass


@dataclass
class CliRun:
    code: int
    out: str
    err: str
    traceback: str | None  # an exception escaped `zkinfer`'s main: a bug by the CLI's contract
    seconds: float

    @property
    def one_line_error(self) -> bool:
        """stderr holds at most one `error:`/`Error:` line and no Python traceback."""
        lines = [ln for ln in self.err.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.lower().startswith(("error", "usage"))]
        return "Traceback (most recent call last)" not in self.err and len(errors) <= 1

    def describe(self) -> str:
        if self.traceback:
            return "traceback: " + self.traceback.strip().splitlines()[-1]
        return f"exit {self.code}: {(self.err or self.out).strip()[:200]}"


def run_cli(argv: list[str]) -> CliRun:
    """`zkinfer ARGV` through `pipeline.cli.main`, the console script's entry point, in this process."""
    from .. import cli

    out, err = io.StringIO(), io.StringIO()
    tb = None
    code = 0
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 (a Rust panic is a BaseException: exactly what must not escape)
            tb = traceback.format_exc()
            code = -1
    return CliRun(code, out.getvalue(), err.getvalue(), tb, time.perf_counter() - t0)
