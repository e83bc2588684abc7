"""Reading a job store without disturbing a batch that may be running on it: status and export; and the
text the CLI prints for a store's status and a batch's summary."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..artifacts import write_text_atomic
from ..errors import UsageError
from .store import JobStore

EXPORT_FORMATS = ("csv", "jsonl")


def status(out_dir: str | os.PathLike) -> dict:
    """`zkinfer jobs status`: counts per state (of jobs: inferences), proofs, the failed jobs and why, and
    throughput."""
    with JobStore(out_dir) as store:
        meta = store.meta()
        counts = store.counts()
        slots = int(meta.get("slots") or 1)
        proofs = store.proof_count()
        runs = store.runs()
        last = None
        if runs:
            run = runs[-1]
            stats = store.run_stats(run["id"])
            active = _alive(run)
            end = run["ended_at"] or (time.time() if active else stats["last_finished_at"]) or run["started_at"]
            elapsed = end - run["started_at"]
            last = {**run, "active": active, "proved": stats["proved"], "proofs": stats["proofs"],
                    "elapsed_s": round(elapsed, 3),
                    "proofs_per_minute": round(60 * stats["proofs"] / elapsed, 2) if stats["proofs"] and elapsed
                    else None,
                    "inferences_per_minute": round(60 * stats["proved"] / elapsed, 2)
                    if stats["proved"] and elapsed else None}
        mean = store.mean_prove_s()
        return {
            "out_dir": str(out_dir),
            "circuit": meta.get("circuit_name"),
            "circuit_id": meta.get("circuit_id"),
            "counts": counts,
            "total": sum(counts.values()),
            "slots": slots,                                   # inferences per proof
            "proofs": proofs,
            "padded_slots": proofs * slots - counts["proved"],  # every proof holds all its real jobs
            "failures": store.failures(),
            "runs": len(runs),
            "last_run": last,
            "mean_prove_s": round(mean, 3) if mean is not None else None,
        }


def _alive(run: dict) -> bool | None:
    """Whether a run with no recorded end is still going: True/False on this host, None if on another."""
    if run["ended_at"] is not None:
        return False
    if run["host"] != socket.gethostname():
        return None
    return pid_alive(run["pid"])


def pid_alive(pid) -> bool:
    """Whether a process with this pid runs on this host (one of another user's counts)."""
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True


def export(out_dir: str | os.PathLike, fmt: str = "csv", dest: str | os.PathLike = "-") -> int:
    """`zkinfer jobs export`: one row per proved job (inference) and label: id, label, the job's own outputs,
    its proof's path and its slot in that proof (the subject order on chain).

    CSV flattens the outputs into columns output_0..output_k; JSONL keeps them as a list per output tensor.
    `dest` "-" writes to stdout; a file is written atomically. Returns the number of rows.
    """
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    with JobStore(out_dir) as store:
        rows = store.proved_rows()
    out = Path(out_dir)
    for r in rows:
        r["outputs"] = json.loads(r.pop("outputs_json") or "null") or []  # none for private outputs
        r["proof_path"] = str(out / r["proof_path"])
    buf = io.StringIO()
    if fmt == "jsonl":
        for r in rows:
            buf.write(json.dumps({"id": r["id"], "label": r["label"], "outputs": r["outputs"],
                                  "proof": r["proof_path"], "slot": r["slot"]}) + "\n")
    else:
        width = max((sum(len(t) for t in r["outputs"]) for r in rows), default=0)
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "label", *(f"output_{i}" for i in range(width)), "proof_path", "slot"])
        for r in rows:
            flat = [v for t in r["outputs"] for v in t]
            w.writerow([r["id"], r["label"] or "", *flat, *[""] * (width - len(flat)), r["proof_path"], r["slot"]])
    if str(dest) == "-":
        sys.stdout.write(buf.getvalue())
    else:
        write_text_atomic(dest, buf.getvalue())
    return len(rows)


# ---- what the CLI prints: a batch's summary and a store's status, as lines of text

