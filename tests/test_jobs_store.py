"""Batch jobs without proving: input rows -> jobs, the SQLite store, crash recovery, status and export."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from pipeline import jobs
from pipeline import manifest as manifest_mod
from pipeline.artifacts import sha256_file
from pipeline.errors import ArtifactMismatchError, UsageError
from pipeline.inputs import check_single, parse_input_data
from pipeline.jobs import node_cache
from pipeline.jobs.runner import _recover
from pipeline.jobs.sources import JobSpec
from pipeline.jobs.store import JobStore, OutDirLock
from pipeline.prove import input_digest

M1, M2 = "a" * 64, "b" * 64
ROW = [0.5, -1.0, 2.0, 0.0, 1.5, 0.25, -0.75, 1.0]


def parse8(obj, where):
    """What Prover.parse_input does for a circuit with one [1, 8] input."""
    flat = parse_input_data(obj, where, [8])
    check_single(flat, [8], [(1, 8)], where)
    return flat


def read(path, manifest=M1):
    return list(jobs.read_inputs(path, manifest, parse8))


def test_job_ids_come_from_circuit_and_content_not_label_or_form(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join([
        json.dumps({"id": "alice", "input_data": [ROW]}),
        "",
        json.dumps({"input_data": ROW}),                       # a bare flat list: same input
        json.dumps({"id": 7, "input_data": [[int(v) if v == int(v) else v for v in ROW]]}),  # 2 vs 2.0
        json.dumps({"id": "bob", "input_data": [[*ROW[:7], 9.0]]}),
    ]) + "\n")
    specs = read(p)
    assert [s.where for s in specs] == ["in.jsonl line 1", "in.jsonl line 3", "in.jsonl line 4", "in.jsonl line 5"]
    assert [s.label for s in specs] == ["alice", None, "7", "bob"]
    assert specs[0].id == specs[1].id == specs[2].id != specs[3].id
    assert specs[0].id == jobs.job_id(M1, input_digest([ROW])) and len(specs[0].id) == 32
    assert specs[0].input_sha256 == input_digest([ROW])  # what proof files carry as zkinfer.input_sha256
    assert read(p, M2)[0].id != specs[0].id  # another circuit version: another job


def test_bad_jsonl_rows_are_failed_jobs_naming_file_and_line(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join([
        json.dumps({"input_data": [ROW]}),
        json.dumps({"id": "short", "input_data": [ROW[:7]]}),
        '{"id": "nan", "input_data": [[NaN, 1, 2, 3, 4, 5, 6, 7]]}',
        json.dumps({"id": "str", "input_data": [[1, 2, 3, "x", 5, 6, 7, 8]]}),
        '{"input_data": [[1, 2',
        json.dumps({"id": {"a": 1}, "input_data": [ROW]}),
        json.dumps([1, 2, 3]),
    ]) + "\n")
    good, *bad = read(p)
    assert good.error is None
    assert all(s.input_data is None and s.error.startswith(f"in.jsonl line {i}") for i, s in enumerate(bad, start=2))
    assert "input 0 has 7 values; the circuit expects shape [1, 8]" in bad[0].error
    assert "not a finite number" in bad[1].error
    assert 'expected a number, got "x"' in bad[2].error
    assert "not valid JSON" in bad[3].error
    assert '"id" must be a string or an integer' in bad[4].error
    assert "input_data" in bad[5].error
    assert [s.label for s in bad[:3]] == ["short", "nan", "str"]
    assert len({s.id for s in bad}) == len(bad)
    assert read(p)[1].id == bad[0].id  # resubmitting the same bad row does not make a new job


def test_csv_rows_with_label_column_and_per_row_failures(tmp_path):
    names = [f"f{i}" for i in range(8)]
    p = tmp_path / "in.csv"
    p.write_text("\n".join([
        ",".join(["id", *names]),
        ",".join(["carol", *map(str, ROW)]),
        ",".join(["dave", *map(str, ROW[:7])]),
        ",".join(["erin", "abc", *map(str, ROW[1:])]),
        ",".join(["frank", "nan", *map(str, ROW[1:])]),
        ",".join(["gina", "", *map(str, ROW[1:])]),
        "",
        ",".join(["", *map(str, ROW)]),
    ]) + "\n")
    carol, dave, erin, frank, gina, unlabeled = read(p)
    jsonl = tmp_path / "same.jsonl"
    jsonl.write_text(json.dumps({"input_data": [ROW]}) + "\n")
    assert carol.id == unlabeled.id == read(jsonl)[0].id and carol.label == "carol" and unlabeled.label is None
    assert dave.error == "in.csv line 3: 7 values, the header has 8 feature columns"
    assert erin.error == "in.csv line 4 column 'f0': 'abc' is not a number"
    assert frank.error == "in.csv line 5 column 'f0': nan is not a finite number"
    assert gina.error == "in.csv line 6 column 'f0': '' is not a number"
    assert unlabeled.where == "in.csv line 8"


def test_unreadable_inputs_are_usage_errors(tmp_path):
    cases = {
        "missing.jsonl": None,
        "rows.txt": "1,2\n",
        "empty.csv": "",
        "wide.csv": ",".join(f"f{i}" for i in range(9)) + "\n",
        "latin1.jsonl": b'\xff\xfe{"input_data": [[1]]}\n',  # not text from its first line: not an inputs file
    }
    for name, content in cases.items():
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif content is not None:
            p.write_text(content)
        with pytest.raises(UsageError) as e:
            read(p)
        assert name in e.value.message
    with pytest.raises(UsageError, match="9 feature columns do not fit the circuit"):
        read(tmp_path / "wide.csv")
    with pytest.raises(UsageError, match="is a directory"):
        read(tmp_path)


def _spec(row, label=None, where="in.jsonl line 1"):
    digest = input_digest([row])
    return JobSpec(id=jobs.job_id(M1, digest), where=where, label=label, input_data=[row], input_sha256=digest)


def test_store_dedupes_keeps_every_label_and_moves_states(tmp_path):
    rows = [[float(i)] * 8 for i in range(3)]
    bad = JobSpec(id="f" * 32, where="in.jsonl line 9", error="in.jsonl line 9: not valid JSON")
    with JobStore(tmp_path, create=True) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.bind_circuit(M1, "tiny", "/circuits/tiny")
        assert store.add([_spec(rows[0], "alice"), _spec(rows[1]), _spec(rows[2]), bad]) == (4, 0)
        assert store.add([_spec(rows[0], "alice-again", "b.jsonl line 1"), _spec(rows[1])]) == (0, 2)
        assert store.counts() == {"queued": 3, "running": 0, "proved": 0, "failed": 1}
        a, b, c = store.ids("queued")
        assert store.job(a).input_data == [rows[0]]

        run = store.start_run("local", 2)
        store.mark_running(a, run, "local")
        store.mark_running(b, run, "local")
        store.mark_proved(a, f"proofs/{a}.json", [[0.5]], 1.0, "host:1", run)
        store.mark_failed(c, "in.jsonl line 3: outside the calibrated range")
        assert store.requeue_running("its run died") == 1
        assert store.job(b).state == "queued" and store.job(b).attempts == 1
        assert store.requeue_failed() == 1  # the range failure; the bad JSON row cannot be retried
        assert store.counts() == {"queued": 2, "running": 0, "proved": 1, "failed": 1}
        assert [(r["id"], r["label"]) for r in store.proved_rows()] == [(a, "alice"), (a, "alice-again")]

        with pytest.raises(UsageError, match="use a separate --out directory per circuit version"):
            store.bind_circuit(M2, "tiny", "/circuits/tiny-v2")


def test_one_coordinator_per_outdir(tmp_path):
    with OutDirLock(tmp_path):
        with pytest.raises(UsageError, match=rf"in use by another `zkinfer batch` \(pid {os.getpid()} on "):
            with OutDirLock(tmp_path):
                pass
    with OutDirLock(tmp_path):  # released when its holder let go
        pass


def _fake_proof(job_id, input_sha256, manifest=M1):
    return {"instances": [["00" * 32]], "hex_proof": "0x00", "proof": [0], "outputs": [[0.5]],
            "zkinfer": {"circuit_id": manifest, "input_sha256": input_sha256, "job_id": job_id, "prove_s": 1.0}}


def test_recovery_requeues_adopts_and_cleans(tmp_path):
    rows = [[float(i)] * 8 for i in range(5)]
    specs = [_spec(r) for r in rows]
    with JobStore(tmp_path, create=True) as store:
        store.add(specs)
        run = store.start_run("local", 1)
        ids = store.ids("queued")
        for i in ids:
            store.mark_running(i, run, "local")
        proofs = tmp_path / "proofs"
        # 0: published just before the crash -> adopted; 1: wrong input hash; 2: truncated; 3: none at all
        (proofs / f"{ids[0]}.json").write_text(json.dumps(_fake_proof(ids[0], specs[0].input_sha256)))
        (proofs / f"{ids[1]}.json").write_text(json.dumps(_fake_proof(ids[1], specs[2].input_sha256)))
        (proofs / f"{ids[2]}.json").write_text(json.dumps(_fake_proof(ids[2], specs[2].input_sha256))[:50])
        # 4: recorded as proved, but its file has gone -> proven again
        store.mark_proved(ids[4], f"proofs/{ids[4]}.json", [[0.1]], 1.0, "h:1", run)
        (proofs / f".{ids[3]}.json.x1y2.tmp").write_text('{"instan')

        assert _recover(store, M1) == (4, 1)
        assert [store.job(i).state for i in ids] == ["proved", "queued", "queued", "queued", "queued"]
        assert store.db.execute("SELECT adopted FROM jobs WHERE id = ?", (ids[0],)).fetchone()[0] == 1
        assert not list(proofs.glob(".*.tmp"))


def test_slot_layouts_split_stacked_and_unclear():
    split = manifest_mod.slot_layout({"batch_size": 2, "input_shapes": [[1, 3], [1, 3]], "output_shapes": [[2, 1]]})
    assert (split.count, split.split, split.shapes, split.sizes) == (2, True, ((1, 3),), (3,))
    rows = [[[1.0, 2.0, 3.0]], [[4.0, 5.0, 6.0]]]
    assert split.pack(rows) == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] and split.unpack(split.pack(rows)) == rows
    assert split.outputs_of([[0.25, 0.75]], 1) == [[0.75]]

    stacked = manifest_mod.slot_layout({"batch_size": 3, "input_shapes": [[3, 2]], "output_shapes": [[3, 2], [3, 1]]})
    assert (stacked.split, stacked.shapes, stacked.sizes) == (False, ((1, 2),), (2,))
    rows = [[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]]
    assert stacked.pack(rows) == [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]] and stacked.unpack(stacked.pack(rows)) == rows
    assert stacked.outputs_of([[1, 2, 3, 4, 5, 6], [7, 8, 9]], 2) == [[5, 6], [9]]

    one = manifest_mod.slot_layout({"input_shapes": [[1, 8], [1, 2]], "output_shapes": [[1, 1]]})
    assert one.count == 1 and one.pack([[[1.0] * 8, [2.0] * 2]]) == [[1.0] * 8, [2.0] * 2]
    with pytest.raises(UsageError, match="proves 2 inferences at once, but its input shapes"):
        manifest_mod.slot_layout({"batch_size": 2, "input_shapes": [[1, 3]], "output_shapes": [[2, 1]]})


def test_pack_ids_come_from_members_in_slot_order():
    a, b = "a" * 32, "b" * 32
    assert jobs.pack_id([a], 1) == a  # one-slot circuits: proofs/<job id>.json as before
    assert jobs.pack_id([a, b], 2) == jobs.pack_id([a, b], 2) != jobs.pack_id([b, a], 2)
    assert jobs.pack_id([a], 2) != a and len(jobs.pack_id([a, b], 2)) == 32


K2 = manifest_mod.slot_layout({"batch_size": 2, "input_shapes": [[1, 8], [1, 8]], "output_shapes": [[2, 1]]})


def _fake_pack(job_ids, specs, manifest=M1, slots=2):
    """A pack proof file's fields as the coordinator writes them (no real proof inside)."""
    padded = list(job_ids) + [job_ids[-1]] * (slots - len(job_ids))
    entries = [{"slot": i, "job_id": j, "labels": [], "input_sha256": specs[j].input_sha256,
                "padding": i >= len(job_ids), "outputs": [[0.1 * i]]} for i, j in enumerate(padded)]
    return {"instances": [["00" * 32]], "hex_proof": "0x00", "proof": [0],
            "outputs": [[0.1 * i for i in range(slots)]], "slots": entries,
            "zkinfer": {"circuit_id": manifest, "input_sha256": "x", "pack_id": jobs.pack_id(job_ids, slots),
                        "prove_s": 1.5}}


