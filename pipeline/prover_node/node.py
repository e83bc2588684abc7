"""`zkinfer serve`: a standing prover that turns a gate's postings into proven actions.

One pass (`ProverNode.step`) does, in order:

1. follow: read the gate's FeaturesPosted events from the block cursor to the head (less `confirmations`)
   into the node store, moving the cursor in the same transaction; if the cursor block's hash changed (a
   reorg), step back `REORG_REWIND_BLOCKS` and read again (known postings are kept, not doubled);
2. match: for each waiting posting, find the feature row whose commitment is the posted one in the feature
   source (`feeds`); no such row within `features_wait_s` is a mismatch, reported and never proven;
3. prove: hand matched postings to the job machinery (`pipeline.jobs.run_batch` on DIR/jobs); a K-slot
   circuit proves full packs at once and pads a partial pack only once its oldest posting waited `max_wait_s`;
4. act: check each proved posting against the gate's record (still the latest posting, not consumed, fresh)
   and submit; a posting another prover acted on first is done (`elsewhere`), not a failure.

Restart safety: every step's effect is recorded before the next one starts, and what was in flight is
re-derived on start. The job store never proves one input twice; the gate acts on a posting at most once,
whoever submits; a posting the node was submitting when killed is looked up on chain at restart (acted on
by this node's account, by someone else, or not at all: then it is submitted again).

A K-slot pack proof is submitted only when every real slot's posting is still open; otherwise the open ones
are proven alone (one row padded to K slots, all slots naming the subject: the gate acts on it once).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import read_json, write_json_atomic
from ..errors import ChainError, UsageError, ZkinferError
from ..jobs.report import pid_alive
from ..jobs.store import DB_FILE, Job, JobStore, OutDirLock
from . import store as st
from .feeds import FeatureSource, open_source, subject_word

log = logging.getLogger("zkinfer.node")

JOBS_DIR, SOLO_DIR, STATUS_FILE, LOG_FILE, LOCK_FILE = "jobs", "solo", "status.json", "node.log", "node.lock"
REORG_REWIND_BLOCKS = 64
LOG_CHUNK_BLOCKS = 2_000
THROUGHPUT_WINDOW_S = 600


@dataclass
class NodeConfig:
    circuit_dir: Path
    rpc_url: str
    features: str                       # a feature source (`feeds.open_source`)
    gate: str | None = None             # the deployed circuit's name in the deployments book (default: the circuit's)
    deployments_dir: str | os.PathLike = "deployments"
    workers: int = 1
    max_wait_s: float = 30.0            # K-slot circuits: how long a partial pack waits before it is padded
    poll_s: float = 2.0                 # between passes when idle
    confirmations: int = 0              # blocks behind the head the node reads events to
    features_wait_s: float = 60.0       # how long a posting may wait for its feature row
    from_block: int | None = None       # where to start reading (default: the gate's deployment block)
    private_key: str | None = None      # default: $ZKINFER_PRIVATE_KEY (anvil's dev account on 31337)
    max_backoff_s: float = 30.0
    prove_timeout_s: float = 600.0


@dataclass
class StepResult:
    new_postings: int = 0
    matched: int = 0
    proved_now: int = 0
    acted: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class ProverNode:
    """A prover node over DIR. `run()` blocks until `stop()` (or SIGTERM/Ctrl-C in the CLI); `start()` runs
    it in a background thread; `step()` is one pass, for tests and scripts."""

    def __init__(self, serve_dir: str | os.PathLike, config: NodeConfig, source: FeatureSource | None = None):
        from ..chain.gate import FeatureCommitter

        self.dir = Path(serve_dir)
        self.config = config
        if config.workers < 1:
            raise UsageError("--workers must be at least 1")
        if config.max_wait_s < 0 or config.poll_s <= 0 or config.confirmations < 0:
            raise UsageError("--max-wait and --confirmations must be >= 0, --poll positive")
        self.committer = FeatureCommitter(config.circuit_dir)
        self.manifest = self.committer.manifest
        self.source = source or open_source(config.features)
        self.slot_count = 1  # the gate's layout says (see _connect)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: OutDirLock | None = None
        self.handle = None
        self.suspended = False
        self.last_error: str | None = None
        self._prover = None
        self._head: int | None = None

    # ---- lifecycle

    def open(self) -> None:
        """Take DIR's lock, open the store, connect to the chain and the gate, and recover from a kill."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = OutDirLock(self.dir, lock_file=LOCK_FILE, holder="`zkinfer serve`")
        self._lock.__enter__()
        self.store = st.NodeStore(self.dir, create=True)
        _attach_log_file(self.dir / LOG_FILE)
        self.store.incident("start", f"node started (pid {os.getpid()})")

    def close(self) -> None:
        if getattr(self, "store", None) is not None:
            self._write_status(running=False)
            self.store.close()
            self.store = None
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    def run(self) -> None:
        """Serve until `stop()`: passes back to back while there is work, `poll_s` apart when idle; chain
        errors (an RPC outage, a reorg) are reported and retried with exponential backoff."""
        self.open()
        backoff = 0.0
        try:
            while not self._stop.is_set():
                try:
                    result = self.step()
                    backoff = 0.0
                    busy = result.new_postings or result.matched or result.proved_now or result.acted
                    self._stop.wait(0 if busy else self.config.poll_s)
                except (ChainError, OSError, ConnectionError, TimeoutError) as e:
                    backoff = min(self.config.max_backoff_s, max(1.0, 2 * backoff))
                    self._trouble("rpc", f"{_first_line(e)}; retrying in {backoff:g} s")
                    self.handle = None  # reconnect: the endpoint may come back as another process
                    self._stop.wait(backoff)
                except UsageError:
                    raise
                except ZkinferError as e:
                    backoff = min(self.config.max_backoff_s, max(1.0, 2 * backoff))
                    self._trouble("error", f"{e.message}; retrying in {backoff:g} s")
                    self._stop.wait(backoff)
        finally:
            self.close()

    def start(self) -> None:
        """Run in a background thread (the local prover processes are spawned, not forked from it)."""
        self._thread = threading.Thread(target=self.run, name="zkinfer-node", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _trouble(self, kind: str, message: str) -> None:
        self.last_error = message
        log.warning("%s: %s", kind, message, extra={"kind": kind})
        try:
            self.store.incident(kind, message)
            self._write_status(running=True)
        except Exception:  # noqa: BLE001 (reporting must not take the node down)
            log.exception("could not record an incident")

    # ---- chain

    def _connect(self) -> None:
        from ..chain import Chain, open_gate

        c = self.config
        chain = Chain(c.rpc_url, c.private_key)
        handle = open_gate(chain, c.gate or self.manifest.name, c.deployments_dir)
        if handle.circuit_id != self.manifest.circuit_id:
            raise UsageError(f"{c.circuit_dir} is circuit version {self.manifest.circuit_id[:12]}..., but the gate "
                             f"for {handle.circuit} on chain {chain.chain_id} acts on {handle.circuit_id[:12]}...: "
                             "serve the deployed circuit")
        meta = self.store.meta()
        binding = {"chain_id": chain.chain_id, "gate": handle.gate.address, "circuit_id": handle.circuit_id}
        for k, v in binding.items():
            if k in meta and meta[k] != str(v):
                raise UsageError(f"{self.dir} serves {k} {meta[k]}, not {v}: use another directory per gate")
        self.store.set_meta(**binding, circuit=handle.circuit, account=chain.account)
        self.handle = handle
        self.slot_count = handle.layout["slots"]
        self._max_age = None

    def _rpc(self):
        return self.handle.chain.w3

    def _start_block(self) -> int:
        if self.config.from_block is not None:
            return self.config.from_block
        from ..chain.deployments import DeploymentsBook

        book = DeploymentsBook(self.handle.chain.chain_id, self.config.deployments_dir)
        record = book.contracts.get(book.models[self.handle.circuit]["gate"], {})
        return int(record.get("blockNumber", 0))

    # ---- one pass

    def step(self) -> StepResult:
        r = StepResult()
        if self.handle is None:
            self._connect()
        self._head = self._rpc().eth.block_number
        self._recover()
        r.new_postings = self._follow()
        r.matched = self._match()
        r.proved_now = self._prove()
        r.acted = self._act(r.outcomes)
        self._write_status(running=True)
        return r

    def _follow(self) -> int:
        w3, gate = self._rpc(), self.handle.gate
        cursor, cursor_hash = self.store.cursor()
        if cursor is not None and cursor_hash and cursor <= self._head:
            now_hash = w3.eth.get_block(cursor)["hash"].hex()
            if now_hash.removeprefix("0x") != cursor_hash.removeprefix("0x"):
                back = max(self._start_block() - 1, cursor - REORG_REWIND_BLOCKS)
                self._trouble("reorg", f"block {cursor} changed hash; reading events again from block {back + 1}")
                cursor = back
        first = (self._start_block() if cursor is None else cursor + 1)
        last = self._head - self.config.confirmations
        new = 0
        for a in range(first, last + 1, LOG_CHUNK_BLOCKS):
            b = min(last, a + LOG_CHUNK_BLOCKS - 1)
            logs = gate.events.FeaturesPosted().get_logs(from_block=a, to_block=b)
            postings = [{"tx_hash": "0x" + bytes(e["transactionHash"]).hex(), "log_index": e["logIndex"],
                         "block_number": e["blockNumber"], "subject": "0x" + bytes(e["args"]["subject"]).hex(),
                         "commitment": "0x" + bytes(e["args"]["commitment"]).hex(),
                         "posted_at": e["args"]["postedAt"], "publisher": e["args"]["publisher"]} for e in logs]
            new += self.store.add_postings(postings, b, w3.eth.get_block(b)["hash"].hex())
        if new:
            log.info("%d new posting(s) up to block %d", new, last)
        return new

    def _match(self) -> int:
        matched = 0
        for p in self.store.postings(st.WAITING):
            tried, row = [], None
            for cand in self.source.candidates(subject_word(p.subject)):
                try:
                    if self.committer(cand.features, cand.salt) == p.commitment:
                        row = cand
                        break
                    tried.append(f"{cand.where} hashes to another commitment")
                except ZkinferError as e:
                    tried.append(f"{cand.where}: {e.message}")
            if row is not None:
                self.store.update(p.id, st.QUEUED, feature_where=row.where,
                                  row=self.committer.row(row.features, row.salt))
                matched += 1
            elif time.time() - p.seen_at >= self.config.features_wait_s:
                why = "; ".join(tried[:3]) or f"no row for the subject in {self.source.describe()}"
                self.store.update(p.id, st.MISMATCH, reason=f"no feature row hashes to the posted commitment "
                                  f"{p.commitment[:18]}...: {why}")
                log.warning("posting %d (subject %s): commitment mismatch: %s", p.id, p.subject, why)
        return matched

    def _prove(self) -> int:
        from ..jobs import run_batch

        queued = self.store.postings(st.QUEUED)
        if not queued:
            return 0
        jobs_dir = self.dir / JOBS_DIR
        jobs = self._jobs_of(queued)
        # A bounded chunk per pass: run_batch returns when its store is proved, so a backlog handed over whole
        # would be submitted only once all of it was proved. Two packs per worker keep the provers busy.
        new_rows = [p for p in queued if p.label not in jobs][:2 * self.config.workers * self.slot_count]
        unproved = [p for p in queued if p.label not in jobs or jobs[p.label].state in ("queued", "running")]
        if not unproved:
            return 0
        oldest = min(p.seen_at for p in unproved)
        pad = self.slot_count == 1 or time.time() - oldest >= self.config.max_wait_s
        if not pad and len(unproved) < self.slot_count:
            return 0
        inbox = None
        if new_rows:
            inbox = self.dir / "inbox.jsonl"
            inbox.write_text("".join(json.dumps({"id": p.label, **p.row}) + "\n" for p in new_rows))
        summary = run_batch(self.config.circuit_dir, inbox, jobs_dir, workers=self.config.workers, pad=pad,
                            timeout_s=self.config.prove_timeout_s)
        if summary.interrupted:
            self._stop.set()
        jobs = self._jobs_of(queued)
        for p in queued:
            if p.label in jobs and jobs[p.label].state == "failed":
                self.store.update(p.id, st.FAILED, reason=f"proving failed: {jobs[p.label].reason}")
        return summary.proved_now

    def _jobs_of(self, postings: list[st.PostingRow]) -> dict[str, Job]:
        """label -> its job, for the postings already handed to the job store."""
        path = self.dir / JOBS_DIR
        if not (path / DB_FILE).exists():
            return {}
        with JobStore(path) as js:
            return js.by_label(p.label for p in postings)

    # ---- acting

    def _act(self, outcomes: dict[str, int]) -> int:
        from ..chain import model_suspended

        queued = self.store.postings(st.QUEUED)
        jobs = self._jobs_of(queued)
        ready = [p for p in queued if p.label in jobs and jobs[p.label].state == "proved"]
        if not ready:
            return 0
        self.suspended = bool(model_suspended(self.handle))
        if self.suspended:
            log.info("model %d is suspended on the gate: holding %d proved posting(s)", self.handle.model_id,
                     len(ready))
            return 0
        from .acting import plan_submissions

        acted = 0
        for sub in plan_submissions(self, ready, jobs):
            acted += sub.send(outcomes)
            if self.suspended or self._stop.is_set():
                break
        return acted

    def _recover(self) -> None:
        """Postings a killed node was submitting: find out on chain what became of them."""
        from .acting import reconcile

        stuck = self.store.postings(st.SUBMITTING)
        if stuck:
            self.store.incident("recovered", f"{len(stuck)} posting(s) were being submitted with no receipt "
                                "(a kill or an RPC error): asking the chain what became of them")
            reconcile(self, stuck)

    def solo_prover(self):
        """A prover in this process for postings proven alone (see the module doc)."""
        if self._prover is None:
            from ..prove import Prover

            self._prover = Prover(self.config.circuit_dir)
        return self._prover

    def max_feature_age(self) -> int:
        if self._max_age is None:
            self._max_age = int(self.handle.chain.call(self.handle.gate.functions.maxFeatureAge(),
                                                       "reading the gate's maxFeatureAge"))
        return self._max_age

    # ---- status

    def _write_status(self, running: bool) -> None:
        info = {"running": running, "pid": os.getpid(), "updated_at": time.time(), "head_block": self._head,
                "suspended": self.suspended, "last_error": self.last_error}
        write_json_atomic(self.dir / STATUS_FILE, info)


def status(serve_dir: str | os.PathLike) -> dict:
    """`zkinfer serve status`: backlog, latency (posting to action, block timestamps), throughput, failures
    and why, from DIR's store (and, while a node runs, what it last reported)."""
    d = Path(serve_dir)
    if not (d / st.DB_FILE).exists():
        raise UsageError(f"{d} is not a prover node directory (no {st.DB_FILE}): start one with `zkinfer serve`")
    live = read_json(d / STATUS_FILE, "node status") if (d / STATUS_FILE).exists() else {}
    with st.NodeStore(d) as s:
        counts, meta = s.counts(), s.meta()
        lat = s.latencies()
        recent = s.acted_since(time.time() - THROUGHPUT_WINDOW_S)
        problems, incidents, incident_counts = s.problems(), s.incidents(), s.incident_counts()
    running = bool(live.get("running")) and pid_alive(live.get("pid"))
    return {
        "dir": str(d), "running": running, "circuit": meta.get("circuit"), "circuit_id": meta.get("circuit_id"),
        "chain_id": meta.get("chain_id"), "gate": meta.get("gate"), "account": meta.get("account"),
        "cursor_block": int(meta["cursor_block"]) if "cursor_block" in meta else None,
        "head_block": live.get("head_block"), "suspended": live.get("suspended", False),
        "postings": counts, "backlog": sum(counts[k] for k in st.OPEN_STATES),
        "latency_s": _summary(lat), "acted_per_minute": round(recent * 60 / THROUGHPUT_WINDOW_S, 3),
        "problems": problems, "incidents": incidents, "incident_counts": incident_counts,
        "last_error": live.get("last_error"),
    }


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(values), "median": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], "max": ordered[-1]}


def _first_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    return text.strip().splitlines()[0]


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"t": round(record.created, 3), "level": record.levelname.lower(), "msg": record.getMessage()}
        if getattr(record, "kind", None):
            entry["kind"] = record.kind
        return json.dumps(entry)


def _attach_log_file(path: Path) -> None:
    """Structured logs (JSON lines) into DIR/node.log, once per file."""
    if any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in log.handlers):
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(_JsonLines())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
