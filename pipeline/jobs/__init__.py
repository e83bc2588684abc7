"""Batch proving: many inputs, one circuit, a resumable SQLite job store, local processes or Ray.

    from pipeline import jobs

    summary = jobs.run_batch("circuits/credit_risk", "borrowers.csv", "runs/2024-06-01", workers=2)
    print(summary.proved, summary.failed, summary.exit_code)
    jobs.status("runs/2024-06-01")                        # counts, failures, throughput
    jobs.export("runs/2024-06-01", "csv", "scores.csv")   # id, label, outputs, proof path, slot

The CLI (`zkinfer batch`, `zkinfer jobs status|export`) is a thin layer over these. Modules:

    sources      JSONL/CSV rows (one inference each) -> jobs with content-derived ids; pack ids
    store        the SQLite job store and the OUTDIR lock
    runner       the coordinator: crash recovery, dispatch, results; run_batch, measure_throughput
    worker       what a prover process or actor runs
    local        the process-pool backend
    ray_backend  the Ray backend (actors, artifacts shipped once per node via node_cache)
    progress     progress bar / log lines
    report       status and export
"""

from .progress import LineProgress, Progress, RichProgress, auto_progress
from .report import EXPORT_FORMATS, export, status
from .runner import (
    BACKENDS,
    DEFAULT_TIMEOUT_S,
    BatchSummary,
    measure_batch,
    measure_throughput,
    run_batch,
    write_benchmark_inputs,
)
from .sources import JobSpec, job_id, pack_id, read_inputs
from .store import JobStore

__all__ = [
    "BACKENDS", "DEFAULT_TIMEOUT_S", "EXPORT_FORMATS", "BatchSummary", "JobSpec", "JobStore", "LineProgress",
    "Progress", "RichProgress", "auto_progress", "export", "job_id", "measure_batch", "measure_throughput", "pack_id",
    "read_inputs", "run_batch", "status", "write_benchmark_inputs",
]