def test_recovery_adopts_whole_packs_and_requeues_vanished_ones(tmp_path):
    specs = {s.id: s for s in (_spec([float(i)] * 8) for i in range(7))}
    ids = list(specs)
    with JobStore(tmp_path, create=True) as store:
        store.add(specs.values())
        run = store.start_run("local", 1)
        packs = [ids[0:2], ids[2:4], ids[4:5]]
        for members in packs:
            store.mark_pack_running(jobs.pack_id(members, 2), members, run, "local")
        proofs = tmp_path / "proofs"
        for members in (packs[0], packs[2]):  # published just before the crash, the second one padded
            pid = jobs.pack_id(members, 2)
            (proofs / f"{pid}.json").write_text(json.dumps(_fake_pack(members, specs)))
        # A file whose name is not its members' pack id (slots swapped) is not adopted.
        wrong = _fake_pack(packs[1], specs)
        (proofs / f"{jobs.pack_id(packs[1][::-1], 2)}.json").write_text(json.dumps(wrong))
        # A proved pack whose file has gone: both its jobs are proven again.
        gone = jobs.pack_id(ids[5:7], 2)
        store.mark_pack_running(gone, ids[5:7], run, "local")
        store.mark_pack_proved(gone, f"proofs/{gone}.json", [(ids[5], 0, [[0.1]]), (ids[6], 1, [[0.2]])], 1.0,
                               "h:1", run)

        assert _recover(store, M1, K2) == (5, 2)
        assert [store.job(i).state for i in ids] == ["proved"] * 2 + ["queued"] * 2 + ["proved"] + ["queued"] * 2
        assert [(store.job(i).pack_id, store.job(i).slot) for i in ids[:2]] == [(jobs.pack_id(packs[0], 2), i)
                                                                                for i in range(2)]
        assert store.job(ids[5]).proof_path is None and store.job(ids[5]).pack_id is None
        rows = {r["id"]: r for r in store.proved_rows()}
        assert json.loads(rows[ids[1]]["outputs_json"]) == [[0.1]] and rows[ids[1]]["slot"] == 1
        assert store.proof_count() == 2
        assert _recover(store, M2, K2) == (0, 0)  # another circuit's files are never adopted


