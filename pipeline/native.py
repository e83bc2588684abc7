"""Calling ezkl: what its native code prints goes to a log, and every failure comes back as one exception.

ezkl's Rust code writes straight to file descriptors 1 and 2: calibration tables, tract's warnings
(`Unknown op: QuantizeLinearI8`, opset notices) and, when it panics, a message and a backtrace. A Rust panic
reaches Python as `pyo3_runtime.PanicException`, which derives from BaseException, so `except Exception`
lets it through as a traceback. `call` runs one ezkl function with fds 1 and 2 sent to a log file, and
turns a RuntimeError or a panic into `NativeFailure`, carrying the first line of the error, the panic's
own message, and the operators tract reported as unknown: enough for one clear line to the user.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .artifacts import native_output_to

EZKL_LOGGER = "ezkl"
_UNKNOWN_OP = re.compile(r"Unknown op:\s*([A-Za-z0-9_]+)")
_PANIC = re.compile(r"panicked at ([^\n]+?):\s*\n([^\n]+)")
# How much of a log a failure looks at (a calibration log holds large tables).
_LOG_TAIL_BYTES = 256 * 1024


@dataclass
class NativeFailure(Exception):
    """An ezkl call failed: `message` is its first line, `panic` the Rust panic's message (if it panicked),
    `unknown_ops` the tract op names reported as unknown during the call."""

    message: str
    panic: str | None = None
    unknown_ops: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        if self.panic:
            return f"ezkl panicked: {self.panic}"
        return self.message


def is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


def call(fn: Callable, *args, log_path: str | os.PathLike | None = None, **kwargs):
    """Run `fn(*args, **kwargs)` (an ezkl function) with its native output appended to `log_path`
    (a temporary file when None). Raises NativeFailure on a RuntimeError or a panic."""
    if log_path is None:
        with tempfile.TemporaryDirectory(prefix="zkinfer-ezkl-") as tmp:
            return call(fn, *args, log_path=Path(tmp) / "ezkl.log", **kwargs)
    log_path = Path(log_path)
    start = log_path.stat().st_size if log_path.exists() else 0
    records = _Records()
    try:
        with records.captured(), native_output_to(log_path):
            result = fn(*args, **kwargs)
        records.append_to(log_path)
        return result
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:
        if not (isinstance(e, RuntimeError) or is_panic(e)):
            raise
        text = records.text() + _read_from(log_path, start)
        records.append_to(log_path)
        panic = _PANIC.search(text)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise NativeFailure(
            message=first,
            panic=f"{panic.group(2).strip()} (at {panic.group(1)})" if panic else (first if is_panic(e) else None),
            unknown_ops=_unique(_UNKNOWN_OP.findall(text)),
        ) from None


class _Records(logging.Handler):
    """ezkl's Rust `log` messages (tract's `Unknown op: ...` among them) arrive as Python log records on the
    `ezkl` logger; during a call they are kept here (and in the call's log file), not shown to the user."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def append_to(self, path: Path) -> None:
        if self.lines:
            with open(path, "a") as f:
                f.write(self.text())

    @contextmanager
    def captured(self):
        logger = logging.getLogger(EZKL_LOGGER)
        saved = logger.propagate
        logger.addHandler(self)
        logger.propagate = False
        try:
            yield
        finally:
            logger.removeHandler(self)
            logger.propagate = saved


def _read_from(path: Path, start: int) -> str:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(start, size - _LOG_TAIL_BYTES))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
