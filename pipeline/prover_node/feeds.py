"""Feature sources: where a prover node finds the raw features behind a posted commitment.

The feature publisher (an oracle) posts only a commitment per subject on chain (`chain.feature_commitment`);
the features themselves it writes somewhere the prover can read. A source answers one question: which rows
might be this subject's? The node then keeps the row whose commitment is the posted one, so a source may
hold every row the publisher ever wrote (old rounds, corrections): only the row that hashes to the posting
is ever proven.

Formats (`open_source` picks by the spec):

* a JSONL file (``.jsonl``/``.ndjson``): ``{"subject": "0x...", "features": [..], "salt": "0x.."}`` per line;
  ``input_data`` (ezkl's list of flat lists) may stand for ``features``; ``salt`` only for hashed inputs;
* a CSV file: a ``subject`` column, an optional ``salt`` column, the rest the features in column order;
* a folder of such files (read in name order, so later files win ties);
* a SQLite table: ``sqlite:PATH.db?table=NAME`` (default table ``features``) with columns ``subject``,
  ``features`` (a JSON array) and optionally ``salt``.

A subject is a 32-byte word: a 20-byte address (a lending borrower) is left-padded, as the gate does. A row
that cannot be read (bad JSON, a non-number feature, no subject) is skipped and counted in `problems`, with
its file and line: one bad line must not stop the node serving every other subject.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import UsageError

FILE_SUFFIXES = (".jsonl", ".ndjson", ".csv")
SQLITE_PREFIX = "sqlite:"
DEFAULT_TABLE = "features"
SUBJECT_FIELD, FEATURES_FIELD, SALT_FIELD = "subject", "features", "salt"
MAX_PROBLEMS_KEPT = 20


@dataclass(frozen=True)
class FeatureRow:
    subject: str              # 0x + 64 hex digits, lower case
    features: list[float]     # one subject's features, flattened in the circuit's input order
    salt: str | None
    where: str                # "features.jsonl line 4": named in every report about this row


class FeatureSource(Protocol):
    def candidates(self, subject: str) -> list[FeatureRow]:
        """The rows that may hold `subject`'s posted features, newest first."""

    def describe(self) -> str: ...


def subject_word(value) -> str:
    """A subject as the gate names it: a 32-byte word, hex. Addresses are left-padded."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 256:
        return f"0x{value:064x}"
    if isinstance(value, (bytes, bytearray)) and len(value) in (20, 32):
        return "0x" + bytes(value).rjust(32, b"\0").hex()
    if isinstance(value, str):
        text = value.strip().lower()
        digits = text[2:] if text.startswith("0x") else text
        if len(digits) in (40, 64) and all(c in "0123456789abcdef" for c in digits):
            return "0x" + digits.rjust(64, "0")
    raise ValueError(f"subject {value!r} is not an address or a 32-byte hex word")


def open_source(spec: str | os.PathLike) -> FeatureSource:
    """The source a `--features` value names (see the module doc); UsageError if there is none."""
    text = str(spec)
    if text.startswith(SQLITE_PREFIX):
        path, _, query = text[len(SQLITE_PREFIX):].partition("?")
        table = DEFAULT_TABLE
        for part in filter(None, query.split("&")):
            key, _, value = part.partition("=")
            if key != "table" or not value:
                raise UsageError(f"--features {text}: only ?table=NAME may follow the database path")
            table = value
        return SqliteSource(Path(path), table)
    p = Path(text)
    if p.is_dir():
        return FileSource(p)
    if p.suffix.lower() not in FILE_SUFFIXES:
        raise UsageError(f"--features {p}: give a .jsonl or .csv file, a folder of them, or sqlite:PATH?table=T")
    if not p.exists():
        # The publisher may not have written it yet: a missing file is an empty source, not an error.
        p.parent.mkdir(parents=True, exist_ok=True)
    return FileSource(p)


class FileSource:
    """JSONL/CSV file(s), re-read only when a file changed (size or modification time)."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple | None = None
        self._rows: dict[str, list[FeatureRow]] = {}
        self.problems: list[str] = []

    def describe(self) -> str:
        return str(self.path)

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.iterdir() if p.suffix.lower() in FILE_SUFFIXES and p.is_file())
        return [self.path] if self.path.is_file() else []

    def _refresh(self) -> None:
        files = self._files()
        stamp = tuple((str(p), s.st_size, s.st_mtime_ns) for p in files for s in [p.stat()])
        if stamp == self._stamp:
            return
        rows: dict[str, list[FeatureRow]] = {}
        problems: list[str] = []
        for p in files:
            read = _read_csv if p.suffix.lower() == ".csv" else _read_jsonl
            for row in read(p, problems):
                rows.setdefault(row.subject, []).append(row)
        self._rows, self._stamp, self.problems = rows, stamp, problems[:MAX_PROBLEMS_KEPT]

    def candidates(self, subject: str) -> list[FeatureRow]:
        self._refresh()
        return list(reversed(self._rows.get(subject, [])))


