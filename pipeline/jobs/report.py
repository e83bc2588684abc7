"""Reading a job store without disturbing a batch that may be running on it: status and export."""

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
            "manifest_sha256": meta.get("manifest_sha256"),
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
    try:
        os.kill(run["pid"], 0)
    except ProcessLookupError:
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
        r["outputs"] = json.loads(r.pop("outputs_json"))
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
