"""`zkinfer monitor`: drift of what a prover proved against its circuit's data profile."""

from __future__ import annotations

import sys

import click

from .base import DEPLOYMENTS_OPTION, cli, echo_lines


@cli.command("monitor")
@click.argument("run_dir", metavar="RUN_OR_SERVE_DIR", type=click.Path(file_okay=False))
@click.option("--circuit", "circuit_dir", type=click.Path(file_okay=False),
              help="The circuit (default: the one the job store is bound to).")
@click.option("--window", type=click.IntRange(min=1), help="Only the most recent N proven rows (default: all).")
@click.option("--psi-max", type=click.FloatRange(min=0, min_open=True), default=0.25, show_default=True,
              help="Drift when any input feature's PSI exceeds this.")
@click.option("--output-psi-max", type=click.FloatRange(min=0, min_open=True), default=0.25, show_default=True,
              help="Drift when any output's PSI exceeds this.")
@click.option("--refused-max", type=click.FloatRange(min=0, max=1, max_open=True), default=0.05, show_default=True,
              help="Drift when the share of rows refused as outside the calibrated range exceeds this.")
@click.option("--min-rows", type=click.IntRange(min=1), default=100, show_default=True,
              help="Fewer proven rows: verdict 'insufficient' (PSI is noise on small samples).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where drift.json and drift.png go (default: RUN_OR_SERVE_DIR).")
@click.option("--profile-from", "profile_from", type=click.Path(dir_okay=False),
              help="First (re)compute the circuit's profile.json from this ezkl input.json-style data file and "
                   "list it in the manifest (for circuits built before profiles were recorded).")
@click.option("--trip", is_flag=True, help="On drift, suspend the model on chain (pipeline.chain.suspend_model).")
@click.option("--rpc-url", "--rpc", "rpc", help="JSON-RPC URL for --trip (default: the chain `zkinfer chain up` "
                                                "started).")
@DEPLOYMENTS_OPTION
@click.option("--no-plot", is_flag=True, help="Do not write drift.png.")
def monitor_cmd(run_dir, circuit_dir, window, psi_max, output_psi_max, refused_max, min_rows, out_dir, profile_from,
                trip, rpc, deployments_dir, no_plot):
    """Compare the rows proven in a batch OUTDIR (or a `zkinfer serve` DIR's jobs/) with the circuit's
    data profile: PSI per input feature and output, and the share refused as out of range.

    Exit 0 within thresholds (or 'insufficient': too few rows to judge), 1 when a threshold is crossed
    (drift), 2 for usage errors.
    """
    from .. import manifest
    from ..jobs.store import JobStore
    from ..monitor import Thresholds, Trip, find_store, monitor, profile_from_data
    from .base import rpc_url

    thresholds = Thresholds(psi_max=psi_max, output_psi_max=output_psi_max, refused_max=refused_max,
                            min_rows=min_rows)
    if profile_from:
        target = circuit_dir
        if target is None:
            with JobStore(find_store(run_dir)) as store:
                target = store.meta().get("circuit_dir")
        p = profile_from_data(target or ".", profile_from)
        click.echo(f"profile:   {manifest.load(target).dir}/profile.json recomputed from {profile_from} "
                   f"({p['count']} inferences), listed in the manifest", err=True)
    tripper = Trip(rpc_url(rpc), deployments_dir) if trip else None
    report = monitor(run_dir, circuit_dir=circuit_dir, window=window, thresholds=thresholds, out=out_dir,
                     trip=tripper, plot=not no_plot)
    echo_lines(report.summary_lines())
    if report.exit_code:
        sys.exit(report.exit_code)
