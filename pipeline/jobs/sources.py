"""Batch inputs -> jobs, with content-derived ids.

Two formats, chosen by the file's extension:

* JSONL (``.jsonl``, ``.ndjson``): one ezkl input object per line, ``{"input_data": [[...]], "id": "..."}``;
  ``id`` is optional.
* CSV (``.csv``): a header of feature names, then one row of numbers per inference, for circuits with one
  input tensor per inference; a column named ``id`` is the row's label rather than a feature.

A hashed-input circuit hashes each subject's features with the subject's secret salt (`pipeline.blinding`):
every row then carries it, ``"salt": "0x..."`` in JSONL, a ``salt`` column in CSV; a row without one, or with
a malformed one, fails alone naming its line. The salt is part of the row's content, hence of its job id.

A row is always ONE inference. For a circuit proving K inferences at once (`layout.SlotLayout`) that is
one slot's input, and the coordinator packs K rows into each proof; a line holding a whole K-slot input
is a bad row (the message says so).

A job's id is derived from the circuit and the input's content, never from its label or line:
sha256(manifest sha256 + ":" + sha256 of the canonical input), cut to 32 hex digits (128 bits, so no two
distinct inputs share an id in practice). The same input submitted twice, from any file, under any label,
is one job and is proven once; every label it was submitted under is recorded. The input hash is the one a
proof file carries (`zkinfer.input_sha256`), which ties a proof file to its job.

A row that is not a valid input (bad JSON, wrong length, NaN or inf, not a number, a line that is not UTF-8,
an over-long CSV cell) becomes a failed job with a reason naming the file and line; the rest of the file is
still read. Only a file that cannot be read at all (missing, a directory, binary from its first line), or a
CSV header that does not fit the circuit, is a usage error. CSV records are one line each (no quoted
newlines: feature values never need them).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import loads_json, sha256_bytes
from ..errors import InputError, UsageError
from ..prove import input_digest

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
LABEL_COLUMN = "id"
SALT_COLUMN = "salt"
ID_HEX_DIGITS = 32


@dataclass(frozen=True)
class JobSpec:
    """One row of an inputs file, ready for the store."""

    id: str
    where: str                          # "inputs.csv line 5": named in every message about this job
    label: str | None = None
    input_data: list | None = None      # ezkl input_data, one flat list per model input; None for a bad row
    input_sha256: str | None = None
    error: str | None = None            # why the row is not a valid input


def job_id(circuit_id: str, input_sha256: str) -> str:
    return sha256_bytes(f"{circuit_id}:{input_sha256}".encode())[:ID_HEX_DIGITS]


def pack_id(job_ids: list[str] | tuple[str, ...], slots: int) -> str:
    """The id (and proof file name) of a proof of these jobs, in slot order (padding excluded: it is
    implied). For a one-slot circuit it is the job's own id; for K slots, sha256 over the member ids, so
    the same members in the same order always give the same pack, whichever run forms it."""
    if slots == 1:
        (only,) = job_ids
        return only
    return sha256_bytes(f"pack:{slots}:{','.join(job_ids)}".encode())[:ID_HEX_DIGITS]


def _bad_row_id(circuit_id: str, raw: str) -> str:
    # Bad rows have no canonical input: their id comes from the row's text, so resubmitting the same
    # file does not add them again either.
    return sha256_bytes(f"{circuit_id}:row:{raw}".encode())[:ID_HEX_DIGITS]


def read_inputs(path: str | os.PathLike, circuit_id: str, parse_input, key: bytes | None = None) -> Iterator[JobSpec]:
    """Jobs from a JSONL or CSV file. `parse_input(obj, where)` is Prover.parse_row: it validates one ezkl
    input object (one inference) against the circuit and returns its input_data (InputError otherwise).
    With `key`, inputs are named by a keyed digest (`prove.input_digest`)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"inputs file is a directory, expected a JSONL or CSV file: {p}")
    if not p.exists():
        raise UsageError(f"inputs file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(p, circuit_id, parse_input, key)
    if suffix in CSV_SUFFIXES:
        return _read_csv(p, circuit_id, parse_input, key)
    raise UsageError(f"inputs file {p}: unknown format {suffix or '(no extension)'!r}; "
                     f"use JSONL ({', '.join(JSONL_SUFFIXES)}) or CSV ({', '.join(CSV_SUFFIXES)})")


def _good(circuit_id: str, where: str, label, input_data, key: bytes | None) -> JobSpec:
    digest = input_digest(input_data, key)
    return JobSpec(id=job_id(circuit_id, digest), where=where, label=label, input_data=input_data,
                   input_sha256=digest)


def _bad(circuit_id: str, where: str, label, raw: str, error: str) -> JobSpec:
    return JobSpec(id=_bad_row_id(circuit_id, raw), where=where, label=label, error=error)


def _lines(p: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each line; text None for a line that is not UTF-8 (a bad row, not a bad file)."""
    try:
        with open(p, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield lineno, None
    except OSError as e:
        raise UsageError(f"cannot read inputs file {p}: {e.strerror}") from None


def _read_jsonl(p: Path, circuit_id: str, parse_input, key: bytes | None) -> Iterator[JobSpec]:
    seen_text = False
    for lineno, line in _lines(p):
        where = f"{p.name} line {lineno}"
        if line is None and not seen_text:
            # The first line already is not text: a binary or mis-encoded file, not a file with a bad row.
            raise UsageError(f"inputs file {p} is not UTF-8 text (line {lineno})")
        seen_text = seen_text or bool(line and line.strip())
        if line is None:
            yield _bad(circuit_id, where, None, f"{where}: not UTF-8", f"{where}: not UTF-8 text")
            continue
        raw = line.strip()
        if not raw:
            continue
        try:
            obj = loads_json(raw, where)
        except UsageError as e:
            yield _bad(circuit_id, where, None, raw, e.message)
            continue
        label = obj.get(LABEL_COLUMN) if isinstance(obj, dict) else None
        if label is not None and (isinstance(label, bool) or not isinstance(label, (str, int))):
            yield _bad(circuit_id, where, None, raw, f"{where}: \"id\" must be a string or an integer")
            continue
        label = None if label is None else str(label)
        try:
            input_data = parse_input(obj, where)
        except InputError as e:
            yield _bad(circuit_id, where, label, raw, e.message)
            continue
        yield _good(circuit_id, where, label, input_data, key)


# The longest CSV cell read (Python's csv module refuses cells over 128 KiB with an exception; a feature
# value never needs more than a few dozen characters). Longer cells make their row a bad row.
MAX_CELL_CHARS = 1 << 20


def _csv_rows(p: Path) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(line number, cells, error) per CSV record; a line that is not UTF-8 or not CSV is an error row."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, MAX_CELL_CHARS))
    try:
        for lineno, line in _lines(p):
            if line is None:
                yield lineno, None, "not UTF-8 text"
                continue
            try:
                cells = next(csv.reader([line]), [])
            except csv.Error as e:
                yield lineno, None, f"not a CSV row ({e})"
                continue
            yield lineno, cells, None
    finally:
        csv.field_size_limit(limit)


def _read_csv(p: Path, circuit_id: str, parse_input, key: bytes | None) -> Iterator[JobSpec]:
    rows = _csv_rows(p)
    first = next(rows, None)
    if first is None:
        raise UsageError(f"inputs file {p} is empty: a CSV needs a header of feature names")
    lineno, header, error = first
    if error:
        raise UsageError(f"inputs file {p} line {lineno} (the header): {error}")
    header = [h.strip() for h in header]
    label_col = header.index(LABEL_COLUMN) if LABEL_COLUMN in header else None
    salt_col = header.index(SALT_COLUMN) if SALT_COLUMN in header else None
    features = [i for i, h in enumerate(header) if i not in (label_col, salt_col)]
    # Check the header against the circuit once, with a zero row: a file whose columns do not fit the
    # circuit is a usage error, not thousands of failed jobs.
    probe = {"input_data": [[0.0] * len(features)]}
    try:
        parse_input(probe | ({SALT_COLUMN: "0x" + "0" * 32} if salt_col is not None else {}), f"{p.name} header")
    except InputError as e:
        if salt_col is None and "no salt" in e.message:
            raise UsageError(f"{p}: no {SALT_COLUMN!r} column: this circuit's inputs are hashed with each "
                             "subject's secret salt, so every row needs one (`zkinfer salt` makes fresh ones)"
                             ) from None
        raise UsageError(f"{p}: {len(features)} feature columns do not fit the circuit ({e.message})") from None

    for lineno, cells, error in rows:
        where = f"{p.name} line {lineno}"
        if error:
            yield _bad(circuit_id, where, None, f"{where}: {error}", f"{where}: {error}")
            continue
        if not any(c.strip() for c in cells):
            continue
        raw = ",".join(cells)
        label = cells[label_col].strip() if label_col is not None and label_col < len(cells) else None
        values = [c for i, c in enumerate(cells) if i not in (label_col, salt_col)]
        try:
            if len(values) != len(features):
                raise InputError(f"{where}: {len(values)} values, the header has {len(features)} feature columns")
            row = [_number(v, header[i], where) for v, i in zip(values, features, strict=True)]
            obj = {"input_data": [row]}
            if salt_col is not None:
                obj[SALT_COLUMN] = cells[salt_col].strip() if salt_col < len(cells) else ""
            input_data = parse_input(obj, where)
        except InputError as e:
            yield _bad(circuit_id, where, label or None, raw, e.message)
            continue
        yield _good(circuit_id, where, label or None, input_data, key)


def _number(cell: str, column: str, where: str) -> float:
    if len(cell) > 400:
        raise InputError(f"{where} column {column!r}: a cell of {len(cell)} characters is not a number")
    try:
        v = float(cell)
    except ValueError:
        raise InputError(f"{where} column {column!r}: {cell.strip()[:40]!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{where} column {column!r}: {cell.strip()} is not a finite number")
    return v

