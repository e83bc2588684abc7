"""The standing prover: `zkinfer serve DIR ...` and `zkinfer serve status DIR`."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from .base import DEPLOYMENTS_OPTION, RPC_OPTION, cli, echo_json, echo_lines, rpc_url


@cli.command("serve")
@click.argument("args", metavar="[status] DIR", nargs=-1, required=True)
@click.option("--circuit", "circuit_dir", type=click.Path(file_okay=False),
              help="The deployed circuit's build directory (default: circuits/<gate name>).")
@click.option("--gate", help="The deployed circuit's name in deployments/<chainId>.json (default: the circuit's).")
@click.option("--features", help="Feature source: a .jsonl/.csv file or folder, or sqlite:PATH?table=T.")
@RPC_OPTION
@DEPLOYMENTS_OPTION
@click.option("--workers", type=int, default=1, show_default=True, help="Prover processes.")
@click.option("--max-wait", "max_wait_s", type=float, default=30.0, show_default=True,
              help="K-slot circuits: seconds a partial pack waits for more postings before it is padded.")
@click.option("--poll", "poll_s", type=float, default=2.0, show_default=True, help="Seconds between idle passes.")
@click.option("--confirmations", type=int, default=0, show_default=True,
              help="Read events this many blocks behind the head (reorg margin).")
@click.option("--features-wait", "features_wait_s", type=float, default=60.0, show_default=True,
              help="Seconds a posting may wait for its feature row before it is reported as a mismatch.")
@click.option("--from-block", type=int, help="First block to read (default: the gate's deployment block).")
@click.option("--metrics-port", type=int, help="Serve Prometheus-style metrics on 127.0.0.1:PORT/metrics.")
@click.option("--once", is_flag=True, help="One pass (follow, match, prove, act), then exit.")
@click.option("--json", "as_json", is_flag=True, help="status: print JSON.")
def serve(args, circuit_dir, gate, features, rpc, deployments_dir, workers, max_wait_s, poll_s, confirmations,
          features_wait_s, from_block, metrics_port, once, as_json):
    """Prove and submit every posting a gate receives, until stopped (Ctrl-C or SIGTERM: clean stop).

    DIR keeps the node's state (block cursor, postings, job store, logs): restart it with the same DIR and
    it resumes. The sending key is $ZKINFER_PRIVATE_KEY (anvil's dev account on a local chain).
    `zkinfer serve status DIR` shows backlog, latency, throughput and failures, running or not.
    """
    from ..errors import UsageError
    from ..prover_node import NodeConfig, ProverNode, status

    if args[0] == "status":
        if len(args) != 2:
            raise UsageError("usage: zkinfer serve status DIR")
        st = status(args[1])
        echo_json(st) if as_json else echo_lines(status_lines(st))
        return
    if len(args) != 1:
        raise UsageError("usage: zkinfer serve DIR --features SOURCE [options] (or: zkinfer serve status DIR)")
    if not features:
        raise UsageError("--features is required: where the publisher writes each subject's raw features")
    name = gate
    if circuit_dir is None:
        if not name:
            raise UsageError("give --circuit DIR (the deployed circuit's build directory) or --gate NAME")
        circuit_dir = f"circuits/{name}"
    config = NodeConfig(circuit_dir=Path(circuit_dir), rpc_url=rpc_url(rpc), features=features, gate=name,
                        deployments_dir=deployments_dir, workers=workers, max_wait_s=max_wait_s, poll_s=poll_s,
                        confirmations=confirmations, features_wait_s=features_wait_s, from_block=from_block)
    node = ProverNode(args[0], config)
    _log_to_stderr()
    if once:
        node.open()
        try:
            r = node.step()
        finally:
            node.close()
        click.echo(f"new postings {r.new_postings}, matched {r.matched}, proved {r.proved_now}, acted {r.acted}")
        return
    server = None
    if metrics_port:
        from ..prover_node.metrics import serve_metrics

        node.dir.mkdir(parents=True, exist_ok=True)
        server = serve_metrics(node.dir, metrics_port)
    stop = threading.Event()

    def on_signal(signum, frame):
        if not stop.is_set():
            click.echo("stopping after the current step (again to force)", err=True)
            stop.set()
            node.stop(timeout=0)
        else:
            raise KeyboardInterrupt

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        node.run()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if server is not None:
            server.shutdown()
    click.echo("node stopped", err=True)


def status_lines(st: dict) -> list[str]:
    p, lat = st["postings"], st["latency_s"]
    lines = [f"{st['dir']}: {'running' if st['running'] else 'not running'}; {st['circuit']} on chain "
             f"{st['chain_id']}, gate {st['gate']}, cursor block {st['cursor_block']}"
             + ("; MODEL SUSPENDED on the gate (nothing is submitted)" if st["suspended"] else ""),
             f"postings: {', '.join(f'{k} {v}' for k, v in p.items() if v) or 'none yet'}; backlog {st['backlog']}",
             "latency (posting to action): " + (f"median {lat['median']:.1f} s, p90 {lat['p90']:.1f} s, max "
                                                 f"{lat['max']:.1f} s over {lat['n']}" if lat["n"] else "none yet")
             + f"; {st['acted_per_minute']:g} acted/min (last 10 min)"]
    lines += [f"  posting {f['id']} ({f['subject'][:10]}..{f['subject'][-6:]}): {f['state']}: {f['reason']}"
              for f in st["problems"][:10]]
    if st["last_error"]:
        lines.append(f"last error: {st['last_error']}")
    return lines


def _log_to_stderr() -> None:
    import logging

    logger = logging.getLogger("zkinfer.node")
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
