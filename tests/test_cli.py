"""The command line: exit codes (0 ok, 1 invalid/failed, 2 usage) and one-line errors, never a traceback."""

import json
import subprocess
import sys

import pytest

from pipeline.prooffile import evm_calldata


def zkinfer(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def assert_usage_error(r, *fragments):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in r.stderr, r.stderr


def test_missing_files_are_named(tmp_path):
    assert_usage_error(zkinfer("circuit", "build", tmp_path / "m.onnx", "--data", tmp_path / "d.json",
                               "--out", tmp_path / "c"), "ONNX model not found", "m.onnx")
    assert_usage_error(zkinfer("prove", tmp_path / "nocircuit", tmp_path / "in.json", "--out", tmp_path / "p.json"),
                       "circuit directory not found")
    (tmp_path / "c").mkdir()
    assert_usage_error(zkinfer("verify", tmp_path / "c", tmp_path / "p.json"), "manifest.json not found",
                       "not a built circuit")


def test_bad_option_value_is_usage_error(tmp_path):
    r = zkinfer("circuit", "build", "m.onnx", "--data", "d.json", "--out", tmp_path, "--input-visibility", "secret")
    assert_usage_error(r, "secret")


@pytest.mark.slow
def test_prove_and_verify_commands(tiny_circuit, tmp_path):
    sample = json.loads((tiny_circuit / "samples.jsonl").read_text().splitlines()[0])
    (tmp_path / "in.json").write_text(json.dumps(sample))
    r = zkinfer("prove", tiny_circuit, tmp_path / "in.json", "--out", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    assert "public outputs" in r.stdout
    r = zkinfer("verify", tiny_circuit, tmp_path / "p.json")
    assert r.returncode == 0 and r.stdout.startswith("valid"), r.stdout + r.stderr

    proof = json.loads((tmp_path / "p.json").read_text())
    proof["instances"][0][0] = "01" + proof["instances"][0][0][2:]
    proof["calldata"] = evm_calldata(proof)
    proof.pop("outputs")
    (tmp_path / "bad.json").write_text(json.dumps(proof))
    r = zkinfer("verify", tiny_circuit, tmp_path / "bad.json")
    assert r.returncode == 1 and r.stdout.startswith("invalid"), r.stdout + r.stderr

    (tmp_path / "short.json").write_text(json.dumps({"input_data": [[0.5] * 3]}))
    assert_usage_error(zkinfer("prove", tiny_circuit, tmp_path / "short.json", "--out", tmp_path / "x.json"),
                       "input 0 has 3 values; the circuit expects shape [1, 8]")
    (tmp_path / "notjson.json").write_text("{oops")
    assert_usage_error(zkinfer("verify", tiny_circuit, tmp_path / "notjson.json"), "not valid JSON")
    assert not (tmp_path / "x.json").exists()
