"""Drift monitoring: PSI itself, the build's profile, and `zkinfer monitor` on real job stores.

The statistics are checked on samples large enough for PSI to mean something (its noise floor is about
(bins - 1) * (1/N + 1/M)); the real batch proves two rows only (proofs take seconds each), so it shows what a
real run records (outputs, an out-of-range refusal's error class) and a shift far beyond any noise.
"""

import json
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_helpers import write_input_file

from pipeline import manifest as manifest_mod
from pipeline.artifacts import read_json, sha256_file
from pipeline.errors import UsageError
from pipeline.jobs.sources import JobSpec, job_id
from pipeline.jobs.store import JobStore
from pipeline.monitor import PROFILE, Thresholds, load_profile, monitor, profile_from_data, psi
from pipeline.profile import bin_shares, describe


def zkinfer(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True)


def assert_usage_error(r, *fragments):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in r.stderr, r.stderr


# ---- PSI

@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300), st.integers(2, 20))
def test_psi_of_a_sample_against_its_own_profile_is_zero(values, bins):
    entry = describe(values, "v", bins)
    assert len(entry["shares"]) == len(entry["edges"]) + 1
    assert sum(entry["shares"]) == pytest.approx(1.0)
    assert psi(bin_shares(values, entry["edges"]), entry["shares"]) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_two_large_samples_of_one_distribution_is_near_zero():
    rng = np.random.default_rng(0)
    entry = describe(rng.normal(0, 1, 20000), "v")
    value = psi(bin_shares(rng.normal(0, 1, 20000), entry["edges"]), entry["shares"])
    assert value < 0.01  # noise floor ~ 9 * (2 / 20000) = 0.0009


@settings(max_examples=25, deadline=None)
@given(st.floats(1.0, 6.0), st.sampled_from([-1, 1]), st.integers(0, 2**32 - 1))
def test_psi_of_a_shift_of_one_std_or_more_crosses_the_default_threshold(shift, sign, seed):
    rng = np.random.default_rng(seed)
    entry = describe(rng.normal(0, 1, 5000), "v")
    value = psi(bin_shares(rng.normal(sign * shift, 1, 2000), entry["edges"]), entry["shares"])
    assert value > Thresholds().psi_max


def test_small_windows_merge_bins_until_each_expects_five_rows():
    from pipeline.monitor.drift import merge_bins

    expected = [0.1] * 10
    o, e = merge_bins([0.2, 0.0, 0.3, 0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1], expected, n=12)
    assert e.tolist() == pytest.approx([0.5, 0.5]) and o.tolist() == pytest.approx([0.5, 0.5])
    o, e = merge_bins(expected, expected, n=100)
    assert len(e) == 10  # 10 expected per decile: nothing to merge
    o, e = merge_bins([1.0] + [0.0] * 9, expected, n=3)
    assert e.tolist() == pytest.approx([1.0])  # too few rows for two bins: one, and a PSI of 0
    # 12 in-distribution rows: judged on 2 bins, PSI stays far below what 10 near-empty bins would give.
    rng = np.random.default_rng(1)
    entry = describe(rng.normal(0, 1, 5000), "v")
    small = rng.normal(0, 1, 12)
    merged = psi(*merge_bins(bin_shares(small, entry["edges"]), entry["shares"], 12))
    assert merged < 0.5 < psi(bin_shares(small, entry["edges"]), entry["shares"])


def test_thresholds_are_checked():
    for bad in ({"psi_max": 0}, {"output_psi_max": float("nan")}, {"refused_max": 1.0}, {"min_rows": 0}):
        with pytest.raises(UsageError):
            Thresholds(**bad)


# ---- usage errors that need no circuit

def test_missing_store_is_a_usage_error_naming_both_layouts(tmp_path):
    r = zkinfer("monitor", tmp_path)
    assert_usage_error(r, str(tmp_path / "jobs.sqlite"), str(tmp_path / "jobs" / "jobs.sqlite"))


# ---- a real circuit

def _reference(circuit_dir):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(circuit_dir / manifest_mod.SOURCE_ONNX), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": np.asarray(x, dtype=np.float32).reshape(1, 8)})[0].ravel().tolist()


def _seed_store(out, circuit_dir, rows, start=0):
    """A job store holding `rows` as proved jobs with the model's outputs, as a batch records them (no
    proof files: the monitor reads only the store)."""
    m = manifest_mod.load(circuit_dir)
    run = _reference(circuit_dir)
    with JobStore(out, create=True) as store:
        store.bind_circuit(m.circuit_id, m.name, str(m.dir), 1)
        specs = [JobSpec(id=job_id(m.circuit_id, f"seed-{start + i}"), where=f"seed {start + i}",
                         input_data=[list(map(float, r))], input_sha256=f"seed-{start + i}")
                 for i, r in enumerate(rows)]
        store.add(specs)
        for s, r in zip(specs, rows, strict=True):
            store.mark_proved(s.id, f"proofs/{s.id}.json", [run(r)], 0.1, "test", None)
    return out


