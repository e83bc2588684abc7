"""`zkinfer bench`, `reliability`, `demo` and `node-demo`: measurements and the end-to-end demos."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .base import cli, progress


@cli.command("bench")
@click.option("--out", "out_path", default="bench/results.json", show_default=True, type=click.Path(dir_okay=False))
@click.option("--section", "sections", multiple=True, help="Only these sections (repeatable).")
@click.option("--model", "models", multiple=True, help="Only these zoo models (repeatable).")
@click.option("--circuits", "circuits_dir", default="circuits", show_default=True, type=click.Path(file_okay=False))
@click.option("--report-only", is_flag=True, help="Only regenerate REPORT.md and its plots from the results file.")
@click.option("--readme", default="README.md", show_default=True, type=click.Path(dir_okay=False),
              help="Regenerate this file's `<!-- bench:NAME -->` blocks from the results (skipped if absent).")
def bench_cmd(out_path, sections, models, circuits_dir, report_only, readme):
    """Benchmark the zoo (sections: see pipeline/bench.py), then write REPORT.md and plots beside the results
    and regenerate the README's benchmark tables."""
    from ..bench import report, run

    if not report_only:
        run(out_path, list(sections) or None, circuits_dir, list(models) or None, progress=progress, readme=readme)
        click.echo(f"results: {out_path}")
    else:
        report(out_path, readme=readme, progress=progress)
    click.echo(f"report: {Path(out_path).parent / 'REPORT.md'}")


@cli.command("reliability")
@click.option("--out", "out_path", default="bench/reliability.json", show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--short", is_flag=True, help="The test suite's small case counts instead of the full figures.")
@click.option("--only", "only", multiple=True, help="Only this check (repeatable).")
@click.option("--work", "work_dir", default=".zkinfer/reliability", show_default=True,
              type=click.Path(file_okay=False), help="Where the checks build, prove and crash things.")
def reliability_cmd(out_path, short, only, work_dir):
    """Reliability and adversarial checks with counted results (proof mutation off and on chain, malformed
    inputs, crashes, a lost Ray node, tampered artifacts): writes OUT and prints a table."""
    from .. import reliability

    data = reliability.run(out_path, reliability.SHORT if short else reliability.FULL, work_dir, tuple(only),
                           say=progress)
    failures = sum(t.get("failures", 0) for t in data["tests"] if not only or t["name"] in only)
    click.echo(f"results: {out_path}")
    if failures:
        sys.exit(1)


@cli.command("demo")
@click.option("--work-dir", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
def demo_cmd(work_dir, workers):
    """The main job end to end: circuit, batch proofs, local chain, gated rate updates, attacks refused."""
    from ..demo import run_demo

    run_demo(work_dir, workers=workers, say=click.echo)


@cli.command("node-demo")
@click.option("--work-dir", default="runs/node-demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
def node_demo_cmd(work_dir, workers):
    """The prover node unattended: postings proven and acted on, a kill survived, drift trips the breaker."""
    from ..node_demo import run_node_demo

    run_node_demo(work_dir, workers=workers, say=click.echo)