class SqliteSource:
    """A table the publisher writes: subject, features (JSON array), optional salt. Read-only here."""

    def __init__(self, path: Path, table: str):
        if not path.is_file():
            raise UsageError(f"--features: no SQLite database at {path}")
        if not table.replace("_", "").isalnum():
            raise UsageError(f"--features: table name {table!r} must be letters, digits and underscores")
        self.path, self.table = path, table
        self.problems: list[str] = []
        try:
            with self._connect() as db:
                cols = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        except sqlite3.Error as e:
            raise UsageError(f"--features: cannot read {path}: {e}") from None
        if not {SUBJECT_FIELD, FEATURES_FIELD} <= cols:
            raise UsageError(f"--features: table {table} in {path} needs columns {SUBJECT_FIELD} and "
                             f"{FEATURES_FIELD} (has: {', '.join(sorted(cols)) or 'no such table'})")
        self._has_salt = SALT_FIELD in cols

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)

    def describe(self) -> str:
        return f"{SQLITE_PREFIX}{self.path}?table={self.table}"

    def candidates(self, subject: str) -> list[FeatureRow]:
        salt = SALT_FIELD if self._has_salt else "NULL"
        address = "0x" + subject[-40:] if subject[2:26] == "0" * 24 else None
        with self._connect() as db:
            found = db.execute(f"SELECT rowid, {SUBJECT_FIELD}, {FEATURES_FIELD}, {salt} FROM {self.table} "
                               f"WHERE lower({SUBJECT_FIELD}) IN (?, ?) ORDER BY rowid DESC",
                               (subject, address or subject)).fetchall()
        rows = []
        for rowid, subj, features, row_salt in found:
            where = f"{self.table} row {rowid}"
            row = _row({SUBJECT_FIELD: subj, FEATURES_FIELD: _json_or_text(features), SALT_FIELD: row_salt},
                       where, self.problems)
            if row is not None:
                rows.append(row)
        return rows


def _json_or_text(text):
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def _read_jsonl(p: Path, problems: list[str]) -> Iterator[FeatureRow]:
    try:
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        problems.append(f"{p}: {e.strerror}")
        return
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p.name} line {n}"
        try:
            obj = json.loads(line)
        except ValueError:
            problems.append(f"{where}: not valid JSON")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        if FEATURES_FIELD not in obj and isinstance(obj.get("input_data"), list):
            obj = {**obj, FEATURES_FIELD: [v for t in obj["input_data"] for v in (t if isinstance(t, list) else [t])]}
        row = _row(obj, where, problems)
        if row is not None:
            yield row


def _read_csv(p: Path, problems: list[str]) -> Iterator[FeatureRow]:
    try:
        with open(p, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or SUBJECT_FIELD not in header:
                problems.append(f"{p.name}: the header has no {SUBJECT_FIELD} column")
                return
            for n, cells in enumerate(reader, 2):
                if not cells:
                    continue
                where = f"{p.name} line {n}"
                if len(cells) != len(header):
                    problems.append(f"{where}: {len(cells)} cells for {len(header)} columns")
                    continue
                rec = dict(zip(header, cells, strict=True))
                obj = {SUBJECT_FIELD: rec.pop(SUBJECT_FIELD), SALT_FIELD: rec.pop(SALT_FIELD, None) or None,
                       FEATURES_FIELD: list(rec.values())}
                row = _row(obj, where, problems)
                if row is not None:
                    yield row
    except OSError as e:
        problems.append(f"{p}: {e.strerror}")


def _row(obj: dict, where: str, problems: list[str]) -> FeatureRow | None:
    try:
        subject = subject_word(obj.get(SUBJECT_FIELD))
    except ValueError as e:
        problems.append(f"{where}: {e}")
        return None
    raw = obj.get(FEATURES_FIELD)
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: \"{FEATURES_FIELD}\" must be a non-empty list of numbers")
        return None
    try:
        features = [float(v) for v in raw if not isinstance(v, bool)]
    except (TypeError, ValueError):
        problems.append(f"{where}: a feature is not a number")
        return None
    if len(features) != len(raw) or not all(math.isfinite(v) for v in features):
        problems.append(f"{where}: every feature must be a finite number")
        return None
    salt = obj.get(SALT_FIELD)
    if salt is not None and not isinstance(salt, str):
        problems.append(f"{where}: \"{SALT_FIELD}\" must be a hex string")
        return None
    return FeatureRow(subject=subject, features=features, salt=salt, where=where)