def test_a_version_1_store_is_migrated_when_opened(tmp_path):
    with JobStore(tmp_path, create=True) as store:
        spec = _spec(ROW)
        store.add([spec])
        store.mark_running(spec.id, store.start_run("local", 1), "local")
        store.mark_proved(spec.id, f"proofs/{spec.id}.json", [[0.5]], 1.0, "h:1", None)
        store.db.execute("ALTER TABLE jobs DROP COLUMN pack_id")
        store.db.execute("ALTER TABLE jobs DROP COLUMN slot")
    with JobStore(tmp_path) as store:
        job = store.job(spec.id)
        assert (job.state, job.pack_id, job.slot) == ("proved", spec.id, 0)
        assert store.proved_rows()[0]["slot"] == 0


def _store_with_results(out):
    with JobStore(out, create=True) as store:
        store.bind_circuit(M1, "tiny", "/circuits/tiny")
        specs = [_spec([float(i)] * 8, label) for i, label in enumerate(["alice", None, "carol"])]
        store.add([*specs, JobSpec(id="e" * 32, where="in.jsonl line 4", label="dan", error="in.jsonl line 4: bad")])
        run = store.start_run("local", 2)
        for s, outputs in zip(specs[:2], ([[0.25]], [[0.75]]), strict=True):
            store.mark_running(s.id, run, "local")
            store.mark_proved(s.id, f"proofs/{s.id}.json", outputs, 2.0, "h:1", run)
        store.end_run(run, "completed")
        return specs


