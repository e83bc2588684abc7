"""K inferences per proof: `zkinfer batch` packs rows into K-slot circuits, with real proofs, real SQLite,
real SIGKILLs and a real local Ray.

Two tiny circuits (logrows ~13, about a second to build and to prove): K = 2 with split inputs (two [1, 4]
inputs, like `--batch 2 --split-inputs`) and K = 3 with one stacked [3, 4] input (like `--batch 3`).
"""

import json
import math
import signal
import sqlite3
import time

import numpy as np
import pytest
from model_helpers import make_slots_onnx
from test_jobs_batch import proof_files, proved_attempts, query, start_batch, wait_until, zkinfer

from pipeline import jobs
from pipeline import witness as witness_mod
from pipeline.jobs import node_cache
from pipeline.jobs.sources import pack_id
from pipeline.manifest import COMPILED
from pipeline.prove import Prover, input_digest
from pipeline.verify import verify_proof

pytestmark = pytest.mark.slow

WEIGHTS, BIAS, BOX = [1.0, 0.5, -0.5, 0.25], 0.1, 4.0


def build(root, name, k, split):
    """The affine-sigmoid stand-in for credit_risk with K slots, built by zkinfer's own build."""
    from pipeline.build import BuildOptions, build_circuit
    from pipeline.compile import CalibrationAttempt, CircuitArgs
    from pipeline.fidelity import Tolerance

    src = root / f"{name}.src"
    src.mkdir(parents=True)
    onnx_path = make_slots_onnx(src / "network.onnx", WEIGHTS, BIAS, k, split)
    corner = np.sign(WEIGHTS) * BOX  # calibrate over the whole box the tests use
    rows = np.vstack([corner, -corner, np.random.default_rng(0).uniform(-BOX, BOX, (28, 4))])
    data = [rows[i::k].ravel().tolist() for i in range(k)] if split else [rows.ravel().tolist()]
    (src / "calibration.json").write_text(json.dumps({"input_data": data}))
    options = BuildOptions(name=name, batch_size=k, ladder=(CalibrationAttempt(target="resources", scales=(7,)),),
                           tolerance=Tolerance(max_abs_error=0.1), circuit_args=CircuitArgs(decomp_base=256,
                                                                                             decomp_legs=4))
    return build_circuit(onnx_path, src / "calibration.json", root / name, options).manifest.dir


@pytest.fixture(scope="module")
def k2(tmp_path_factory):
    return build(tmp_path_factory.mktemp("circuits"), "k2", 2, split=True)


@pytest.fixture(scope="module")
def k3(tmp_path_factory):
    return build(tmp_path_factory.mktemp("circuits"), "k3", 3, split=False)


ROWS = {"a": [0.5, -1.0, 2.0, 0.0], "b": [1.0, 1.0, 1.0, 1.0], "c": [-2.0, 0.5, 0.25, 3.0],
        "d": [0.0, 0.0, 0.0, 0.0], "e": [-3.0, -1.0, 2.5, -0.5]}


@pytest.fixture(scope="module")
def pack_batch(k2, tmp_path_factory):
    """Five good rows among bad ones, in this order: a, b, huge (outside the calibrated range, packed with c),
    c, short (3 values), whole (a whole 2-slot input on one line), d, a-again (a's input), e."""
    d = tmp_path_factory.mktemp("pack")
    lines = [{"id": "a", "input_data": [ROWS["a"]]}, {"id": "b", "input_data": [ROWS["b"]]},
             {"id": "huge", "input_data": [[50.0] * 4]}, {"id": "c", "input_data": [ROWS["c"]]},
             {"id": "short", "input_data": [[1.0, 2.0, 3.0]]},
             {"id": "whole", "input_data": [ROWS["a"], ROWS["b"]]},
             {"id": "d", "input_data": [ROWS["d"]]}, {"id": "a-again", "input_data": [ROWS["a"]]},
             {"id": "e", "input_data": ROWS["e"]}]
    inputs = d / "in.jsonl"
    inputs.write_text("".join(json.dumps(x) + "\n" for x in lines))
    t0 = time.monotonic()
    r = zkinfer("batch", k2, inputs, "--out", d / "out", "--workers", 2)
    return r, d / "out", time.monotonic() - t0


