"""`make node-demo`: the prover node keeping a local lending market's rates proven, unattended.

1. build the `credit_risk` circuit (reused when built), start anvil, deploy the lending gate;
2. start `zkinfer serve` as its own process; the feature publisher writes each borrower's features to the
   feed and posts their commitment, and the node proves and submits them with no manual step;
3. the node is killed (SIGKILL) mid-batch and started again on the same directory: nothing lost or doubled;
4. `zkinfer monitor` on the node's normal batch, then on a batch from another regime (a credit shock: debt
   and utilisation up, incomes down), which crosses the drift threshold and trips the breaker: the guardian's
   suspension is sent on chain;
5. further postings are held by the node (the gate would refuse them), and the node is stopped (SIGTERM).

Everything lands under `runs/node-demo/` (summary.json, the node's directory, drift reports); each run starts
a fresh chain and node. The drift windows here are small (a demo proves a few dozen borrowers, not
thousands), so the demo sets its PSI threshold for its window size (see `DEMO_THRESHOLDS`) rather than the
defaults (0.25, over 100 rows at least).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import ZkinferError

NORMAL_BORROWERS, SHOCKED_BORROWERS, HELD_BORROWERS = 12, 12, 3
NORMAL_SEED, SHOCK_SEED = 2031, 2032
# The windows are 12 rows, judged on 2 merged bins per feature (see pipeline.monitor.drift): in-distribution
# PSI then averages about 1 * (1/12 + 1/64) = 0.1, with a chi-square's long tail, so the default 0.25 would
# be crossed by chance too often over 9 values; a population entirely in one half of a feature's
# calibration range gives about 4.6. The threshold sits between.
DEMO_THRESHOLDS = {"psi_max": 1.0, "output_psi_max": 1.0, "refused_max": 0.05}
DEMO_TERMS = {"maxRateStepBps": 1_000}
WAIT_S = 900


def shocked_borrowers(n: int, seed: int):
    """credit_risk's borrowers in a credit shock: incomes down 40%, debt-to-income and utilisation near their
    caps, more delinquencies. Encoded like the model's own data (so within its declared input range)."""
    from . import zoo

    mod = zoo.load("credit_risk").module
    raw = mod.generate_borrowers(n, seed)
    rng = np.random.default_rng(seed)
    raw["annual_income"] = raw["annual_income"] * 0.6
    raw["debt_to_income"] = np.minimum(0.9, 0.55 + 0.35 * rng.random(n))
    raw["credit_utilization"] = rng.beta(8.0, 1.2, n)
    raw["delinquencies_2y"] = raw["delinquencies_2y"] + rng.poisson(2.0, n)
    return mod.encode(raw)


def normal_borrowers(n: int, seed: int):
    from . import zoo

    features, _ = zoo.load("credit_risk").module.generate_data(n, seed)
    return features