@pytest.fixture(scope="module")
def profiled_circuit(tiny_circuit, tiny_model, tmp_path_factory):
    """A copy of the tiny circuit whose profile is recomputed from 5000 samples of its calibration
    distribution (U(-2, 2) per feature): the 64-sample build profile's own noise would dominate PSI."""
    d = tmp_path_factory.mktemp("monitor") / "tiny"
    shutil.copytree(tiny_circuit, d)
    data = write_input_file(d.parent / "profile-data.json", np.random.default_rng(7).uniform(-2, 2, (5000, 8)))
    before = manifest_mod.load(d).circuit_id
    profile = profile_from_data(d, data)
    assert profile["count"] == 5000 and manifest_mod.load(d).circuit_id == before
    return d


@pytest.mark.slow
def test_build_records_an_authenticated_profile_outside_the_identity(tiny_circuit, tiny_model, tmp_path):
    m = manifest_mod.load(tiny_circuit)
    path = tiny_circuit / PROFILE
    assert m.data["artifacts"][PROFILE]["sha256"] == sha256_file(path)
    profile = load_profile(m)
    # The build was given held-out validation data (16 samples): that is what it profiles, not the 64
    # calibration samples (a calibration set may be range-stressing rather than representative).
    assert profile["count"] == 16 and profile["source"].startswith("held-out validation data")
    assert [f["name"] for f in profile["inputs"]] == [f"x[{j}]" for j in range(8)]
    assert [o["name"] for o in profile["outputs"]] == ["y[0]"]
    for f in profile["inputs"]:
        assert len(f["shares"]) == len(f["edges"]) + 1 == 10 and sum(f["shares"]) == pytest.approx(1)
        assert -2 <= f["min"] < f["max"] <= 2
    assert 0 < profile["outputs"][0]["min"] <= profile["outputs"][0]["max"] < 1  # a sigmoid

    # The identity does not cover the profile: the manifest without it gives the same id.
    without = {**m.data, "artifacts": {k: v for k, v in m.data["artifacts"].items() if k != PROFILE}}
    settings_json = read_json(tiny_circuit / manifest_mod.SETTINGS)
    assert manifest_mod.circuit_id(without, settings_json) == m.circuit_id

    # A circuit as built before profiles: monitor refuses it naming the file and both fixes; the same build
    # again only adds the profile, and the id stays.
    old = tmp_path / "old"
    shutil.copytree(tiny_circuit, old)
    (old / PROFILE).unlink()
    manifest = read_json(old / manifest_mod.MANIFEST)
    del manifest["artifacts"][PROFILE]
    (old / manifest_mod.MANIFEST).write_text(json.dumps(manifest))
    out = _seed_store(tmp_path / "run", old, np.random.default_rng(3).uniform(-2, 2, (3, 8)))
    r = zkinfer("monitor", out)
    assert_usage_error(r, str(old / PROFILE), "zkinfer circuit build", "--profile-from")

    from pipeline.build import BuildOptions, build_circuit

    result = build_circuit(tiny_model["onnx"], tiny_model["calibration"], old,
                           BuildOptions(name="tiny", task="classification"), tiny_model["validation"])
    assert not result.rebuilt and result.manifest.circuit_id == m.circuit_id
    assert read_json(old / PROFILE) == profile

    # An edited profile is refused like any modified artifact.
    manifest_mod.forget_verification_cache()
    edited = {**profile, "count": 1}
    (old / PROFILE).write_text(json.dumps(edited))
    assert_usage_error(zkinfer("monitor", out), "artifact modified", str(old / PROFILE))