def test_five_rows_make_three_proofs_the_last_padded(pack_batch, k2):
    r, out, elapsed = pack_batch
    print(f"K=2 batch, 9 rows (5 good), 2 workers: {elapsed:.1f} s")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "9 rows (2 not valid inputs): 8 new jobs, 1 already submitted" in r.stdout
    assert "2 inferences per proof: 3 proof(s) this run, 1 padding slot(s)" in r.stdout
    assert r.stdout.rstrip().endswith("5 proved, 3 failed")

    files = sorted((out / "proofs").glob("*.json"))
    assert len(files) == 3
    by_label = {}
    for f in files:
        proof = json.loads(f.read_text())
        slots = proof["slots"]
        real = [s["job_id"] for s in slots if not s["padding"]]
        assert [s["slot"] for s in slots] == [0, 1] and not slots[0]["padding"]
        assert f.stem == proof["zkinfer"]["pack_id"] == pack_id(real, 2)  # derived from its members
        assert [s["outputs"][0][0] for s in slots] == proof["outputs"][0]  # slot i's outputs are output row i
        for s in slots:
            by_label.update({label: (f, s) for label in s["labels"] if not s["padding"]})
        if slots[1]["padding"]:  # the padded pack repeats its last real row
            assert slots[1]["job_id"] == slots[0]["job_id"] and slots[1]["input_sha256"] == slots[0]["input_sha256"]
            padded = f
    assert verify_proof(k2, padded).valid  # the padded proof is a real proof like the others
    assert set(by_label) == {"a", "a-again", "b", "c", "d", "e"}
    for label, (_, s) in by_label.items():
        assert s["input_sha256"] == input_digest([ROWS[label[0]]])
    # Packs are formed in submission order; c came back to the queue when `huge` failed in its pack.
    assert [s["labels"] for s in json.loads(padded.read_text())["slots"]] == [["e"], ["e"]]


def test_each_exported_row_has_its_own_slots_output(pack_batch, k2):
    _, out, _ = pack_batch
    exported = [json.loads(x) for x in zkinfer("jobs", "export", out, "--format", "jsonl").stdout.splitlines()]
    assert sorted(e["label"] for e in exported) == ["a", "a-again", "b", "c", "d", "e"]
    prover = Prover(k2)
    for e in exported:
        row = ROWS[e["label"][0]]
        proof = json.loads(open(e["proof"]).read())
        assert proof["slots"][e["slot"]]["labels"][0] == e["label"][0]
        # The same row alone in the circuit (both slots) gives exactly the output exported for its slot ...
        w = witness_mod.generate(prover.slots.pack([[row]] * 2), k2 / COMPILED)
        assert e["outputs"] == prover.slots.outputs_of(w.outputs(prover.settings), 0)
        # ... which is the model's output within the circuit's tolerance.
        expected = 1 / (1 + math.exp(-(np.dot(WEIGHTS, row) + BIAS)))
        assert abs(e["outputs"][0][0] - expected) < 0.1
    csv_rows = zkinfer("jobs", "export", out, "--format", "csv").stdout.splitlines()
    assert csv_rows[0] == "id,label,output_0,proof_path,slot" and len(csv_rows) == 7


def test_bad_rows_fail_alone_and_packs_form_from_the_good_ones(pack_batch):
    _, out, _ = pack_batch
    failed = {labels: reason for labels, reason in query(
        out, "SELECT l.label, j.reason FROM jobs j JOIN labels l ON l.job_id = j.id WHERE j.state = 'failed'")}
    assert set(failed) == {"huge", "short", "whole"}
    assert failed["huge"].startswith("in.jsonl line 3: ") and "outside the calibrated range" in failed["huge"]
    assert failed["short"].startswith("in.jsonl line 5: input 0 has 3 values")
    assert "line 6: this is a whole 2-inference circuit input; give one inference" in failed["whole"]
    # `c` shared a pack with `huge`: it went back to the queue and was proved in another pack, once.
    c = query(out, "SELECT j.state, j.attempts, j.slot FROM jobs j JOIN labels l ON l.job_id = j.id "
                   "WHERE l.label = 'c'")
    assert c == [("proved", 2, 0)]
    assert query(out, "SELECT COUNT(DISTINCT proof_path), COUNT(*) FROM jobs WHERE state = 'proved'") == [(3, 5)]

    r = zkinfer("jobs", "status", out)
    assert "8: 5 proved, 3 failed, 0 queued, 0 running" in r.stdout, r.stdout
    assert "proofs:     3 (2 inference(s) per proof, 1 padding slot(s))" in r.stdout
    assert "5 proved in 3 proof(s)" in r.stdout and "inferences/min" in r.stdout


