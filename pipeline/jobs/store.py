"""The job store: one SQLite file per output directory, the single source of truth for a batch.

    OUTDIR/jobs.sqlite        jobs, their labels, and the runs that worked on them (WAL mode)
    OUTDIR/jobs.lock          held (flock) by the one coordinator working on OUTDIR
    OUTDIR/proofs/<id>.json   one proof file per proof, written atomically: per job for one-slot circuits,
                              per pack of K jobs (one inference each) for K-slot circuits

A job is one inference (one input row). A job moves queued -> running -> proved | failed; a K-slot
circuit's jobs move in packs of K (`pack_id`, each job's `slot`), all K recorded in one transaction.
Rows that cannot become an input at all (bad JSON, a non-number) are stored as failed straight away, with
the reason, so `jobs status` shows them.

Only the coordinating process writes: workers (processes or Ray actors) prove and hand results back.
SQLite commits are atomic and durable across a SIGKILL, so the file always describes a consistent state;
what a crash can leave behind is limited to jobs marked `running` (requeued by the next coordinator, which
holds the lock and so knows their owner is dead) and a proof file whose jobs were not yet marked proved
(adopted by the next coordinator after checking it belongs to those jobs).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import faults
from ..errors import UsageError

DB_FILE = "jobs.sqlite"
LOCK_FILE = "jobs.lock"
PROOFS_DIR = "proofs"
# 2: pack_id and slot (stores of version 1 gain them when opened); 3: error_class (older stores gain it)
SCHEMA_VERSION = "3"
STATES = ("queued", "running", "proved", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- submission order: jobs are proven in this order
    id           TEXT NOT NULL UNIQUE,
    source       TEXT NOT NULL,      -- where the job was first read: "inputs.csv line 5"
    input_sha256 TEXT,               -- NULL for rows that are not a valid input
    input_json   TEXT,               -- canonical ezkl input_data; NULL for rows that are not a valid input
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'proved', 'failed')),
    reason       TEXT,               -- why it failed (or why it was requeued)
    error_class  TEXT,               -- a failure's error class: OutOfRangeError for rows outside the calibrated range
    attempts     INTEGER NOT NULL DEFAULT 0,   -- times dispatched to a prover
    proof_path   TEXT,               -- relative to OUTDIR
    pack_id      TEXT,               -- the proof (pack of K jobs) that last took it; the job id itself when K = 1
    slot         INTEGER,            -- its slot in that proof
    outputs_json TEXT,               -- its own slot's outputs
    prove_s      REAL,
    backend      TEXT,
    worker       TEXT,               -- host:pid of the prover that finished it
    run_id       TEXT,               -- the run that last dispatched or finished it
    adopted      INTEGER NOT NULL DEFAULT 0,   -- proof file found after a crash rather than recorded live
    submitted_at REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS labels (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    label  TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (job_id, label)
);
CREATE INDEX IF NOT EXISTS labels_label ON labels (label);  -- a prover node finds its postings' jobs by label
CREATE TABLE IF NOT EXISTS runs (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    backend    TEXT NOT NULL,
    workers    INTEGER NOT NULL,
    started_at REAL NOT NULL,
    ended_at   REAL,
    outcome    TEXT             -- completed | interrupted | error; NULL while running or after a crash
);
"""


@dataclass(frozen=True)
class Job:
    id: str
    source: str
    state: str
    input_sha256: str | None
    input_data: list | None
    attempts: int
    proof_path: str | None
    reason: str | None
    seq: int = 0
    pack_id: str | None = None
    slot: int | None = None


