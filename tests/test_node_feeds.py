"""The prover node's feature sources, store and status text, without a chain (the node itself: tests/onchain)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pipeline.errors import UsageError
from pipeline.prover_node import NodeStore, open_source, status, subject_word
from pipeline.prover_node.metrics import exposition

ALICE = "0x" + "ab" * 20
ALICE_WORD = "0x" + "00" * 12 + "ab" * 20


def test_subjects_are_gate_words():
    assert subject_word(ALICE) == ALICE_WORD
    assert subject_word(ALICE.upper().replace("0X", "0x")) == ALICE_WORD
    assert subject_word(ALICE_WORD) == ALICE_WORD
    assert subject_word(7) == "0x" + "0" * 63 + "7"
    for bad in ("0x1234", "alice", None, -1, True):
        with pytest.raises(ValueError):
            subject_word(bad)


def test_jsonl_rows_newest_first_and_bad_lines_named(tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join([
        json.dumps({"subject": ALICE, "features": [1, 2]}),
        "{not json",
        json.dumps({"subject": ALICE, "input_data": [[3.0], [4.0]], "salt": "0x" + "1" * 32}),
        json.dumps({"subject": ALICE, "features": [1, "x"]}),
        json.dumps({"subject": "nobody", "features": [1]}),
        json.dumps({"subject": ALICE, "features": [float("nan")]}),
    ]) + "\n")
    src = open_source(feed)
    rows = src.candidates(ALICE_WORD)
    assert [r.features for r in rows] == [[3.0, 4.0], [1.0, 2.0]]
    assert rows[0].salt == "0x" + "1" * 32 and rows[0].where == "feed.jsonl line 3"
    assert src.candidates("0x" + "00" * 32) == []
    problems = " | ".join(src.problems)
    for expected in ("feed.jsonl line 2: not valid JSON", "line 4: a feature is not a number", "line 5: subject",
                     "line 6: every feature must be a finite number"):
        assert expected in problems
    # The publisher appends: the source reads the file again when it changed.
    with open(feed, "a") as f:
        f.write(json.dumps({"subject": ALICE, "features": [9, 9]}) + "\n")
    assert src.candidates(ALICE_WORD)[0].features == [9.0, 9.0]


def test_csv_and_folder_sources(tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "a.csv").write_text(f"subject,income,dti\n{ALICE},1.5,0.25\n{ALICE},2\n")
    (folder / "b.jsonl").write_text(json.dumps({"subject": ALICE, "features": [7, 8]}) + "\n")
    src = open_source(folder)
    rows = src.candidates(ALICE_WORD)
    assert [r.features for r in rows] == [[7.0, 8.0], [1.5, 0.25]]  # later files win ties
    assert any("a.csv line 3: 2 cells for 3 columns" in p for p in src.problems)


def test_sqlite_source(tmp_path):
    db = tmp_path / "feed.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE features (subject TEXT, features TEXT, salt TEXT)")
        c.execute("INSERT INTO features VALUES (?, ?, NULL)", (ALICE, "[1, 2]"))
        c.execute("INSERT INTO features VALUES (?, ?, ?)", (ALICE_WORD, "[3, 4]", "0x" + "2" * 32))
    rows = open_source(f"sqlite:{db}?table=features").candidates(ALICE_WORD)
    assert [r.features for r in rows] == [[3.0, 4.0], [1.0, 2.0]] and rows[0].where == "features row 2"
    with pytest.raises(UsageError, match="needs columns subject and features"):
        open_source(f"sqlite:{db}?table=other")
    with pytest.raises(UsageError, match="no SQLite database"):
        open_source(f"sqlite:{tmp_path / 'missing.db'}")
    with pytest.raises(UsageError, match="give a .jsonl or .csv file"):
        open_source(tmp_path / "feed.txt")


def test_store_keeps_each_posting_once_and_status_reports_it(tmp_path):
    posting = {"tx_hash": "0x01", "log_index": 0, "block_number": 5, "subject": ALICE_WORD,
               "commitment": "0x" + "cd" * 32, "posted_at": 100, "publisher": ALICE}
    with NodeStore(tmp_path, create=True) as s:
        assert s.add_postings([posting], 5, "0xaa") == 1
        assert s.add_postings([posting], 6, "0xbb") == 0  # the same event read again (a reorg rewind)
        assert s.cursor() == (6, "0xbb")
        [p] = s.postings("waiting")
        s.update(p.id, "acted", submit_tx="0x02", gas_used=1000, acted_at=104, effects=[{"event": "RateUpdated"}])
        s.add_postings([{**posting, "tx_hash": "0x03"}], 7, "0xcc")
        [q] = s.postings("waiting")
        s.update(q.id, "mismatch", reason="no feature row hashes to the posted commitment")
        s.incident("rpc", "connection refused; retrying in 2 s")
    st = status(tmp_path)
    assert st["postings"]["acted"] == 1 and st["postings"]["mismatch"] == 1 and st["backlog"] == 0
    assert st["latency_s"] == {"n": 1, "median": 4, "p90": 4, "max": 4}
    assert st["problems"][0]["reason"].startswith("no feature row") and st["incident_counts"] == {"rpc": 1}
    text = exposition(st)
    assert 'zkinfer_node_postings{state="acted"} 1' in text and 'zkinfer_node_latency_seconds{quantile="0.5"} 4' in text
    assert 'zkinfer_node_incidents_total{kind="rpc"} 1' in text
    with pytest.raises(UsageError, match="not a prover node directory"):
        status(tmp_path / "elsewhere")


def test_metrics_are_served_on_loopback(tmp_path):
    import urllib.error
    import urllib.request

    from pipeline.chain import _free_port
    from pipeline.prover_node.metrics import serve_metrics

    with NodeStore(tmp_path, create=True) as s:
        s.incident("start", "node started")
    port = _free_port()
    server = serve_metrics(tmp_path, port)
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            body = r.read().decode()
            assert r.headers["Content-Type"].startswith("text/plain")
        assert "zkinfer_node_backlog 0" in body and 'zkinfer_node_incidents_total{kind="start"} 1' in body
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("args", "message"), [
    (["serve", "DIR"], "--features is required"),
    (["serve", "DIR", "--features", "f.jsonl"], "give --circuit DIR"),
    (["serve", "status"], "usage: zkinfer serve status DIR"),
    (["serve", "status", "nowhere"], "not a prover node directory"),
    (["serve", "DIR", "--features", "f.jsonl", "--circuit", "nowhere", "--rpc", "http://127.0.0.1:9"], "nowhere"),
])
def test_serve_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=tmp_path, capture_output=True, text=True,
                       env=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
