"""Files with content hashes, written atomically.

A killed process must never leave a half-written proof or key behind: every artifact is written to a
temporary file in the same directory, flushed and fsynced, then renamed over its final name (rename is
atomic within a filesystem). Readers see the old file or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, streamed (proving keys reach gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    """Deterministic JSON bytes (sorted keys, no whitespace): what content hashes are taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@contextmanager
def atomic_path(final: str | os.PathLike, crash_point: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success rename it over `final`, on error remove it.

    For writers that want a path rather than a file object (ezkl writes its own files).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are ordinary files
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        if crash_point:
            from . import faults

            faults.point(crash_point)
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, crash_point: str | None = None) -> Path:
    with atomic_path(path, crash_point) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, crash_point: str | None = None) -> Path:
    return write_bytes_atomic(path, text.encode(), crash_point)


def write_json_atomic(path: str | os.PathLike, obj, indent: int | None = 2, crash_point: str | None = None) -> Path:
    text = json.dumps(obj, indent=indent, allow_nan=False)
    return write_text_atomic(path, text + "\n", crash_point)


def write_with(path: str | os.PathLike, writer: Callable[[Path], object]):
    """Run `writer(tmp_path)` (which creates the file), then publish it atomically at `path`."""
    with atomic_path(path) as tmp:
        result = writer(tmp)
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise RuntimeError(f"writer produced no output for {path}")
    return result


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def read_json(path: str | os.PathLike, what: str = "JSON file"):
    """Load JSON, turning a missing file or a syntax error into a UsageError that names the file."""
    from .errors import UsageError

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {p}") from None
    except IsADirectoryError:
        raise UsageError(f"{what} is a directory, expected a file: {p}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{what} {p} is not UTF-8 text (byte {e.start}): not a JSON file") from None
    return loads_json(text, f"{what} {p}")


def loads_json(text: str, where: str):
    """json.loads with every way a text can fail to be a JSON value a UsageError naming `where`: syntax
    errors, integers longer than Python's digit limit (a ValueError), nesting deep enough to exhaust the
    recursion limit."""
    from .errors import UsageError

    try:
        return _loads_bounded(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{where} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise UsageError(f"{where} is nested too deeply to be read as JSON") from None
    except ValueError as e:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise UsageError(f"{where} is not usable JSON: {str(e).splitlines()[0][:120]}") from None


# How deep json's decoder may recurse below the caller. Its C scanner recurses once per nesting level on the C
# stack, bounded only by the interpreter's recursion limit: with a limit some library raised (hypothesis and
# torch's compiler do), a file of 100,000 '[' overflows the C stack and the process dies with SIGSEGV instead
# of a RecursionError. No input zkinfer reads nests more than a few dozen levels.
JSON_MAX_NESTING = 900


def _loads_bounded(text: str):
    limit = sys.getrecursionlimit()
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    sys.setrecursionlimit(min(limit, depth + JSON_MAX_NESTING))
    try:
        return json.loads(text)
    finally:
        sys.setrecursionlimit(limit)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def native_output_to(log_path: str | os.PathLike | None = None) -> Iterator[None]:
    """Send what native code prints to file descriptors 1 and 2 (ezkl's calibration tables) to a file.

    ezkl's Rust code writes straight to the process's stdout/stderr, where it would bury zkinfer's own
    output (and corrupt machine-readable output); Python-level redirection cannot catch it.
    """
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    target = open(log_path or os.devnull, "ab")
    try:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        target.close()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
