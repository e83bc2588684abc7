"""Reliability checks (issue 13): the product defects they found stay fixed (fast), the report merges by
name (fast), and a short form of each check runs against a real circuit, real proofs, real SQLite and a
real Ray cluster (slow; fixed seeds, small case counts). `make reliability` runs the full figures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pipeline import faults, inputs
from pipeline.artifacts import loads_json, read_json
from pipeline.errors import InputError, UsageError
from pipeline.jobs.sources import read_inputs
from pipeline.reliability import report


def _parse(obj, where):
    flat = inputs.parse_input_data(obj, where, [4])
    inputs.check_single(flat, [4], [(1, 4)], where)
    return flat


# ---- defects found by the checks, fixed (fast)

def test_huge_integers_and_deep_nesting_are_input_errors():
    with pytest.raises(InputError, match=r"input_data\[0\]\[0\]: an integer of 400 digits is too large"):
        inputs.parse_input_data({"input_data": [[int("9" * 400), 0, 0, 0]]}, "f", [4])
    deep = [0.0]
    for _ in range(5000):  # deeper than Python's recursion limit: the walk is iterative
        deep = [deep]
    with pytest.raises(InputError, match="nested more than 32 lists deep"):
        inputs.flatten(deep, "f")


@pytest.mark.parametrize("text, match", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"input_data": [[' + "9" * 5000 + "]]}", "not usable JSON"),
    ('{"input_data": [[1,', "not valid JSON"),
])
def test_json_that_python_cannot_read_is_a_usage_error(text, match):
    with pytest.raises(UsageError, match=match):
        loads_json(text, "input file f.json")


def test_non_utf8_file_is_a_usage_error(tmp_path):
    p = tmp_path / "in.json"
    p.write_bytes(b"\xff\xfe{}")
    with pytest.raises(UsageError, match="in.json is not UTF-8"):
        read_json(p, "input file")


def test_bad_batch_rows_fail_alone_naming_file_and_line(tmp_path):
    jl = tmp_path / "rows.jsonl"
    jl.write_bytes(b'{"input_data": [[1, 2, 3, 4]]}\n\xff\xfe\n{"input_data": [[' + b"9" * 500 + b', 0, 0, 0]]}\n'
                   + b'{"input_data": ' + b"[" * 5000 + b"]" * 5000 + b"}\n" + b'{"input_data": [[0, 0, 0, 1]]}\n')
    specs = list(read_inputs(jl, "c" * 64, _parse))
    assert [s.error is None for s in specs] == [True, False, False, False, True]
    assert [s.error.split(":")[0].split(" input_data")[0] for s in specs if s.error] == [
        "rows.jsonl line 2", "rows.jsonl line 3", "rows.jsonl line 4 is nested too deeply to be read as JSON"]
    csv_path = tmp_path / "rows.csv"
    csv_path.write_bytes(b"id,a,b,c,d\nx,1,2,3,4\ny," + b"1" * 140_000 + b",0,0,0\n\xff,1,2,3,4\nz,0,0,0,1\n")
    specs = list(read_inputs(csv_path, "c" * 64, _parse))
    assert [s.error is None for s in specs] == [True, False, False, True]
    assert specs[1].error.startswith("rows.csv line 3 column 'a': a cell of 140000 characters")
    assert specs[2].error == "rows.csv line 4: not UTF-8 text"


def test_a_build_killed_while_installing_is_finished_by_the_next_reader(tmp_path):
    from pipeline import manifest

    staging = tmp_path / manifest.STAGING
    staging.mkdir()
    (tmp_path / "pk.key").write_text("new")  # moved before the kill
    (staging / "vk.key").write_text("new")
    (staging / manifest.MANIFEST).write_text(json.dumps({"artifacts": {"pk.key": {}, "vk.key": {}}}))
    assert manifest.finish_install(tmp_path)
    assert (tmp_path / "vk.key").read_text() == "new" and (tmp_path / manifest.MANIFEST).exists()
    assert not (staging / manifest.MANIFEST).exists() and not manifest.finish_install(tmp_path)


def test_crash_points_do_nothing_unless_asked(monkeypatch):
    monkeypatch.delenv(faults.ENV, raising=False)
    for name in faults.POINTS:
        faults.point(name)  # still alive
    monkeypatch.setenv(faults.ENV, "store-commit@2")
    faults.point("proof-published")  # another point: no effect


# ---- the report (fast)

def test_report_merges_entries_by_name(tmp_path):
    path = tmp_path / "reliability.json"
    report.merge([{"name": "solidity_invariants", "cases": 5, "failures": 0, "notes": "forge"}], path)
    r = report.CheckResult("proof_mutation_offchain")
    r.case(True, "byte")
    r.case(False, "byte", "accepted: byte 3")
    report.merge([r], path)
    r2 = report.CheckResult("proof_mutation_offchain", cases=7)
    data = report.merge([r2], path, parameters={"x": 1})
    assert [t["name"] for t in data["tests"]] == ["proof_mutation_offchain", "solidity_invariants"]
    assert data["tests"][0]["cases"] == 7 and data["tests"][1]["notes"] == "forge" and data["parameters"] == {"x": 1}
    assert json.loads(path.read_text()) == data
    lines = report.table(data)
    assert lines[0].split() == ["test", "cases", "failures", "notes"] and len(lines) == 3
    assert r.failures == 1 and r.details["failure_examples"] == ["accepted: byte 3"]
    entry = tmp_path / "forge.json"
    entry.write_text(json.dumps({"name": "solidity_invariants", "cases": 9, "failures": 0, "notes": "again"}))
    assert report.main([str(entry), "--out", str(path)]) == 0
    assert [t["cases"] for t in report.load(path)["tests"]] == [7, 9]
    assert report.main([str(tmp_path / "missing.json"), "--out", str(path)]) == 2


# ---- short forms of the checks, on real components (slow)

@pytest.fixture(scope="session")
def subject(reliability_subject):
    return reliability_subject


@pytest.fixture(scope="session")
def subject_proof(subject, tmp_path_factory):
    from pipeline.prove import Prover
    from pipeline.reliability import tampering

    d = tmp_path_factory.mktemp("reliability-proof")
    sample = tampering.sample_input(subject.dir, d / "sample.json")
    Prover(subject.dir).prove(json.loads(sample.read_text())["input_data"], d / "proof.json")
    return d / "proof.json", sample


def _assert_held(r):
    assert r.failures == 0, (r.notes, r.details.get("failure_examples"))


@pytest.mark.slow
def test_proof_mutation_offchain_short(subject, subject_proof, tmp_path):
    from pipeline.reliability import mutation

    r = mutation.offchain(subject.dir, subject_proof[0], n_bytes=20, seed=1, work=tmp_path)
    _assert_held(r)
    # 20 bytes, 4 instances and 1 output each +/-1, 10 swaps, 4 truncations, 6 edited copies, a trailing byte
    assert r.cases >= 50 and r.details["by_kind"]["byte"]["cases"] == 20


@pytest.mark.slow
def test_artifact_tampering_short(subject, subject_proof, tmp_path):
    from pipeline.reliability import tampering

    r = tampering.run(subject.dir, subject_proof[0], subject_proof[1], rounds=1, seed=1, work=tmp_path)
    _assert_held(r)
    assert set(r.details["by_kind"]) >= {"pk.key", "vk.key", "settings.json", "network.compiled", "network.onnx",
                                         "manifest.json", "kzg.srs", "untouched"}


@pytest.mark.slow
def test_malformed_inputs_short(subject, tmp_path):
    from pipeline.reliability import fuzz

    r = fuzz.run(subject.dir, subject.onnx, subject.calibration, tmp_path, examples=100, seed=1)
    _assert_held(r)
    assert r.cases == 100


@pytest.mark.slow
def test_cli_malformed_inputs_one_line_no_traceback(subject, tmp_path):
    """The inputs the held-out probe found tracebacks on, through the real command (a subprocess)."""
    cases = {"digits.json": '{"input_data": [[' + "9" * 450 + ", 0, 0, 0]]}",
             "deep.json": '{"input_data": ' + "[" * 5000 + "]" * 5000 + "}",
             "binary.json": None}
    for name, text in cases.items():
        p = tmp_path / name
        p.write_bytes(text.encode() if text else bytes(range(256)))
        r = subprocess.run([sys.executable, "-m", "pipeline.cli", "prove", str(subject.dir), str(p), "--out",
                            str(tmp_path / "p.json")], capture_output=True, text=True)
        assert r.returncode == 2 and "Traceback" not in r.stderr and name in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for value in ("1e38", "1e20", "1e5"):  # far outside the calibrated box [-4, 4]
        p = tmp_path / f"far{value}.json"
        p.write_text(f'{{"input_data": [[{value}, 0, 0, 0]]}}')
        r = subprocess.run([sys.executable, "-m", "pipeline.cli", "prove", str(subject.dir), str(p), "--out",
                            str(tmp_path / "p.json")], capture_output=True, text=True)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "outside the" in r.stderr and "calibrated" in r.stderr and p.name in r.stderr, r.stderr


@pytest.mark.slow
def test_crash_resume_short(subject, tmp_path):
    from pipeline.reliability import crash

    rows = subject.features(np.random.default_rng(3), 3)
    r = crash.batch_kills(subject.dir, rows, tmp_path / "batch", kills=2, seed=1, max_wait_s=8)
    _assert_held(r)
    assert sum(k["happened"] for k in r.details["kills"]) >= 1
    b = crash.build_kills(tmp_path / "build", kills=1, seed=1, crash_install=False)
    _assert_held(b)


@pytest.mark.slow
def test_ray_node_loss_short(subject, tmp_path):
    from pipeline.reliability import ray_loss

    r = ray_loss.run(subject.dir, subject.features(np.random.default_rng(4), 3), tmp_path,
                     kill_after_proved=0)  # both provers busy on the first two rows: the kill lands mid-proof
    _assert_held(r)
    assert r.details["killed"] and r.details["retried_jobs"]