def run_node_demo(work_dir: str | os.PathLike = "runs/node-demo", circuits_dir: str | os.PathLike = "circuits",
                  workers: int = 2, say: Callable[[str], None] = print) -> dict:
    from . import chain
    from .demo import borrower_address
    from .monitor import Thresholds, Trip, monitor
    from .prover_node import NodeStore
    from .prover_node.publisher import FeaturePublisher
    from .zoo import build_zoo_model

    work = Path(work_dir)
    for stale in ("node", "feed.jsonl", "deployments", "chain", "monitor-normal", "monitor-shock"):
        p = work / stale
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    say("== 1. circuit credit_risk, a local chain, the lending gate")
    m = build_zoo_model("credit_risk", Path(circuits_dir) / "credit_risk", progress=lambda s: say(f"   {s}")).manifest
    node_chain = chain.chain_up(state=work / "chain")
    proc = None
    try:
        rpc, ddir = node_chain.rpc_url, work / "deployments"
        d = chain.deploy(m.dir, rpc, "lending", deployments_dir=ddir, terms=DEMO_TERMS)
        say(f"   {rpc}: gate {d.gate.address}, model id {d.model_id}")
        pub = FeaturePublisher(m.dir, rpc, work / "feed.jsonl", deployments_dir=ddir)
        node_dir = work / "node"
        cmd = [sys.executable, "-m", "pipeline.cli", "serve", str(node_dir), "--circuit", str(m.dir), "--features",
               str(work / "feed.jsonl"), "--rpc", rpc, "--deployments", str(ddir), "--poll", "0.5",
               "--workers", str(workers)]
        log = open(work / "node.out", "ab")

        def start():
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

        def acted() -> int:
            if not (node_dir / "node.sqlite").exists():
                return 0
            with NodeStore(node_dir) as s:
                return s.counts()["acted"]

        def wait_for(n: int, what: str) -> None:
            deadline = time.monotonic() + WAIT_S
            while acted() < n:
                if proc.poll() is not None:
                    raise ZkinferError(f"the node exited ({proc.returncode}) {what}: see {work / 'node.out'}")
                if time.monotonic() > deadline:
                    raise ZkinferError(f"the node acted on {acted()} of {n} postings in {WAIT_S} s ({what})")
                time.sleep(0.5)

        say(f"\n== 2. `zkinfer serve` started; the publisher posts {NORMAL_BORROWERS} borrowers")
        proc = start()
        names = [f"borrower-{i}" for i in range(NORMAL_BORROWERS + SHOCKED_BORROWERS + HELD_BORROWERS)]
        who = [borrower_address(n) for n in names]
        for w, f in zip(who, normal_borrowers(NORMAL_BORROWERS, NORMAL_SEED), strict=False):
            pub.publish(w, [float(v) for v in f])
        wait_for(NORMAL_BORROWERS // 3, "on the first postings")
        say(f"\n== 3. the node is killed (SIGKILL) after {acted()} action(s), and started again")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        restarts = 1
        proc = start()
        wait_for(NORMAL_BORROWERS, "after the restart")
        say(f"   all {NORMAL_BORROWERS} acted on")

        say("\n== 4. drift: the normal batch, then a credit shock")
        thresholds = Thresholds(**DEMO_THRESHOLDS, min_rows=NORMAL_BORROWERS)
        normal = monitor(node_dir, window=NORMAL_BORROWERS, thresholds=thresholds, out=work / "monitor-normal")
        say(f"   normal batch: {normal.verdict}")
        for w, f in zip(who[NORMAL_BORROWERS:], shocked_borrowers(SHOCKED_BORROWERS, SHOCK_SEED), strict=False):
            pub.publish(w, [float(v) for v in f])
        wait_for(NORMAL_BORROWERS + SHOCKED_BORROWERS, "on the shocked batch")
        shock = monitor(node_dir, window=SHOCKED_BORROWERS, thresholds=thresholds, out=work / "monitor-shock",
                        trip=Trip(rpc_url=rpc, deployments_dir=ddir))
        trip = shock.data.get("trip") or {}
        say(f"   shocked batch: {shock.verdict} ({', '.join(shock.crossed[:4])}); breaker tripped: "
            f"{bool(trip.get('sent'))} {trip.get('tx_hash', '')}")
        suspended_block = pub.chain.w3.eth.block_number  # postings after this one were made while suspended

        say(f"\n== 5. {HELD_BORROWERS} more postings while the model is suspended")
        for w, f in zip(who[NORMAL_BORROWERS + SHOCKED_BORROWERS:], normal_borrowers(HELD_BORROWERS, NORMAL_SEED + 9),
                        strict=False):
            pub.publish(w, [float(v) for v in f])
        held_since = time.monotonic()
        while time.monotonic() - held_since < 20:  # long enough for the node to prove them and hold them
            time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        proc = None
        summary = _summary(pub, node_dir, who, restarts, trip, suspended_block, normal, shock)
        say(f"   held: {summary['held_while_suspended']} of {HELD_BORROWERS}; node stopped")
    finally:
        if proc is not None:
            proc.kill()
        chain.chain_down(state=work / "chain")
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"\n{json.dumps({k: summary[k] for k in SUMMARY_KEYS})}\n(all of it: {work / 'summary.json'})")
    return summary


SUMMARY_KEYS = ("postings", "actions", "lost", "doubled", "restarts", "breaker_tripped", "latency_s")


def _summary(pub, node_dir: Path, who: list[str], restarts: int, trip: dict, suspended_block: int,
             normal, shock) -> dict:
    """What happened, from the chain's own events (postings, actions per posting) and the node's store."""
    from .prover_node import NodeStore

    gate = pub.handle.gate
    posted = gate.events.FeaturesPosted().get_logs(from_block=0)
    updates = gate.events.RateUpdated().get_logs(from_block=0)
    events = sorted([(e["blockNumber"], e["logIndex"], "post", "0x" + bytes(e["args"]["subject"]).hex()[-40:])
                     for e in posted] +
                    [(e["blockNumber"], e["logIndex"], "act", e["args"]["borrower"].lower()[2:]) for e in updates])
    acted_per_posting: dict[tuple, int] = {}
    open_posting: dict[str, tuple] = {}
    for block, idx, kind, subject in events:
        key = subject[-40:]
        if kind == "post":
            open_posting[key] = (block, idx)
            acted_per_posting[(key, block, idx)] = 0
        elif key in open_posting:
            acted_per_posting[(key, *open_posting[key])] += 1
    active = {k: v for k, v in acted_per_posting.items() if k[1] <= suspended_block}
    with NodeStore(node_dir) as s:
        rows = s.all_postings()
        latencies = s.latencies()
    return {
        "postings": len(posted),
        "actions": sum(r["state"] == "acted" for r in rows),
        "lost": sum(1 for n in active.values() if n == 0),
        "doubled": sum(1 for n in acted_per_posting.values() if n > 1),
        "restarts": restarts,
        "breaker_tripped": bool(trip.get("sent")),
        "latency_s": statistics.median(latencies) if latencies else None,
        "held_while_suspended": sum(1 for k, n in acted_per_posting.items() if k[1] > suspended_block and n == 0),
        "breaker_tx": trip.get("tx_hash"),
        "drift": {"normal": {"verdict": normal.verdict, "crossed": normal.crossed},
                  "shock": {"verdict": shock.verdict, "crossed": shock.crossed}},
        "node_states": {state: sum(r["state"] == state for r in rows) for state in sorted({r["state"] for r in rows})},
        "gas_per_action": statistics.median([r["gas_used"] for r in rows if r["gas_used"]]) if rows else None,
    }