def test_status_and_export(tmp_path, capsys):
    out = tmp_path / "out"
    specs = _store_with_results(out)
    st = jobs.status(out)
    assert st["counts"] == {"queued": 1, "running": 0, "proved": 2, "failed": 1} and st["total"] == 4
    assert st["failures"] == [{"id": "e" * 32, "source": "in.jsonl line 4", "reason": "in.jsonl line 4: bad",
                               "attempts": 0, "labels": "dan"}]
    assert st["last_run"]["proved"] == 2 and st["last_run"]["outcome"] == "completed"
    assert st["last_run"]["active"] is False and st["mean_prove_s"] == 2.0

    assert jobs.export(out, "csv", tmp_path / "r.csv") == 2
    assert (tmp_path / "r.csv").read_text().splitlines() == [
        "id,label,output_0,proof_path,slot",
        f"{specs[0].id},alice,0.25,{out}/proofs/{specs[0].id}.json,0",
        f"{specs[1].id},,0.75,{out}/proofs/{specs[1].id}.json,0",
    ]
    jobs.export(out, "jsonl")
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"id": specs[0].id, "label": "alice", "outputs": [[0.25]],
                        "proof": f"{out}/proofs/{specs[0].id}.json", "slot": 0}
    with pytest.raises(UsageError, match="unknown export format"):
        jobs.export(out, "xml")
    with pytest.raises(UsageError, match="no job store"):
        jobs.status(tmp_path / "nothing")


