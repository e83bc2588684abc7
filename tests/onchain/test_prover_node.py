"""The prover node on a real anvil with real proofs: postings in, proven actions out, through kills, a
competing prover, an RPC outage, a commitment mismatch and partial packs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from onchain_helpers import LENDING_TERMS, address

from pipeline import chain
from pipeline.prover_node import NodeConfig, NodeStore, ProverNode, status
from pipeline.prover_node.publisher import FeaturePublisher

pytestmark = pytest.mark.slow

FEATURES = [[0.0, 0.0, 0.0, 0.0], [0.25, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [-0.5, 0.0, 0.25, 0.0],
            [1.0, -0.5, 0.0, 0.5], [0.0, 1.0, 0.0, -1.0]]
WIDE_TERMS = {**LENDING_TERMS, "maxRateStepBps": 10_000}  # every proven rate lands at once: easy to check


def _deploy(anvil, circuit, root: Path):
    ddir = root / "deployments"
    chain.deploy(circuit.dir, anvil.rpc_url, "lending", deployments_dir=ddir, terms=WIDE_TERMS)
    return ddir


def _node(circuit, anvil, ddir, root: Path, rpc_url: str | None = None, **options) -> ProverNode:
    config = NodeConfig(circuit_dir=circuit.dir, rpc_url=rpc_url or anvil.rpc_url, features=str(root / "feed.jsonl"),
                        deployments_dir=ddir, poll_s=0.2, features_wait_s=options.pop("features_wait_s", 30),
                        **options)
    return ProverNode(root / "node", config)


def _until(node: ProverNode, done, passes: int = 40):
    for _ in range(passes):
        node.step()
        if done():
            return
    raise AssertionError(f"not done after {passes} passes: {node.store.counts()}")


def _rate(pub: FeaturePublisher, who: str) -> int:
    return pub.handle.gate.functions.rateOf(who).call()


@pytest.fixture
def lending(anvil, circuits, tmp_path):
    circuit = circuits["credit"]
    ddir = _deploy(anvil, circuit, tmp_path)
    pub = FeaturePublisher(circuit.dir, anvil.rpc_url, tmp_path / "feed.jsonl", deployments_dir=ddir)
    return circuit, ddir, pub


def test_node_proves_and_acts_on_every_posting_once(anvil, lending, tmp_path):
    circuit, ddir, pub = lending
    borrowers = [address(f"node-{i}") for i in range(3)]
    for who, f in zip(borrowers, FEATURES, strict=False):
        pub.publish(who, f)
    node = _node(circuit, anvil, ddir, tmp_path)
    node.open()
    try:
        _until(node, lambda: node.store.counts()["acted"] == 3)
        # A second round for one borrower, with the same features: a new posting, acted on with the proof
        # already made (no new proof: the job store has it).
        pub.publish(borrowers[0], FEATURES[0])
        _until(node, lambda: node.store.counts()["acted"] == 4)
        counts = node.store.counts()
        rows = node.store.all_postings()
    finally:
        node.close()
    assert counts["acted"] == 4 and sum(counts.values()) == 4
    rates = {w: _rate(pub, w) for w in borrowers}
    # The credit stand-in: PD = sigmoid(x0 + x1/2 - x2/2 + x3/4); rate = 200 + 1500 PD (bp, rounded down).
    assert rates[borrowers[0]] == 200 + 1500 // 2
    assert all(r["submit_tx"] and r["gas_used"] > 0 and r["acted_at"] >= r["posted_at"] for r in rows)
    st = status(tmp_path / "node")
    assert st["backlog"] == 0 and st["latency_s"]["n"] == 4 and st["postings"]["acted"] == 4


def test_mismatched_commitment_is_reported_and_never_proven(anvil, lending, tmp_path):
    circuit, ddir, pub = lending
    honest, liar = address("node-honest"), address("node-liar")
    pub.publish(honest, FEATURES[1])
    pub.write_row(liar, FEATURES[2])
    pub.post(liar, pub.committer(FEATURES[3]))  # the posting commits to other features than the row holds
    node = _node(circuit, anvil, ddir, tmp_path, features_wait_s=0)
    node.open()
    try:
        _until(node, lambda: node.store.counts()["acted"] == 1 and node.store.counts()["mismatch"] == 1)
        [bad] = [p for p in node.store.all_postings() if p["state"] == "mismatch"]
    finally:
        node.close()
    assert bad["subject"].endswith(liar[2:].lower())
    assert "hashes to another commitment" in bad["reason"] and bad["row_json"] is None
    from pipeline.jobs import JobStore

    with JobStore(tmp_path / "node" / "jobs") as js:
        assert sum(js.counts().values()) == 1  # only the honest posting's features ever reached a prover
    assert _rate(pub, liar) == LENDING_TERMS["initialRateBps"]


def test_a_competing_prover_first_counts_as_done(anvil, lending, tmp_path):
    circuit, ddir, pub = lending
    who = address("node-race")
    pub.publish(who, FEATURES[4])
    node = _node(circuit, anvil, ddir, tmp_path)
    node.open()
    try:
        node._connect()
        node._head = node.handle.chain.w3.eth.block_number
        node._follow(), node._match(), node._prove()  # proved, not yet submitted
        [p] = node.store.postings("queued")
        # Another prover, with its own proof of the same features, acts first.
        proof = circuit.prove([FEATURES[4]], tmp_path / "rival.json")
        chain.submit([proof], anvil.rpc_url, subjects=[who], deployments_dir=ddir)
        _until(node, lambda: not node.store.postings("queued"))
        after = node.store.posting(p.id)
    finally:
        node.close()
    assert after.state == "elsewhere" and after.submit_tx is None
    assert status(tmp_path / "node")["postings"]["failed"] == 0


def test_k_slot_packs_fill_then_pad_after_max_wait(anvil, circuits, tmp_path):
    circuit = circuits["credit_k2"]
    ddir = _deploy(anvil, circuit, tmp_path)
    pub = FeaturePublisher(circuit.dir, anvil.rpc_url, tmp_path / "feed.jsonl", deployments_dir=ddir)
    borrowers = [address(f"node-k2-{i}") for i in range(3)]
    for who, f in zip(borrowers, FEATURES, strict=False):
        pub.publish(who, f)
    node = _node(circuit, anvil, ddir, tmp_path, max_wait_s=3600)
    node.open()
    try:
        _until(node, lambda: node.store.counts()["acted"] == 2)
        for _ in range(3):  # the third borrower's partial pack waits for a partner...
            node.step()
        assert node.store.counts()["acted"] == 2
        node.config.max_wait_s = 0  # ...until it has waited max_wait: then it is padded and sent
        _until(node, lambda: node.store.counts()["acted"] == 3)
        txs = [p["submit_tx"] for p in node.store.all_postings()]
    finally:
        node.close()
    assert len(set(txs)) == 2  # one transaction for the full pack, one for the padded one
    assert _rate(pub, borrowers[0]) == 200 + 1500 // 2


class _Relay:
    """A TCP relay to anvil that can go down and come back on the same port: an RPC outage."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = chain._free_port()
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []
        self.up()

    def up(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self._server = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self):
        """Stop listening and cut every connection (web3 keeps its HTTP connection alive)."""
        self._cut(self._server)  # shutdown first: close() alone leaves a socket blocked in accept() listening
        self._server = None
        for c in self._open:
            self._cut(c)
        self._open.clear()

    @staticmethod
    def _cut(s):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_an_rpc_outage_is_retried_and_reported(anvil, lending, tmp_path):
    circuit, ddir, pub = lending
    relay = _Relay(int(anvil.rpc_url.rsplit(":", 1)[1]))
    node = _node(circuit, anvil, ddir, tmp_path, rpc_url=f"http://127.0.0.1:{relay.port}", max_backoff_s=0.5)
    node.start()
    try:
        time.sleep(1.0)
        relay.down()
        who = address("node-outage")
        pub.publish(who, FEATURES[5])  # posted while the node cannot reach the chain
        time.sleep(8)  # longer than web3's own retries (5, backing off from 0.125 s): the node sees it
        relay.up()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and status(tmp_path / "node")["postings"]["acted"] < 1:
            time.sleep(0.5)
    finally:
        node.stop()
    st = status(tmp_path / "node")
    assert st["postings"]["acted"] == 1, st
    assert st["incident_counts"].get("rpc", 0) >= 1
    assert any("retrying" in i["message"] for i in st["incidents"] if i["kind"] == "rpc")


