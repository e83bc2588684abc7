"""The prover node's own store, DIR/node.sqlite: the block cursor and every posting the node has seen.

The node's proofs live in a standard batch OUTDIR, DIR/jobs (`pipeline.jobs`: content-addressed jobs, one
proof per pack, crash recovery); this store keeps what is about the chain: which postings exist, what
became of each, and how far the gate's events were read. Every state change is one SQLite transaction, so
a node killed at any moment finds each posting in exactly one state:

    waiting     seen on chain; no feature row hashing to its commitment found yet
    queued      its features found and matched; handed to the job store as row `posting-<id>`
    submitting  a transaction acting on it is being sent (a restart checks the chain for what happened)
    acted       this node's transaction acted on it (tx hash, gas, effects, latency recorded)
    elsewhere   acted on by someone else first (another prover): done, not a failure
    superseded  a newer posting for the subject replaced it, or it was withdrawn, before it was acted on
    stale       older than the gate's maxFeatureAge before it could be acted on
    mismatch    no feature row hashes to the posted commitment (reported, never proven)
    failed      proving failed (e.g. features outside the calibrated range) or the gate refused it (named)
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

DB_FILE = "node.sqlite"
WAITING, QUEUED, SUBMITTING = "waiting", "queued", "submitting"
ACTED, ELSEWHERE, SUPERSEDED, STALE, MISMATCH, FAILED = (
    "acted", "elsewhere", "superseded", "stale", "mismatch", "failed")
STATES = (WAITING, QUEUED, SUBMITTING, ACTED, ELSEWHERE, SUPERSEDED, STALE, MISMATCH, FAILED)
OPEN_STATES = (WAITING, QUEUED, SUBMITTING)
PROBLEM_STATES = (MISMATCH, FAILED, STALE)
INCIDENTS_KEPT = 200

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS postings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_hash      TEXT NOT NULL,      -- the FeaturesPosted event: transaction and log index name it
    log_index    INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    subject      TEXT NOT NULL,      -- 0x + 64 hex
    commitment   TEXT NOT NULL,      -- 0x + 64 hex, as posted
    posted_at    INTEGER NOT NULL,   -- the posting's block timestamp (with the subject, names the posting)
    publisher    TEXT NOT NULL,
    seen_at      REAL NOT NULL,      -- when this node first saw it (wall clock)
    state        TEXT NOT NULL CHECK (state IN ({", ".join(f"'{s}'" for s in STATES)})),
    reason       TEXT,
    feature_where TEXT,              -- the feature row that matched: "features.jsonl line 4"
    row_json     TEXT,               -- that row as the prover takes it (input_data, and salt for hashed inputs)
    proof_path   TEXT,               -- the proof acted with (relative to DIR)
    submit_tx    TEXT,
    gas_used     INTEGER,
    effects_json TEXT,
    acted_block  INTEGER,
    acted_at     INTEGER,            -- block timestamp of the action
    attempts     INTEGER NOT NULL DEFAULT 0,   -- submissions tried
    updated_at   REAL NOT NULL,
    UNIQUE (tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS postings_state ON postings (state, id);
CREATE TABLE IF NOT EXISTS incidents (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    at   REAL NOT NULL,
    kind TEXT NOT NULL,              -- rpc | reorg | restart | recovered | error
    message TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PostingRow:
    id: int
    tx_hash: str
    log_index: int
    block_number: int
    subject: str
    commitment: str
    posted_at: int
    seen_at: float
    state: str
    reason: str | None
    row: dict | None
    submit_tx: str | None
    attempts: int

    @property
    def label(self) -> str:
        """The row id it has in the node's job store."""
        return posting_label(self.id)


def posting_label(posting_id: int) -> str:
    return f"posting-{posting_id}"


