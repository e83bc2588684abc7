"""The circuit build on a tiny real model: artifacts, manifest, fidelity gate, incremental rebuilds."""

import json
import time

import numpy as np
import pytest
from model_helpers import make_mlp_onnx, write_input_file

from pipeline import manifest as manifest_mod
from pipeline.build import FAILED_REPORT, BuildOptions, build_circuit
from pipeline.compile import CalibrationAttempt, Visibility
from pipeline.errors import FidelityError, InputError, UsageError
from pipeline.fidelity import Tolerance

pytestmark = pytest.mark.slow


def test_build_writes_every_artifact_with_hashes(tiny_circuit):
    m = manifest_mod.load(tiny_circuit)
    for name in manifest_mod.CIRCUIT_FILES:
        assert (tiny_circuit / name).is_file(), name
        assert name in m.data["artifacts"]
    manifest_mod.verify_artifacts(m)  # every recorded hash matches the file
    assert m.data["ezkl_version"] == "23.0.5"
    c = m.circuit
    assert c["visibility"] == {"input": "public", "output": "public", "param": "fixed"}
    assert c["instance_layout"]["inputs"] == 8 and c["instance_layout"]["outputs"] == 1
    assert c["num_instances"] == 9
    assert m.srs["origin"] == "dev-generated, insecure" and m.srs["insecure"] is True
    f = m.data["fidelity"]
    assert f["passed"] is True and f["max_abs_error"] <= f["tolerance"]["max_abs_error"]
    assert f["label_agreement"] is not None and f["validation_source"].startswith("held-out: 16 samples")
    assert set(m.data["timings_s"]) >= {"settings", "calibrate", "compile", "fidelity", "setup", "total"}
    samples = [json.loads(line) for line in (tiny_circuit / "samples.jsonl").read_text().splitlines()]
    assert samples and all(len(s["input_data"][0]) == 8 for s in samples)


def test_rebuild_with_nothing_changed_does_no_work(tiny_model, tiny_circuit):
    before = (tiny_circuit / "manifest.json").read_bytes()
    pk_mtime = (tiny_circuit / "pk.key").stat().st_mtime_ns
    t = time.perf_counter()
    result = build_circuit(tiny_model["onnx"], tiny_model["calibration"], tiny_circuit,
                           BuildOptions(name="tiny", task="classification"), tiny_model["validation"])
    assert time.perf_counter() - t < 10
    assert result.rebuilt is False
    assert (tiny_circuit / "manifest.json").read_bytes() == before
    assert (tiny_circuit / "pk.key").stat().st_mtime_ns == pk_mtime


def test_changed_data_rebuilds_and_failed_gate_keeps_previous_build(tmp_path, tiny_model):
    out = tmp_path / "c"
    opts = BuildOptions(max_attempts=1)
    first = build_circuit(tiny_model["onnx"], tiny_model["calibration"], out, opts)
    assert first.rebuilt
    assert first.manifest.data["fidelity"]["validation_source"].startswith("derived:")

    rng = np.random.default_rng(7)
    new_data = write_input_file(tmp_path / "cal2.json", rng.uniform(-2, 2, (48, 8)))
    second = build_circuit(tiny_model["onnx"], new_data, out, opts)
    assert second.rebuilt and second.manifest.data["build_key"] != first.manifest.data["build_key"]

    # An impossible tolerance: the gate fails, names the worst output, and the last good build survives.
    strict = BuildOptions(tolerance=Tolerance(max_abs_error=1e-12), max_attempts=2,
                          ladder=(CalibrationAttempt("resources"), CalibrationAttempt("accuracy")))
    with pytest.raises(FidelityError, match=r"after 2 calibration attempt\(s\): max abs error .* \(worst: sample \d+ "
                                            r"output 0: circuit .*, onnxruntime .*\)") as e:
        build_circuit(tiny_model["onnx"], tiny_model["calibration"], out, strict)
    assert e.value.exit_code == 1
    report = json.loads((out / FAILED_REPORT).read_text())
    assert report["passed"] is False and len(report["attempts"]) == 2 and report["worst"]["abs_error"] > 1e-12
    kept = manifest_mod.load(out)
    assert kept.circuit_id == second.manifest.circuit_id
    manifest_mod.verify_artifacts(kept)


def test_out_of_range_validation_fails_the_gate(tmp_path, tiny_model):
    """Validation inputs far outside the calibration data fall off the lookup tables: the gate says so."""
    rng = np.random.default_rng(3)
    narrow = write_input_file(tmp_path / "narrow.json", rng.uniform(0, 0.1, (32, 8)))
    wide = write_input_file(tmp_path / "wide.json", rng.uniform(-40, 40, (8, 8)))
    with pytest.raises(FidelityError, match="outside the calibrated range"):
        build_circuit(tiny_model["onnx"], narrow, tmp_path / "c", BuildOptions(max_attempts=1), wide)
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_bad_inputs_are_usage_errors(tmp_path, tiny_model):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"input_data": [[0.1] * 12]}))
    with pytest.raises(InputError, match=r"input 0 has 12 values; the model expects shape \[1, 8\]"):
        build_circuit(tiny_model["onnx"], wrong, tmp_path / "c")
    with pytest.raises(UsageError, match="calibration data not found"):
        build_circuit(tiny_model["onnx"], tmp_path / "none.json", tmp_path / "c")
    with pytest.raises(UsageError, match="ONNX model not found"):
        build_circuit(tmp_path / "none.onnx", tiny_model["calibration"], tmp_path / "c")
    with pytest.raises(UsageError, match="visibility must be one of"):
        Visibility(input="secret")


def test_batch_dimension_and_hashed_visibility(tmp_path):
    """A symbolic batch dimension takes --batch; hashed inputs put one Poseidon hash in the instances."""
    onnx_path = make_mlp_onnx(tmp_path / "b.onnx", n_in=4, hidden=4, batch="batch_size")
    rng = np.random.default_rng(0)
    cal = write_input_file(tmp_path / "cal.json", rng.uniform(-1, 1, (8, 2, 4)))
    result = build_circuit(onnx_path, cal, tmp_path / "c",
                           BuildOptions(batch_size=2, visibility=Visibility(input="hashed"), max_attempts=1))
    c = result.manifest.circuit
    assert c["batch_size"] == 2 and c["input_shapes"] == [[2, 4]] and c["output_shapes"] == [[2, 1]]
    assert c["visibility"]["input"] == "hashed"
    assert c["instance_layout"] == {"input_hashes": 1, "param_hashes": 0, "output_hashes": 0, "inputs": 0,
                                    "outputs": 2, "order": c["instance_layout"]["order"]}
    assert c["num_instances"] == 3
