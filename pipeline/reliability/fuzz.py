"""Malformed input fuzzing with hypothesis: data files for `zkinfer prove`, `zkinfer batch` (JSONL and
CSV) and `zkinfer circuit build`, through the real CLI (`pipeline.cli.main`, in this process).

Generated: wrong types (strings, booleans, null, objects), NaN and infinities (JSON's NaN/Infinity tokens),
huge values (1e38 and up, 400+ digit integers), values far outside the calibrated range, wrong lengths and
shapes, deep nesting, empty and binary files, lines that are not UTF-8, duplicate ids, missing and extra CSV
columns, over-long CSV cells. Each case must end with the CLI's contract: exit 2 with one line naming the
file (or, inside a batch, exit 1 with each bad row failed alone, its reason naming file and line), or exit 0
/ 1 where the input happened to be valid / outside the calibrated range (one line saying so); never a
traceback; never a hang (`HANG_S`); the job store intact (`PRAGMA integrity_check`) after every batch.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import tempfile
import time
from pathlib import Path

from .common import run_cli
from .report import CheckResult

HANG_S = 120.0
_PY_WARNING = re.compile(r"\S+\.py:\d+: \w*Warning")
_WHERE = re.compile(r"\S+\.(jsonl|csv) line \d+")
IN_RANGE = 3.5  # inside the subject's calibrated box


def _strategies(n_features: int):
    from hypothesis import strategies as st

    huge = st.sampled_from([1e38, -1e38, 3.4e38, 1e300, -1e300, 1e20, 1e5, -1e4, 5e4])
    bigint = st.integers(min_value=400, max_value=700).map(lambda d: int("9" * d))
    number = st.one_of(
        st.floats(min_value=-IN_RANGE, max_value=IN_RANGE, allow_nan=False, width=32),
        st.floats(allow_nan=True, allow_infinity=True), huge, bigint, st.integers(-10**6, 10**6))
    junk = st.one_of(st.text(max_size=8), st.booleans(), st.none(), st.dictionaries(st.text(max_size=3),
                                                                                      st.integers(), max_size=2))
    element = st.one_of(number, number, number, junk)
    row = st.one_of(st.lists(element, min_size=n_features, max_size=n_features),
                    st.lists(element, min_size=0, max_size=n_features * 2 + 1))

    def nest(v, depth):
        for _ in range(depth):
            v = [v]
        return v

    nested = st.tuples(row, st.sampled_from([1, 2, 3, 40, 2000])).map(lambda t: nest(t[0], t[1]))
    input_data = st.one_of(st.lists(row, min_size=0, max_size=3), row, nested, junk)
    doc = st.one_of(st.builds(lambda d: {"input_data": d}, input_data),
                    st.builds(lambda d, k: {"input_data": d, k: 1}, input_data, st.text(max_size=5)),
                    st.builds(lambda d: {"inputs": d}, input_data), junk, st.lists(number, max_size=5))
    return number, junk, row, doc


def _dump(doc) -> str:
    """JSON text, big ints and NaN included (as the JSON tokens Python writes); deep nests by hand."""
    try:
        return json.dumps(doc)
    except (RecursionError, ValueError):
        return "{\"input_data\": " + "[" * 3000 + "]" * 3000 + "}"


def _file_bytes(st, doc):
    """A file's bytes: the document's JSON, or binary junk, or nothing, or invalid UTF-8 around JSON."""
    return st.one_of(
        st.just(doc).map(lambda d: _dump(d).encode()),
        st.binary(max_size=64),
        st.just(b""),
        st.just(doc).map(lambda d: b"\xff\xfe" + _dump(d).encode()),
        st.just(doc).map(lambda d: _dump(d).encode()[: max(1, len(_dump(d)) // 2)]),
    )


def _integrity(db: Path) -> str:
    if not db.exists():
        return "ok"
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def _judge(r, expected: tuple[int, ...], name: str | None) -> tuple[bool, str]:
    if r.traceback:
        return False, "traceback: " + r.traceback.strip().splitlines()[-1]
    if r.seconds > HANG_S:
        return False, f"took {r.seconds:.0f} s (hang)"
    if r.code not in expected:
        return False, f"exit {r.code}: {(r.err or r.out).strip()[:160]}"
    if _PY_WARNING.search(r.err):
        return False, f"a Python warning reached the terminal: {_PY_WARNING.search(r.err).group(0)}"
    if r.code == 2:
        # Progress lines (a build's steps) may come first; the error itself is one line.
        errors = [ln for ln in r.err.splitlines() if ln.startswith(("error:", "Error:"))]
        if len(errors) != 1:
            return False, f"{len(errors)} error lines on stderr: {r.err.strip()[:160]}"
        if name and name not in errors[0] and not errors[0].startswith("Error:"):
            return False, f"message does not name {name}: {errors[0][:160]}"
    return True, ""


def run(circuit_dir: Path, onnx: Path, calibration: Path, work: Path, examples: int = 1000, seed: int = 13,
        good_row: list[float] | None = None) -> CheckResult:
    """`examples` cases in all: 40% prove, 25% JSONL batch, 20% CSV batch, 15% circuit build data files."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from .. import manifest as manifest_mod
    from ..jobs.store import DB_FILE

    t0 = time.perf_counter()
    res = CheckResult("malformed_inputs")
    n_features = manifest_mod.load(circuit_dir).circuit["input_shapes"][0][-1]
    number, junk, row, doc = _strategies(n_features)
    work.mkdir(parents=True, exist_ok=True)
    share = {"prove": 0.40, "jsonl": 0.25, "csv": 0.20, "build": 0.15}
    counts = {k: max(1, math.floor(examples * v)) for k, v in share.items()}
    counts["prove"] += examples - sum(counts.values())
    good_row = good_row or [0.5] * n_features

    def cfg(n):
        return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                        suppress_health_check=list(HealthCheck), phases=[Phase.generate])

    # prove: a data file
    @cfg(counts["prove"])
    @given(data=doc.flatmap(lambda d: _file_bytes(st, d)))
    def prove_case(data):
        f = work / "input.json"
        f.write_bytes(data)
        r = run_cli(["prove", str(circuit_dir), str(f), "--out", str(work / "proof.json")])
        ok, why = _judge(r, (0, 1, 2), f.name)
        if ok and r.code == 1 and "outside the range" not in r.err and "outside the calibrated" not in r.err:
            ok, why = False, f"exit 1 without saying the input is outside the calibrated range: {r.err.strip()[:160]}"
        res.case(ok, "prove", f"prove {data[:80]!r}: {why}")

    # batch JSONL: good row + generated lines (each line a doc, binary, or a duplicate id)
    out = work / "batch-out"
    line = st.one_of(doc.map(lambda d: _dump(d).encode()), st.binary(max_size=24).filter(lambda b: b"\n" not in b),
                     st.builds(lambda r: json.dumps({"id": "dup", "input_data": [r]}).encode(), row),
                     st.just(b"\xff\xfe\xfd"), st.just(b"{\"id\": [1], \"input_data\": [[0,0,0,0]]}"))

    def batch_judge(r, path: Path) -> tuple[bool, str]:
        ok, why = _judge(r, (0, 1, 2), path.name)
        if not ok:
            return ok, why
        integrity = _integrity(out / DB_FILE)
        if integrity != "ok":
            return False, f"integrity_check: {integrity}"
        if r.code == 1:
            fails = [ln.strip() for ln in r.out.splitlines() if ln.startswith("  ") and "line" in ln]
            if any(not _WHERE.search(ln) for ln in fails):
                return False, f"a failed row's reason does not name file and line: {fails[:2]}"
        return True, ""

    @cfg(counts["jsonl"])
    @given(lines=st.lists(line, min_size=0, max_size=6))
    def jsonl_case(lines):
        f = work / "rows.jsonl"
        good = json.dumps({"id": "good", "input_data": [good_row]}).encode()
        f.write_bytes(b"\n".join([good, *lines]) + b"\n")
        r = run_cli(["batch", str(circuit_dir), str(f), "--out", str(out)])
        ok, why = batch_judge(r, f)
        res.case(ok, "batch-jsonl", f"batch {lines[:3]!r}: {why}")

    cell = st.one_of(number.map(lambda v: repr(v) if not isinstance(v, int) else str(v)),
                     st.text(max_size=6).filter(lambda t: "\n" not in t and "\r" not in t),
                     st.sampled_from(["nan", "inf", "-inf", "", "1e400", "0x10", "1,2", "\"3\""]),
                     st.just("1" * 140_000))
    header = st.one_of(st.just(["id", "a", "b", "c", "d"][: n_features + 1]),
                       st.lists(st.sampled_from(["id", "a", "b", "c", "d", "e", ""]), min_size=0, max_size=7))

    @cfg(counts["csv"])
    @given(head=header, rows=st.lists(st.lists(cell, min_size=0, max_size=n_features + 2), max_size=5),
           junk_line=st.one_of(st.none(), st.binary(max_size=16).filter(lambda b: b"\n" not in b)))
    def csv_case(head, rows, junk_line):
        f = work / "rows.csv"
        text = [",".join(head).encode(), ("good," + ",".join(map(str, good_row))).encode()]
        text += [",".join(r).encode() for r in rows]
        if junk_line is not None:
            text.append(junk_line)
        f.write_bytes(b"\n".join(text) + b"\n")
        r = run_cli(["batch", str(circuit_dir), str(f), "--out", str(out)])
        ok, why = batch_judge(r, f)
        res.case(ok, "batch-csv", f"csv {head} {[c[:10] for rr in rows[:2] for c in rr]}: {why}")

    # circuit build: generated calibration (or validation) files; valid ones would build for real, so the
    # documents are drawn from the malformed side (wrong shapes, types, NaN, huge, nesting, binary).
    build_out = work / "build-out"

    @cfg(counts["build"])
    @given(data=doc.flatmap(lambda d: _file_bytes(st, d)), which=st.sampled_from(["--data", "--validation"]))
    def build_case(data, which):
        f = work / "data.json"
        f.write_bytes(data)
        args = ["circuit", "build", str(onnx), "--out", str(build_out), "--max-attempts", "1",
                "--tolerance", "0.1", "--decomp-base", "256", "--decomp-legs", "4"]
        args += ["--data", str(f)] if which == "--data" else ["--data", str(calibration), "--validation", str(f)]
        r = run_cli(args)
        ok, why = _judge(r, (0, 1, 2), f.name)
        res.case(ok, "build", f"build {which} {data[:80]!r}: {why}")

    with tempfile.TemporaryDirectory(prefix="zkinfer-fuzz-"):
        prove_case()
        jsonl_case()
        csv_case()
        build_case()
    res.seconds = time.perf_counter() - t0
    res.notes = (f"{res.cases} hypothesis cases through the real CLI (derandomized): "
                 f"{res.count('prove')} prove data files, {res.count('batch-jsonl')} "
                 f"JSONL batches, {res.count('batch-csv')} CSV batches, "
                 f"{res.count('build')} circuit build data files; failures = tracebacks, hangs "
                 f"(> {HANG_S:.0f} s), wrong exit codes, messages not naming the file/line, store not intact")
    return res