class NodeStore:
    """DIR/node.sqlite. Only the node holding DIR's lock writes."""

    def __init__(self, serve_dir: str | Path, create: bool = False):
        path = Path(serve_dir) / DB_FILE
        if not create and not path.exists():
            raise FileNotFoundError(path)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- meta: binding and cursor

    def meta(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.db.execute("SELECT key, value FROM meta")}

    def set_meta(self, **values) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for k, v in values.items():
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, str(v)))

    def cursor(self) -> tuple[int | None, str | None]:
        """The last block whose events were read, and its hash (to notice a reorg)."""
        m = self.meta()
        return (int(m["cursor_block"]) if "cursor_block" in m else None), m.get("cursor_hash")

    def add_postings(self, postings: list[dict], cursor_block: int, cursor_hash: str) -> int:
        """Record postings read from a block range and move the cursor past it, in one transaction: a kill
        in between leaves neither, and the range is read again. A posting already known is kept as is."""
        now, new = time.time(), 0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for p in postings:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO postings (tx_hash, log_index, block_number, subject, commitment, "
                    "posted_at, publisher, seen_at, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (p["tx_hash"], p["log_index"], p["block_number"], p["subject"], p["commitment"],
                     p["posted_at"], p["publisher"], now, WAITING, now))
                new += cur.rowcount
            for k, v in (("cursor_block", cursor_block), ("cursor_hash", cursor_hash)):
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, str(v)))
        return new

    # ---- postings

    def postings(self, *states: str) -> list[PostingRow]:
        marks = ", ".join("?" for _ in states)
        return [_posting(r) for r in self.db.execute(
            f"SELECT * FROM postings WHERE state IN ({marks}) ORDER BY id", states)]

    def posting(self, posting_id: int) -> PostingRow:
        return _posting(self.db.execute("SELECT * FROM postings WHERE id = ?", (posting_id,)).fetchone())

    def update(self, posting_id: int, state: str, reason: str | None = None, **fields) -> None:
        """Move a posting to `state`, setting any of its other columns by name."""
        cols = {"state": state, "reason": reason, "updated_at": time.time(), **fields}
        if "row" in cols:
            cols["row_json"] = json.dumps(cols.pop("row"), separators=(",", ":"))
        if "effects" in cols:
            cols["effects_json"] = json.dumps(cols.pop("effects"), separators=(",", ":"))
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self.db:
            self.db.execute(f"UPDATE postings SET {sets} WHERE id = ?", (*cols.values(), posting_id))

    def count_attempt(self, posting_ids: list[int]) -> None:
        with self.db:
            self.db.executemany("UPDATE postings SET attempts = attempts + 1, state = ?, updated_at = ? "
                                "WHERE id = ?", [(SUBMITTING, time.time(), i) for i in posting_ids])

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        counts.update({r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM postings GROUP BY state")})
        return counts

    def latencies(self) -> list[float]:
        """Seconds from posting to action (block timestamps) of the postings this node acted on."""
        return [r[0] for r in self.db.execute(
            "SELECT acted_at - posted_at FROM postings WHERE state = ? AND acted_at IS NOT NULL ORDER BY id",
            (ACTED,))]

    def acted_since(self, wall_time: float) -> int:
        return self.db.execute("SELECT COUNT(*) FROM postings WHERE state = ? AND updated_at >= ?",
                               (ACTED, wall_time)).fetchone()[0]

    def problems(self, limit: int = 20) -> list[dict]:
        marks = ", ".join("?" for _ in PROBLEM_STATES)
        return [dict(r) for r in self.db.execute(
            f"SELECT id, subject, posted_at, state, reason FROM postings WHERE state IN ({marks}) "
            f"ORDER BY id DESC LIMIT ?", (*PROBLEM_STATES, limit))]

    def all_postings(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM postings ORDER BY id")]

    # ---- incidents: what went wrong around the postings (RPC outages, reorgs, restarts)

    def incident(self, kind: str, message: str) -> None:
        with self.db:
            self.db.execute("INSERT INTO incidents (at, kind, message) VALUES (?, ?, ?)", (time.time(), kind, message))
            self.db.execute("DELETE FROM incidents WHERE id <= (SELECT MAX(id) FROM incidents) - ?", (INCIDENTS_KEPT,))

    def incidents(self, limit: int = 20) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT at, kind, message FROM incidents ORDER BY id DESC LIMIT ?", (limit,))]

    def incident_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT kind, COUNT(*) FROM incidents GROUP BY kind")}


def _posting(r: sqlite3.Row) -> PostingRow:
    return PostingRow(id=r["id"], tx_hash=r["tx_hash"], log_index=r["log_index"], block_number=r["block_number"],
                      subject=r["subject"], commitment=r["commitment"], posted_at=r["posted_at"], seen_at=r["seen_at"],
                      state=r["state"], reason=r["reason"],
                      row=json.loads(r["row_json"]) if r["row_json"] else None, submit_tx=r["submit_tx"],
                      attempts=r["attempts"])