@pytest.mark.slow
def test_in_distribution_rows_are_ok_and_a_shifted_window_is_drift(profiled_circuit, tmp_path):
    rng = np.random.default_rng(11)
    out = _seed_store(tmp_path / "run", profiled_circuit, rng.uniform(-2, 2, (400, 8)))
    report = monitor(out)
    d = read_json(out / "drift.json")
    assert report.verdict == d["verdict"] == "ok", report.summary_lines()
    assert d["rows"]["proved"] == 400 and d["refused"]["count"] == 0 and d["crossed"] == []
    assert max(f["psi"] for f in d["inputs"]) < 0.1 and d["outputs"][0]["psi"] < 0.1
    assert (out / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert d["thresholds"] == {"psi_max": 0.25, "output_psi_max": 0.25, "refused_max": 0.05, "min_rows": 100}

    # 150 newer rows with one feature shifted by half the calibration range.
    shifted = rng.uniform(-2, 2, (150, 8))
    shifted[:, 3] = rng.uniform(0, 2, 150)
    _seed_store(out, profiled_circuit, shifted, start=400)
    report = monitor(out, window=150, out=tmp_path / "report")
    d = report.data
    assert report.verdict == "drift" and report.exit_code == 1
    assert d["rows"]["proved"] == 150 and d["window"] == 150
    crossed_inputs = [f["name"] for f in d["inputs"] if f["crossed"]]
    assert crossed_inputs == ["x[3]"], d["crossed"]
    assert d["inputs"][3]["mean_shift_std"] > 0.5
    assert read_json(tmp_path / "report" / "drift.json")["verdict"] == "drift"

    # Too few rows for the PSI checks: insufficient, not drift (exit 0).
    r = zkinfer("monitor", out, "--window", 20, "--out", tmp_path / "small", "--no-plot")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verdict:   insufficient" in r.stdout


@pytest.mark.slow
def test_a_real_batch_of_shifted_rows_is_drift_with_refusals_counted(profiled_circuit, tmp_path):
    from pipeline import jobs

    rows = [[1.9, 1.8, 1.95, 1.85, 1.9, 1.8, 1.95, 1.85], [1.85, 1.9, 1.8, 1.95, 1.85, 1.9, 1.8, 1.95]]
    lines = [json.dumps({"id": f"shifted-{i}", "input_data": [r]}) for i, r in enumerate(rows)]
    lines.append(json.dumps({"id": "huge", "input_data": [[50.0] * 8]}))  # outside the calibrated range
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    summary = jobs.run_batch(profiled_circuit, inputs, out, workers=2)
    assert summary.proved == 2 and summary.failed == 1
    db = sqlite3.connect(out / "jobs.sqlite")
    assert db.execute("SELECT error_class FROM jobs WHERE state = 'failed'").fetchall() == [("OutOfRangeError",)]
    db.close()

    # The node layout: the same OUTDIR as DIR/jobs.
    node = tmp_path / "node"
    node.mkdir()
    shutil.move(out, node / "jobs")
    r = zkinfer("monitor", node, "--min-rows", 2)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "verdict:   drift" in r.stdout and "Traceback" not in r.stderr
    d = read_json(node / "drift.json")
    assert d["rows"]["proved"] == 2 and d["rows"]["with_outputs"] == 2
    assert d["refused"] == {"count": 1, "share": pytest.approx(1 / 3), "matched_by": {"error_class": 1}}
    assert "refused share 0.3333 > 0.05" in d["crossed"]
    # Two rows are too few to place in bins (each merged bin must expect 5): per-feature PSI cannot speak
    # (one bin, PSI 0), so the refusal alone makes it drift; the shifted rows are still within range.
    assert all(f["bins_used"] == 1 and not f["crossed"] and f["outside_profile_range"] == 0 for f in d["inputs"])
    assert d["circuit"]["circuit_id"] == manifest_mod.load(profiled_circuit).circuit_id


@pytest.mark.slow
def test_trip_suspends_only_on_drift_and_records_the_transaction(profiled_circuit, tmp_path):
    """--trip on a real anvil: nothing is sent while within thresholds; drift sends the guardian's
    suspension (the gate then reports the model suspended); a second drift run does not send it again."""
    from pipeline import chain
    from pipeline.monitor import Trip

    node = chain.chain_up(state=tmp_path / "anvil")
    try:
        ddir = tmp_path / "deployments"
        chain.deploy(profiled_circuit, node.rpc_url, "lending", deployments_dir=ddir)
        rng = np.random.default_rng(5)
        out = _seed_store(tmp_path / "run", profiled_circuit, rng.uniform(-2, 2, (200, 8)))
        trip = Trip(node.rpc_url, ddir)
        report = monitor(out, trip=trip, plot=False)
        assert report.verdict == "ok"
        assert read_json(out / "drift.json")["trip"]["sent"] is False
        assert not chain.model_suspended("tiny", node.rpc_url, deployments_dir=ddir)

        _seed_store(out, profiled_circuit, rng.uniform(1, 2, (100, 8)), start=200)
        report = monitor(out, window=100, trip=trip, plot=False)
        assert report.verdict == "drift"
        recorded = read_json(out / "drift.json")["trip"]
        assert recorded["sent"] is True and recorded["tx_hash"].startswith("0x")
        assert chain.model_suspended("tiny", node.rpc_url, deployments_dir=ddir)
        receipt = chain.Chain(node.rpc_url).w3.eth.get_transaction_receipt(recorded["tx_hash"])
        assert receipt.status == 1
        assert any("suspension sent" in line for line in report.summary_lines())

        again = monitor(out, window=100, trip=trip, plot=False)
        assert again.verdict == "drift"
        assert read_json(out / "drift.json")["trip"] == {**read_json(out / "drift.json")["trip"], "sent": False,
                                                          "already_suspended": True}
    finally:
        chain.chain_down(state=tmp_path / "anvil")