# A batch of thousands can fail thousands of rows; its summary shows the first few, `jobs status` all.
MAX_FAILURES_SHOWN = 20


def summary_lines(s) -> list[str]:
    """`zkinfer batch`'s report of a `BatchSummary`, all but its last line (`summary_verdict`)."""
    lines = []
    if s.rows_read:
        invalid = f" ({s.invalid_rows} not valid inputs)" if s.invalid_rows else ""
        lines.append(f"inputs:     {s.rows_read} rows{invalid}: {s.new_jobs} new jobs, {s.duplicates} already "
                     "submitted (same input: not proven again)")
    if s.requeued or s.adopted:
        lines.append(f"recovered:  {s.requeued} requeued (left running by a stopped run), "
                     f"{s.adopted} proof file(s) adopted (written just before a stop)")
    rate = f", {s.proofs_per_minute:.1f} proofs/min" if s.proofs_per_minute else ""
    lines.append(f"this run:   {s.proved_now} proved, {s.failed_now} failed in {s.elapsed_s:.1f} s{rate}")
    if s.slots > 1:
        padded = f", {s.padded_now} padding slot(s)" if s.padded_now else ""
        lines.append(f"packing:    {s.slots} inferences per proof: {s.proofs_now} proof(s) this run{padded}, "
                     f"{s.proofs} in all")
    if s.waiting:
        lines.append(f"waiting:    {s.waiting} row(s) waiting for a full pack of {s.slots} (--no-pad)")
    lines.append(f"proofs:     {s.out_dir / 'proofs'}")
    lines += failure_lines(s.failures[:MAX_FAILURES_SHOWN])
    if len(s.failures) > MAX_FAILURES_SHOWN:
        lines.append(f"  ... and {len(s.failures) - MAX_FAILURES_SHOWN} more: zkinfer jobs status {s.out_dir}")
    return lines


def summary_verdict(s) -> str:
    """The summary's last line: the totals, or (interrupted) how to resume."""
    if s.interrupted:
        return f"interrupted: {s.proved} proved, {s.remaining} remaining; run the same command again to resume"
    return f"{s.proved} proved, {s.failed} failed"


def failure_lines(failures: list[dict]) -> list[str]:
    lines = ["failed:"] if failures else []
    for f in failures:
        label = f" [{f['labels']}]" if f.get("labels") else ""
        lines.append(f"  {f['id']}{label}: {f['reason']}")
    return lines


def status_lines(st: dict) -> list[str]:
    """`zkinfer jobs status`'s report of a `status` dict."""
    c = st["counts"]
    lines = [f"store:      {st['out_dir']} (circuit {st['circuit']}, id {st['circuit_id'][:16]}...)",
             f"jobs:       {st['total']}: {c['proved']} proved, {c['failed']} failed, {c['queued']} queued, "
             f"{c['running']} running (one inference each)"]
    padded = f", {st['padded_slots']} padding slot(s)" if st["padded_slots"] else ""
    lines.append(f"proofs:     {st['proofs']} ({st['slots']} inference(s) per proof{padded})")
    run = st["last_run"]
    if run:
        state = {True: "running", False: run["outcome"] or "stopped (crashed or killed)", None: "unknown (other host)"}
        rate = f", {run['proofs_per_minute']:.1f} proofs/min" if run["proofs_per_minute"] else ""
        if st["slots"] > 1 and run["inferences_per_minute"]:
            rate += f", {run['inferences_per_minute']:.1f} inferences/min"
        lines.append(f"last run:   {state[run['active']]}, {run['backend']} x{run['workers']}: {run['proved']} "
                     f"proved in {run['proofs']} proof(s), {run['elapsed_s']:.1f} s{rate} ({st['runs']} runs in all)")
    if st["mean_prove_s"] is not None:
        lines.append(f"prove time: {st['mean_prove_s']:.2f} s per proof on average")
    return lines + failure_lines(st["failures"])