def test_killed_node_resumes_without_losing_or_doubling(anvil, lending, tmp_path):
    """`zkinfer serve` as its own process, SIGKILLed while it works, then started again."""
    circuit, ddir, pub = lending
    borrowers = [address(f"node-kill-{i}") for i in range(4)]
    for who, f in zip(borrowers, FEATURES, strict=False):
        pub.publish(who, f)
    cmd = [sys.executable, "-m", "pipeline.cli", "serve", str(tmp_path / "node"), "--circuit", str(circuit.dir),
           "--features", str(tmp_path / "feed.jsonl"), "--rpc", anvil.rpc_url, "--deployments", str(ddir),
           "--poll", "0.2"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store_path = tmp_path / "node" / "node.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill it once it has acted on some postings but not all
        if store_path.exists():
            with NodeStore(tmp_path / "node") as s:
                if s.counts()["acted"] >= 1:
                    break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    second = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and status(tmp_path / "node")["postings"]["acted"] < 4:
            time.sleep(0.3)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err.decode()[-2000:]
    st = status(tmp_path / "node")
    assert st["postings"]["acted"] == 4 and st["backlog"] == 0, st
    # Each posting acted on once, on chain: one RateUpdated per borrower.
    updates = pub.handle.gate.events.RateUpdated().get_logs(from_block=0)
    ours = [e for e in updates if e["args"]["borrower"] in borrowers]
    assert sorted(e["args"]["borrower"] for e in ours) == sorted(borrowers)
    assert not st["running"]


def test_a_suspended_model_is_held_then_resumed(anvil, lending, tmp_path):
    circuit, ddir, pub = lending
    who = address("node-suspended")
    chain.suspend_model(circuit.name, anvil.rpc_url, deployments_dir=ddir)
    pub.publish(who, FEATURES[2])
    node = _node(circuit, anvil, ddir, tmp_path)
    node.open()
    try:
        for _ in range(4):
            node.step()
        held = node.store.counts()
        assert node.suspended and status(tmp_path / "node")["suspended"]
        chain.resume_model(circuit.name, anvil.rpc_url, deployments_dir=ddir)
        _until(node, lambda: node.store.counts()["acted"] == 1)
    finally:
        node.close()
    assert held["queued"] == 1 and held["acted"] == 0 and held["submitting"] == 0
    assert _rate(pub, who) != LENDING_TERMS["initialRateBps"]
