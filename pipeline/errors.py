"""Errors that reach a user.

Every user mistake (a missing file, a malformed input, an unsupported operator) raises a subclass of
`ZkinferError` with a one-line message that names the problem. The CLI prints that line and exits with
`exit_code`; it never shows a traceback for these. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ZkinferError(Exception):
    """Base class: a clear, one-line problem report."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(ZkinferError):
    """Bad arguments, missing files, malformed data: exit code 2."""

    exit_code = 2


class InputError(UsageError):
    """Input data does not fit the model (shape, count, type, range)."""


class UnsupportedModelError(UsageError):
    """The ONNX model uses something the circuit compiler cannot handle."""


class ArtifactMismatchError(UsageError):
    """A circuit artifact no longer matches the hash recorded in its manifest."""


class FidelityError(ZkinferError):
    """The compiled circuit does not reproduce the model within tolerance: exit code 1."""

    exit_code = 1

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report or {}


class ProofError(ZkinferError):
    """Proving failed for this input (for example, a value outside the calibrated range)."""

    exit_code = 1


class OutOfRangeError(ProofError):
    """The input's witness falls outside the calibrated range (or fails the circuit's constraints): the
    input's fault, not the prover's."""


class ResourceLimitError(ZkinferError):
    """The next step would need more memory (or disk) than this machine has: stopped before it, exit code 1."""

    exit_code = 1


class ChainError(ZkinferError):
    """A chain interaction failed: RPC unreachable, transaction reverted, refused deployment."""

    exit_code = 1


def require_file(path, what: str = "file"):
    """Return `path` as a Path if it is an existing file, else raise a UsageError naming it."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} not found: {p}")
    if not p.is_file():
        raise UsageError(f"{what} is not a file: {p}")
    return p
