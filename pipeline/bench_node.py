"""`zkinfer bench --section node`: the prover node's latency and sustained rate on a local chain.

For each circuit (credit_risk at K = 1; the batching section's K = 16 circuit, packing with `--max-wait`):
a fresh anvil, the lending gate, the node running in this process (its provers are local processes), and
the publisher posting real borrowers:

* latency: postings sent one round at a time (one posting at K = 1; at K = 16 a full pack, then a partial
  one that waits `max_wait_s` and is padded), each timed from the publisher's posting receipt to the node's
  recorded action (wall clock) and by block timestamps (whole seconds);
* sustained: a backlog of postings posted at once, and how many per minute the node settles until the last
  one is acted on: the posting rate it keeps up with.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

NODE_LATENCY_ROUNDS = 3
NODE_BACKLOG = {1: 12, 16: 32}
K16_MAX_WAIT_S = 10.0
K16_PARTIAL = 4
WAIT_LIMIT_S = 3600
WIDE_TERMS = {"maxRateStepBps": 10_000}


def _say(progress, msg):
    if progress:
        progress(msg)


def bench_node(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> dict:
    from .bench import _zoo_circuit, build_batching_circuit

    out = {"k1": measure_node(_zoo_circuit(circuits_dir, "credit_risk", progress).dir, progress=progress)}
    m16, build = build_batching_circuit(circuits_dir, 16, progress)
    if m16 is None:
        out["k16"] = {"error": f"the K=16 circuit did not build (exit {build.returncode})", "peak_rss_mb":
                      getattr(build, "peak_rss_mb", None)}
    else:
        out["k16"] = measure_node(m16.dir, max_wait_s=K16_MAX_WAIT_S, progress=progress)
    return out


def measure_node(circuit_dir: str | Path, *, max_wait_s: float = 30.0, workers: int = 2,
                 progress: Callable | None = None) -> dict:
    from . import blinding, chain, layout, manifest
    from .demo import borrower_address
    from .node_demo import normal_borrowers
    from .prover_node import NodeConfig, ProverNode
    from .prover_node.publisher import FeaturePublisher

    m = manifest.load(circuit_dir)
    k = layout.slot_layout(m.circuit).count
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-node-") as tmp:
        work = Path(tmp)
        node_chain = chain.chain_up(state=work / "chain")
        node = None
        try:
            ddir = work / "deployments"
            chain.deploy(m.dir, node_chain.rpc_url, "lending", deployments_dir=ddir, terms=WIDE_TERMS)
            pub = FeaturePublisher(m.dir, node_chain.rpc_url, work / "feed.jsonl", deployments_dir=ddir)
            hashed = bool(m.circuit.get("blinding"))
            node = ProverNode(work / "node", NodeConfig(circuit_dir=m.dir, rpc_url=node_chain.rpc_url,
                                                        features=str(work / "feed.jsonl"), deployments_dir=ddir,
                                                        workers=workers, max_wait_s=max_wait_s, poll_s=0.2))
            node.start()
            rows = iter(normal_borrowers(4096, 4242))
            n_posted = 0

            def post(n: int) -> list[float]:
                nonlocal n_posted
                t = []
                for _ in range(n):
                    who = borrower_address(f"bench-{n_posted}")
                    n_posted += 1
                    pub.publish(who, [float(v) for v in next(rows)], blinding.new_salt() if hashed else None)
                    t.append(time.monotonic())
                return t

            def wait_acted(total: int) -> float:
                deadline = time.monotonic() + WAIT_LIMIT_S
                while _acted(work / "node") < total:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"node acted on {_acted(work / 'node')} of {total}")
                    time.sleep(0.1)
                return time.monotonic()

            result = {"slots": k, "workers": workers, "max_wait_s": max_wait_s}
            wall = []
            rounds = [k] * NODE_LATENCY_ROUNDS if k == 1 else [k, K16_PARTIAL if k > K16_PARTIAL else 1]
            for n in rounds:
                _say(progress, f"[node] K={k}: latency round of {n} posting(s)")
                sent = post(n)
                done = wait_acted(n_posted)
                wall.append({"postings": n, "latency_s": [round(done - s, 2) for s in sent]})
            result["latency"] = wall
            result["latency_full_median_s"] = statistics.median(
                v for r in wall if r["postings"] == k for v in r["latency_s"])
            if k > 1:
                result["latency_partial_median_s"] = statistics.median(wall[-1]["latency_s"])
            backlog = NODE_BACKLOG.get(k, 2 * k)
            _say(progress, f"[node] K={k}: sustained, {backlog} postings at once")
            t0 = time.monotonic()
            before = n_posted
            post(backlog)
            t1 = wait_acted(n_posted)
            result["sustained"] = {"postings": n_posted - before, "seconds": round(t1 - t0, 1),
                                   "postings_per_minute": round(60 * (n_posted - before) / (t1 - t0), 2)}
            result["chain_latency_s"] = _chain_latencies(work / "node")
            return result
        finally:
            if node is not None:
                node.stop(timeout=120)
            chain.chain_down(state=work / "chain")


def _acted(node_dir: Path) -> int:
    from .prover_node import NodeStore

    if not (node_dir / "node.sqlite").exists():
        return 0
    with NodeStore(node_dir) as s:
        return s.counts()["acted"]


def _chain_latencies(node_dir: Path) -> dict:
    from .prover_node import NodeStore

    with NodeStore(node_dir) as s:
        lat = s.latencies()
    return {"n": len(lat), "median": statistics.median(lat) if lat else None, "max": max(lat) if lat else None}
