"""`zkinfer prove`, `verify`, `batch` and `jobs`: proofs off chain."""

from __future__ import annotations

import sys

import click

from ..jobs import DEFAULT_TIMEOUT_S
from .base import cli, echo_lines


@cli.command("prove")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("input_path", metavar="INPUT.json", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Proof file to write.")
def prove_cmd(circuit_dir, input_path, out_path):
    """Prove one inference (ezkl input.json) with a built circuit."""
    from ..prooffile import ProofFile
    from ..prove import prove_file

    content, outputs = prove_file(circuit_dir, input_path, out_path)
    proof = ProofFile.from_json(content, out_path)
    kind = "public outputs" if proof.outputs_public else "outputs (private: not in the proof file)"
    click.echo(f"proof:     {out_path} ({proof.meta.prove_s:.2f} s)")
    click.echo(f"{kind}: {outputs}")


@cli.command("verify")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("proof_path", metavar="PROOF.json", type=click.Path(dir_okay=False))
def verify_cmd(circuit_dir, proof_path):
    """Verify a proof: exit 0 valid, 1 invalid, 2 usage error."""
    from ..verify import verify_proof

    result = verify_proof(circuit_dir, proof_path)
    if result.valid:
        click.echo(f"valid: outputs {result.outputs}")
        return
    click.echo(f"invalid: {result.reason}")
    sys.exit(1)


@cli.command("batch")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("inputs_path", metavar="INPUTS", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory: the job store (jobs.sqlite) and proofs/<id>.json.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Provers working in parallel (processes, or Ray actors).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", help="Ray cluster address (default: start a local Ray instance). Ray only.")
@click.option("--gpus-per-job", type=click.FloatRange(min=0), default=0,
              help="GPUs each Ray prover requests, so jobs run on GPU nodes. Ray only.")
@click.option("--cpus-per-job", type=click.FloatRange(min=0, min_open=True), default=1, show_default=True,
              help="CPUs each Ray prover requests. Ray only.")
@click.option("--threads-per-worker", type=click.IntRange(min=1),
              help="Cap each prover's threads (RAYON_NUM_THREADS; default: all cores).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT_S,
              show_default=True, help="Seconds a job may take; then its prover is killed and the job fails.")
@click.option("--retry-failed", is_flag=True,
              help="Queue failed jobs again (rows that are not valid inputs stay failed).")
@click.option("--no-pad", is_flag=True,
              help="Circuits proving K inferences at once: leave a last pack of fewer than K rows queued for a "
                   "later run instead of padding it with a repeat of its last row.")
def batch_cmd(circuit_dir, inputs_path, out_dir, workers, backend, address, gpus_per_job, cpus_per_job,
              threads_per_worker, timeout_s, retry_failed, no_pad):
    """Prove every row of INPUTS (JSONL or CSV); run it again to resume after a crash or Ctrl-C.

    Each row is one inference; a circuit built with --batch K proves K rows per proof.
    Exit 0 when every job is proved, 1 when some failed, 2 for usage errors, 130 when interrupted.
    """
    from ..jobs import auto_progress, report, run_batch

    summary = run_batch(circuit_dir, inputs_path, out_dir, workers=workers, backend=backend, address=address,
                        gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job,
                        threads_per_worker=threads_per_worker, timeout_s=timeout_s, retry_failed=retry_failed,
                        progress=auto_progress(), pad=not no_pad)
    echo_lines(report.summary_lines(summary))
    click.echo(report.summary_verdict(summary), err=summary.interrupted)
    if summary.exit_code:
        sys.exit(summary.exit_code)


@cli.group("jobs")
def jobs_group():
    """Inspect a batch's job store."""


@jobs_group.command("status")
@click.argument("out_dir", metavar="OUTDIR", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def jobs_status_cmd(out_dir, as_json):
    """Job counts, failures and throughput (safe while a batch runs)."""
    import json

    from ..jobs import report

    st = report.status(out_dir)
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    echo_lines(report.status_lines(st))


@jobs_group.command("export")
@click.argument("out_dir", metavar="OUTDIR", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--out", "dest", default="-", show_default=True, help="File to write ('-': stdout).")
def jobs_export_cmd(out_dir, fmt, dest):
    """Write id, label, outputs, proof path and slot of every proved job (one line per inference and label)."""
    from ..jobs import export

    n = export(out_dir, fmt, dest)
    if dest != "-":
        click.echo(f"{n} rows written to {dest}", err=True)
