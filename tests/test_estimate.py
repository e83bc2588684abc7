"""Cost before you build: the model's shape on synthetic settings, a real estimate of the tiny model (prepare,
settings, calibration; no keys), and the CLI's exit codes."""

import subprocess
import sys

from pipeline import estimate, resources
from pipeline.compile import CircuitSettings


def _settings(logrows: int, instance_shapes=([1, 1],), visibility=None) -> CircuitSettings:
    raw = {"run_args": {"num_inner_cols": 2}, "total_assignments": 1000, "required_lookups": [{"Sigmoid": {}}],
           "required_range_checks": [[0, 1]]}
    return CircuitSettings(logrows=logrows, input_scales=[7], output_scales=[7], param_scale=7, lookup_range=(-1, 1),
                           instance_shapes=[list(s) for s in instance_shapes],
                           visibility=visibility or {"input": "public", "output": "public", "param": "fixed"}, raw=raw)


def test_model_follows_rows_instances_and_verifier():
    small, tall = estimate.from_settings(_settings(15), cpus=2), estimate.from_settings(_settings(17), cpus=2)
    assert tall.pk_bytes == 4 * small.pk_bytes == 4 * resources.estimate(_settings(15)).pk_bytes
    assert tall.prove_s > small.prove_s > estimate.PROVE_S_FIXED
    assert estimate.from_settings(_settings(15), cpus=4).prove_s < small.prove_s
    wide = estimate.from_settings(_settings(15, instance_shapes=([1, 8], [1, 1])))
    assert wide.instances == 9 and small.instances == 1
    assert wide.verify_gas - small.verify_gas == 8 * estimate.VERIFY_GAS_PER_INSTANCE
    hashed = _settings(15, visibility={"input": "hashed", "output": "public", "param": "fixed"})
    assert estimate.instance_count(hashed) == 2
    assert (resources.estimate(hashed).pk_bytes - small.pk_bytes
            == resources.FIELD_BYTES * 2**15 * resources.POLYS_FOR_POSEIDON)
    reusable = estimate.from_settings(_settings(15), verifier_mode="reusable")
    assert reusable.verify_gas == small.verify_gas + estimate.REUSABLE_EXTRA_GAS
    line = small.describe()
    assert line.startswith("estimate: logrows 15,") and f"{small.verify_gas:,} gas" in line
    filled = _settings(19)
    filled.raw["num_rows"] = 462_080
    assert estimate.from_settings(filled).describe().startswith(
        "estimate: logrows 19 (462,080 of 524,288 rows used), ")


def test_estimate_of_the_tiny_model(tiny_model):
    e = estimate.estimate_circuit(tiny_model["onnx"], tiny_model["calibration"])
    assert 10 <= e.logrows <= 22 and e.advice_columns >= 1
    assert e.instances == 9  # 8 public inputs, 1 public output
    assert 1 << 20 < e.pk_bytes < e.peak_bytes < 16 << 30
    assert 0 < e.prove_s < 600 and 300_000 < e.verify_gas < 3_000_000


def test_estimate_cli(tiny_model, tmp_path):
    def zkinfer(*args):
        return subprocess.run([sys.executable, "-m", "pipeline.cli", "circuit", "estimate", *map(str, args)],
                              capture_output=True, text=True)

    r = zkinfer(tmp_path / "missing.onnx", "--data", tiny_model["calibration"])
    assert r.returncode == 2 and "ONNX model not found" in r.stderr and "Traceback" not in r.stderr
    r = zkinfer(tiny_model["onnx"], "--data", tmp_path / "missing.json")
    assert r.returncode == 2 and "calibration data not found" in r.stderr
    r = zkinfer(tiny_model["onnx"], "--data", tiny_model["calibration"], "--verifier", "reusable")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("estimate: logrows") and "reusable verifier" in r.stdout