def zkinfer(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True)


def test_jobs_cli_status_export_and_usage_errors(tmp_path):
    out = tmp_path / "out"
    _store_with_results(out)
    r = zkinfer("jobs", "status", out)
    assert r.returncode == 0, r.stderr
    assert "4: 2 proved, 1 failed, 1 queued, 0 running" in r.stdout
    assert "in.jsonl line 4: bad" in r.stdout and "[dan]" in r.stdout and "proofs/min" in r.stdout
    assert json.loads(zkinfer("jobs", "status", out, "--json").stdout)["counts"]["proved"] == 2
    r = zkinfer("jobs", "export", out, "--format", "jsonl", "--out", tmp_path / "e.jsonl")
    assert r.returncode == 0 and len((tmp_path / "e.jsonl").read_text().splitlines()) == 2

    for args, fragment in [
        (("jobs", "status", tmp_path / "none"), "no job store"),
        (("batch", tmp_path / "c", tmp_path / "in.jsonl", "--out", out, "--address", "ray://x:10001"),
         "apply to --backend ray only"),
        (("batch", tmp_path / "c", tmp_path / "in.jsonl", "--out", out, "--workers", "0"), "--workers"),
        (("batch", tmp_path / "c", tmp_path / "in.jsonl", "--out", out), "circuit directory not found"),
    ]:
        r = zkinfer(*args)
        assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def _fake_circuit(d):
    """Circuit files that are not a real circuit, in a manifest that authenticates (the node cache only moves
    and checks files)."""
    d.mkdir()
    settings = {"run_args": {"logrows": 10, "param_scale": 7, "lookup_range": [0, 1]}, "model_input_scales": [7],
                "model_output_scales": [7], "model_instance_shapes": [[1, 2]]}
    files = (*manifest_mod.PROVE_FILES, manifest_mod.VK)
    for name in files:
        (d / name).write_bytes(name.encode() * 1000)
    (d / manifest_mod.SETTINGS).write_text(json.dumps(settings))
    m = {"schema": manifest_mod.SCHEMA, "name": "fake", "ezkl_version": "test", "prepare": None, "srs": {},
         "circuit": {"logrows": 10, "input_scales": [7], "output_scales": [7], "param_scale": 7,
                     "lookup_range": [0, 1], "instance_shapes": [[1, 2]]},
         "artifacts": {n: {"sha256": sha256_file(d / n)} for n in files}}
    m["circuit_id"] = manifest_mod.circuit_id(m, settings)
    (d / manifest_mod.MANIFEST).write_text(json.dumps(m))
    return manifest_mod.load(d).circuit_id