def test_sigkill_mid_batch_then_rerun_proves_no_job_twice(k2, tmp_path):
    rng = np.random.default_rng(7)
    rows = rng.uniform(-BOX, BOX, (7, 4)).round(3).tolist()  # 7 rows: 4 packs, the last padded
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"r{i}", "input_data": [r]}) + "\n" for i, r in enumerate(rows)))
    out = tmp_path / "out"

    def packs_recorded():
        try:
            return len(query(out, "SELECT DISTINCT proof_path FROM jobs WHERE state = 'proved'"))
        except sqlite3.OperationalError:  # the store is not created yet
            return 0

    p = start_batch(k2, inputs, out)
    wait_until(lambda: packs_recorded() >= 2, p)
    p.send_signal(signal.SIGKILL)
    p.wait()
    snapshot, attempts = proof_files(out), proved_attempts(out)
    recorded = dict(query(out, "SELECT proof_path, COUNT(*) FROM jobs WHERE state = 'proved' GROUP BY proof_path"))
    assert set(recorded.values()) == {2}  # every proof recorded with both its jobs, in one transaction
    unrecorded = len(snapshot) - len(recorded)  # 0, unless the kill fell between a rename and its commit
    # The crash between publishing a pack's file and recording it (the store still says `running`) ...
    published, vanished = (path.split("/")[1] for path in sorted(recorded)[:2])
    members = [r[0] for r in query(out, "SELECT id FROM jobs WHERE proof_path = ?", f"proofs/{published}")]
    # ... and a pack whose file vanished: both its jobs are proven again, into the same pack file.
    (out / "proofs" / vanished).unlink()
    db = sqlite3.connect(out / "jobs.sqlite")
    db.execute("UPDATE jobs SET state = 'running', proof_path = NULL WHERE proof_path = ?", (f"proofs/{published}",))
    db.commit()
    db.close()

    r = zkinfer("batch", k2, inputs, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "7 proved, 0 failed" in r.stdout and f"{1 + unrecorded} proof file(s) adopted" in r.stdout
    final = proof_files(out)
    assert len(final) == 4 and vanished in final
    assert final[published] == snapshot[published]  # adopted as it was, not rewritten
    assert query(out, "SELECT COUNT(*) FROM jobs WHERE adopted = 1") == [(2 * (1 + unrecorded),)]
    again = proved_attempts(out)
    for job_id in members:  # adopted, not proven again
        assert again[job_id] == attempts[job_id] == 1
    assert query(out, "SELECT COUNT(DISTINCT proof_path), COUNT(*) FROM jobs WHERE state = 'proved'") == [(4, 7)]
    slots = [s for f in (out / "proofs").glob("*.json") for s in json.loads(f.read_text())["slots"]]
    real = [s["job_id"] for s in slots if not s["padding"]]
    assert len(real) == len(set(real)) == 7  # each job in exactly one proof file
    assert sum(s["padding"] for s in slots) == 1
    assert verify_proof(k2, out / "proofs" / published).valid


def test_stacked_slots_no_pad_then_pad_on_ray(k3, tmp_path, monkeypatch):
    """K = 3 on one [3, 4] input, on Ray: --no-pad leaves the fourth row waiting; the next run pads it."""
    ray = pytest.importorskip("ray")
    monkeypatch.setenv(node_cache.CACHE_ENV, str(tmp_path / "node-cache"))  # inherited by Ray's workers
    inputs = tmp_path / "in.csv"
    inputs.write_text("id,f0,f1,f2,f3\n" + "".join(f"{k},{','.join(map(str, ROWS[k]))}\n" for k in "abcd"))
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        first = jobs.run_batch(k3, inputs, tmp_path / "out", backend="ray", pad=False)
        assert (first.proved, first.proofs, first.waiting, first.exit_code) == (3, 1, 1, 0)
        second = jobs.run_batch(k3, inputs, tmp_path / "out", backend="ray")
        assert (second.proved, second.proofs, second.padded_now, second.exit_code) == (4, 2, 2, 0)
    finally:
        ray.shutdown()
    exported = {e["label"]: e for e in map(json.loads, zkinfer("jobs", "export", tmp_path / "out", "--format",
                                                                "jsonl").stdout.splitlines())}
    assert [exported[k]["slot"] for k in "abcd"] == [0, 1, 2, 0]
    padded = json.loads(open(exported["d"]["proof"]).read())
    assert [s["padding"] for s in padded["slots"]] == [False, True, True]
    # The same rows give the same outputs whatever the layout and slot (K = 2 split, K = 3 stacked).
    for k in "abcd":
        expected = 1 / (1 + math.exp(-(np.dot(WEIGHTS, ROWS[k]) + BIAS)))
        assert abs(exported[k]["outputs"][0][0] - expected) < 0.1
    assert verify_proof(k3, exported["d"]["proof"]).valid