class OutDirLock:
    """An exclusive flock on OUTDIR/jobs.lock: one coordinator per output directory.

    The kernel drops the lock when its holder dies, however it dies, so a lock that can be taken means
    every `running` job in the store belongs to a dead process. (flock is unreliable on some network
    filesystems: keep OUTDIR on a local disk.)
    """

    def __init__(self, out_dir: Path, lock_file: str = LOCK_FILE, holder: str = "`zkinfer batch`"):
        self.path = out_dir / lock_file
        self._holder = holder
        self._fd: int | None = None

    def __enter__(self) -> OutDirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(f"{self.path.parent} is in use by another {self._holder} ({holder}); "
                             "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


class JobStore:
    """Access to OUTDIR/jobs.sqlite. Mutating methods are for the coordinator holding OutDirLock."""

    def __init__(self, out_dir: str | os.PathLike, create: bool = False):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / DB_FILE
        if not create and not self.path.exists():
            raise UsageError(f"no job store in {self.out_dir} ({DB_FILE} not found): run `zkinfer batch` first")
        if create:
            (self.out_dir / PROOFS_DIR).mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; writes group themselves with `_transaction`.
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout = 30000")
        if create:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.executescript(_SCHEMA)
        self._migrate()
        # FULL: every commit is on disk before we go on (cheap at proofs-per-second rates).
        self.db.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        return _Transaction(self.db)

    def _migrate(self) -> None:
        """A version-1 store (one proof per job) gains the pack columns; its jobs read as packs of one. A
        store older than version 3 gains error_class, NULL for the failures it already holds."""
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(jobs)")}
        if columns and "pack_id" not in columns:
            with self._transaction():
                for col in ("pack_id TEXT", "slot INTEGER"):
                    self.db.execute(f"ALTER TABLE jobs ADD COLUMN {col}")
                self.db.execute("UPDATE jobs SET pack_id = id, slot = 0 WHERE state = 'proved'")
        if columns and "error_class" not in columns:
            with self._transaction():
                self.db.execute("ALTER TABLE jobs ADD COLUMN error_class TEXT")

    # ---- the circuit this store belongs to

    def meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self.db.execute("SELECT key, value FROM meta")}

    def bind_circuit(self, circuit_id: str, circuit_name: str, circuit_dir: str, slots: int = 1) -> None:
        """Tie the store to one circuit version: job ids and proofs only make sense for that circuit."""
        meta = self.meta()
        if meta.get("circuit_id") not in (None, circuit_id):
            raise UsageError(
                f"{self.out_dir} holds jobs for circuit {meta.get('circuit_name')!r} (circuit id "
                f"{meta['circuit_id'][:16]}...), not {circuit_name!r} ({circuit_id[:16]}...): "
                "use a separate --out directory per circuit version")
        with self._transaction():
            for k, v in (("schema_version", SCHEMA_VERSION), ("circuit_id", circuit_id),
                         ("circuit_name", circuit_name), ("circuit_dir", circuit_dir), ("slots", str(slots))):
                self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (k, v))

    def digest_key(self) -> bytes:
        """This store's secret for naming private inputs (`prove.input_digest`): made once, kept here only."""
        key = self.meta().get("digest_key")
        if key is None:
            key = secrets.token_hex(32)
            with self._transaction():
                self.db.execute("INSERT INTO meta (key, value) VALUES ('digest_key', ?) ON CONFLICT (key) DO NOTHING",
                                (key,))
            key = self.meta()["digest_key"]
        return bytes.fromhex(key)

    # ---- submitting

    def add(self, specs: Iterable, chunk: int = 500) -> tuple[int, int]:
        """Insert jobs (sources.JobSpec); a job id already present is not added again. -> (new, duplicates)."""
        new = dup = 0
        batch: list = []

        def flush():
            nonlocal new, dup
            now = time.time()
            with self._transaction():
                for s in batch:
                    cur = self.db.execute(
                        "INSERT OR IGNORE INTO jobs (id, source, input_sha256, input_json, state, reason, "
                        "submitted_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (s.id, s.where, s.input_sha256,
                         json.dumps(s.input_data, separators=(",", ":")) if s.input_data is not None else None,
                         "failed" if s.error else "queued", s.error, now, now if s.error else None))
                    if cur.rowcount:
                        new += 1
                    else:
                        dup += 1
                    if s.label is not None:
                        self.db.execute("INSERT OR IGNORE INTO labels (job_id, label, source) VALUES (?, ?, ?)",
                                        (s.id, s.label, s.where))
            batch.clear()

        for s in specs:
            batch.append(s)
            if len(batch) >= chunk:
                flush()
        flush()
        return new, dup

    # ---- runs

    def start_run(self, backend: str, workers: int) -> str:
        run_id = uuid.uuid4().hex[:16]
        with self._transaction():
            self.db.execute("INSERT INTO runs (id, host, pid, backend, workers, started_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (run_id, socket.gethostname(), os.getpid(), backend, workers, time.time()))
        return run_id

    def end_run(self, run_id: str, outcome: str) -> None:
        with self._transaction():
            self.db.execute("UPDATE runs SET ended_at = ?, outcome = ? WHERE id = ?", (time.time(), outcome, run_id))

    def runs(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM runs ORDER BY started_at")]

    # ---- state transitions (coordinator only)

    def requeue_running(self, reason: str) -> int:
        """Jobs left `running` by a dead coordinator (or an interrupted one) go back to the queue."""
        with self._transaction():
            return self.db.execute("UPDATE jobs SET state = 'queued', reason = ? WHERE state = 'running'",
                                   (reason,)).rowcount

    def requeue_failed(self) -> int:
        """--retry-failed: failed jobs that hold a valid input are queued again (bad rows stay failed)."""
        with self._transaction():
            return self.db.execute("UPDATE jobs SET state = 'queued', reason = NULL "
                                   "WHERE state = 'failed' AND input_json IS NOT NULL").rowcount

    def mark_pack_running(self, pack_id: str, job_ids: list[str], run_id: str, backend: str) -> None:
        """The jobs of one proof, in slot order, go to a prover together."""
        now = time.time()
        with self._transaction():
            for slot, job_id in enumerate(job_ids):
                self.db.execute("UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?, "
                                "run_id = ?, backend = ?, reason = NULL, pack_id = ?, slot = ? WHERE id = ?",
                                (now, run_id, backend, pack_id, slot, job_id))

    def mark_pack_proved(self, pack_id: str, proof_path: str, members: list[tuple[str, int, list]],
                         prove_s: float | None, worker: str | None, run_id: str | None,
                         adopted: bool = False) -> None:
        """Every job of one proof is proved, in one transaction: `members` are (job id, slot, that slot's
        outputs) for the real (not padding) slots."""
        now = time.time()
        with self._transaction():
            for job_id, slot, outputs in members:
                self.db.execute("UPDATE jobs SET state = 'proved', proof_path = ?, pack_id = ?, slot = ?, "
                                "outputs_json = ?, prove_s = ?, worker = COALESCE(?, worker), "
                                "run_id = COALESCE(?, run_id), adopted = ?, reason = NULL, finished_at = ? "
                                "WHERE id = ?",
                                (proof_path, pack_id, slot, json.dumps(outputs), prove_s, worker, run_id,
                                 int(adopted), now, job_id))

    def mark_running(self, job_id: str, run_id: str, backend: str) -> None:
        """One job as its own proof (a one-slot circuit)."""
        self.mark_pack_running(job_id, [job_id], run_id, backend)

    def mark_proved(self, job_id: str, proof_path: str, outputs, prove_s: float | None, worker: str | None,
                    run_id: str | None, adopted: bool = False) -> None:
        """One job as its own proof (a one-slot circuit)."""
        self.mark_pack_proved(job_id, proof_path, [(job_id, 0, outputs)], prove_s, worker, run_id, adopted)

    def mark_failed(self, job_id: str, reason: str, worker: str | None = None,
                    error_class: str | None = None) -> None:
        """`error_class`: the class of the error that failed it (`pipeline.errors`), e.g. OutOfRangeError for
        a row outside the calibrated range: what readers match on rather than the reason's wording."""
        with self._transaction():
            self.db.execute("UPDATE jobs SET state = 'failed', reason = ?, error_class = ?, "
                            "worker = COALESCE(?, worker), finished_at = ? WHERE id = ?",
                            (reason, error_class, worker, time.time(), job_id))

    def requeue(self, job_id: str, reason: str | None, forget_proof: bool = False) -> None:
        """Back to the queue; `forget_proof` drops a proof file reference that no longer holds."""
        with self._transaction():
            self.db.execute("UPDATE jobs SET state = 'queued', reason = ? WHERE id = ?", (reason, job_id))
            if forget_proof:
                self.db.execute("UPDATE jobs SET proof_path = NULL, pack_id = NULL, slot = NULL, outputs_json = NULL "
                                "WHERE id = ?", (job_id,))

    # ---- reading

    def job(self, job_id: str) -> Job:
        r = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if r is None:
            raise KeyError(job_id)
        return _job(r)

    def jobs(self, state: str | None = None) -> Iterator[Job]:
        q, args = "SELECT * FROM jobs", ()
        if state:
            q, args = q + " WHERE state = ?", (state,)
        for r in self.db.execute(q + " ORDER BY seq", args).fetchall():
            yield _job(r)

    def ids(self, state: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM jobs WHERE state = ? ORDER BY seq", (state,))]

    def queued(self) -> list[tuple[int, str]]:
        """(seq, id) of the queued jobs in submission order: the order they are packed and proven in."""
        return [(r[0], r[1]) for r in self.db.execute("SELECT seq, id FROM jobs WHERE state = 'queued' ORDER BY seq")]

    def labels(self, job_ids: Iterable[str]) -> dict[str, list[str]]:
        """Every label each job was submitted under (sorted)."""
        out: dict[str, list[str]] = {}
        for job_id in job_ids:
            out[job_id] = [r[0] for r in self.db.execute(
                "SELECT label FROM labels WHERE job_id = ? ORDER BY label", (job_id,))]
        return out

    def by_label(self, labels: Iterable[str]) -> dict[str, Job]:
        """The job each of these labels was submitted as (labels never submitted are left out)."""
        wanted, found = sorted(set(labels)), {}
        for i in range(0, len(wanted), 500):  # in chunks under SQLite's limit on bound variables
            chunk = wanted[i:i + 500]
            found.update((r["label"], _job(r)) for r in self.db.execute(
                f"SELECT l.label, j.* FROM labels l JOIN jobs j ON j.id = l.job_id "
                f"WHERE l.label IN ({', '.join('?' for _ in chunk)})", chunk))
        return found

    def proof_paths(self) -> set[str]:
        """The proof files proved jobs refer to (relative to OUTDIR)."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT proof_path FROM jobs WHERE state = 'proved'")}

    def proof_count(self) -> int:
        return self.db.execute("SELECT COUNT(DISTINCT proof_path) FROM jobs WHERE state = 'proved'").fetchone()[0]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        counts.update({r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")})
        return counts

    def failures(self) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT id, source, reason, attempts, (SELECT group_concat(label, ', ') FROM labels WHERE job_id = id) "
            "AS labels FROM jobs WHERE state = 'failed' ORDER BY seq")]

    def proved_rows(self) -> list[dict]:
        """One row per (proved job, label); a job with no label gives one row with label None. `outputs_json`
        holds the job's own slot's outputs; `slot` is its slot in the proof at `proof_path`."""
        return [dict(r) for r in self.db.execute(
            "SELECT j.id, l.label, j.outputs_json, j.proof_path, COALESCE(j.slot, 0) AS slot "
            "FROM jobs j LEFT JOIN labels l ON l.job_id = j.id WHERE j.state = 'proved' ORDER BY j.seq, l.label")]

    def finished_rows(self, last_proved: int | None = None) -> list[dict]:
        """Proved and failed jobs in submission order (seq): their input and outputs as stored (JSON text),
        and for failures the reason and error class. With `last_proved`, only from the seq of the
        `last_proved`-th most recent proved job on. What `pipeline.monitor` reads."""
        since = -1
        if last_proved is not None:
            r = self.db.execute("SELECT seq FROM jobs WHERE state = 'proved' ORDER BY seq DESC LIMIT 1 OFFSET ?",
                                (last_proved - 1,)).fetchone()
            since = r[0] if r else -1
        return [dict(r) for r in self.db.execute(
            "SELECT seq, id, state, input_json, outputs_json, reason, error_class, finished_at FROM jobs "
            "WHERE state IN ('proved', 'failed') AND seq >= ? ORDER BY seq", (since,))]

    def run_stats(self, run_id: str) -> dict:
        """What one run proved (adopted files excluded): inferences, proofs, and mean seconds per proof."""
        r = self.db.execute("SELECT COUNT(*), COUNT(DISTINCT proof_path), MAX(finished_at) FROM jobs "
                            "WHERE run_id = ? AND state = 'proved' AND adopted = 0", (run_id,)).fetchone()
        mean = self.db.execute("SELECT AVG(s) FROM (SELECT MAX(prove_s) AS s FROM jobs WHERE run_id = ? AND "
                               "state = 'proved' AND adopted = 0 GROUP BY proof_path)", (run_id,)).fetchone()[0]
        return {"proved": r[0], "proofs": r[1], "last_finished_at": r[2], "mean_prove_s": mean}

    def mean_prove_s(self) -> float | None:
        """Mean seconds per proof (a proof of K inferences counts once)."""
        return self.db.execute("SELECT AVG(s) FROM (SELECT MAX(prove_s) AS s FROM jobs WHERE state = 'proved' "
                               "AND adopted = 0 GROUP BY proof_path)").fetchone()[0]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (KeyboardInterrupt included)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *exc) -> None:
        if not exc_type:
            faults.point("store-commit")
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _job(r: sqlite3.Row) -> Job:
    return Job(id=r["id"], source=r["source"], state=r["state"], input_sha256=r["input_sha256"],
               input_data=json.loads(r["input_json"]) if r["input_json"] is not None else None,
               attempts=r["attempts"], proof_path=r["proof_path"], reason=r["reason"], seq=r["seq"],
               pack_id=r["pack_id"], slot=r["slot"])