def test_node_cache_fills_once_and_rejects_corrupt_files(tmp_path, monkeypatch):
    monkeypatch.setenv(node_cache.CACHE_ENV, str(tmp_path / "cache"))
    src = tmp_path / "circuit"
    sha = _fake_circuit(src)
    assert node_cache.cached_circuit(sha, str(tmp_path / "elsewhere")) is None  # not on this node: ship it

    def fetch_corrupt(name):
        data = (src / name).read_bytes()
        yield data[:-1] + (b"X" if name == manifest_mod.PK else data[-1:])

    with pytest.raises(ArtifactMismatchError, match="pk.key"):
        node_cache.cached_circuit(sha, None, fetch=fetch_corrupt)
    assert not (tmp_path / "cache" / sha).exists() and not list((tmp_path / "cache").glob(".*staging"))

    entry = node_cache.cached_circuit(sha, None, fetch=lambda name: node_cache.file_chunks(src / name))
    assert entry == tmp_path / "cache" / sha and sha256_file(entry / "pk.key") == sha256_file(src / "pk.key")
    assert node_cache.cached_circuit(sha, None, fetch=fetch_corrupt) == entry  # filled: nothing fetched again

    monkeypatch.setenv(node_cache.CACHE_ENV, str(tmp_path / "cache2"))
    linked = node_cache.cached_circuit(sha, str(src))
    assert (linked / "pk.key").stat().st_ino == (src / "pk.key").stat().st_ino  # same machine: hard links


def test_store_is_readable_while_a_writer_holds_a_transaction(tmp_path):
    _store_with_results(tmp_path)
    writer = sqlite3.connect(tmp_path / "jobs.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE jobs SET state = 'running' WHERE state = 'queued'")
    try:
        assert jobs.status(tmp_path)["counts"]["queued"] == 1  # WAL: readers see the last commit, no waiting
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_progress_lines_and_bar(tmp_path):
    import io

    log = io.StringIO()
    lines = jobs.LineProgress(log, every_s=0)
    lines.start(total=4, done=1)
    lines.advance("j1", "proved", None)
    lines.advance("j2", "failed", "in.jsonl line 2: not valid JSON")
    lines.close()
    text = log.getvalue()
    assert "batch: 4 jobs, 1 already proved or failed, 3 to prove" in text
    assert "failed j2: in.jsonl line 2: not valid JSON" in text
    assert "progress: 3/4 (1 proved, 1 failed in this run)" in text and "jobs/min, ETA" in text
    assert text.count("progress: 3/4") == 1  # close() does not repeat the last line

    screen = io.StringIO()
    bar = jobs.RichProgress(screen)
    bar.start(total=2, done=0)
    bar.advance("j1", "failed", "in.csv line 3: 7 values")
    bar.advance("j2", "proved", None)
    bar.close()
    assert "failed j1: in.csv line 3: 7 values" in screen.getvalue() and "2/2" in screen.getvalue()
    assert isinstance(jobs.auto_progress(io.StringIO()), jobs.LineProgress)  # not a terminal: plain lines
