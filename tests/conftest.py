"""Shared fixtures: a dev SRS cache per test session, and a tiny real model built into a real circuit once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from model_helpers import make_mlp_onnx, write_input_file

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def session_srs_dir(tmp_path_factory):
    """Dev SRS files are generated once per test session (they take seconds each), never in ~/.cache."""
    d = os.environ.get("ZKINFER_TEST_SRS_DIR") or str(tmp_path_factory.mktemp("srs"))
    old = os.environ.get("ZKINFER_SRS_DIR")
    os.environ["ZKINFER_SRS_DIR"] = d
    yield Path(d)
    if old is None:
        os.environ.pop("ZKINFER_SRS_DIR", None)
    else:
        os.environ["ZKINFER_SRS_DIR"] = old


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_model")
    rng = np.random.default_rng(1)
    onnx_path = make_mlp_onnx(d / "tiny.onnx")
    cal = write_input_file(d / "calibration.json", rng.uniform(-2, 2, (64, 8)))
    val = write_input_file(d / "validation.json", rng.uniform(-1.8, 1.8, (16, 8)))
    return {"dir": d, "onnx": onnx_path, "calibration": cal, "validation": val}


@pytest.fixture(scope="session")
def tiny_circuit(tiny_model, tmp_path_factory):
    """The tiny MLP built into a real circuit (real ezkl, dev SRS): shared by every test that only reads it."""
    from pipeline.build import BuildOptions, build_circuit

    out = tmp_path_factory.mktemp("circuits") / "tiny"
    result = build_circuit(tiny_model["onnx"], tiny_model["calibration"], out,
                           BuildOptions(name="tiny", task="classification"), tiny_model["validation"])
    return result.manifest.dir


@pytest.fixture(scope="session")
def tiny_proof(tiny_circuit, tmp_path_factory):
    """One real proof from the tiny circuit (its first saved sample)."""
    from pipeline.prove import Prover

    sample = json.loads((tiny_circuit / "samples.jsonl").read_text().splitlines()[0])
    path = tmp_path_factory.mktemp("proofs") / "proof.json"
    Prover(tiny_circuit).prove(sample["input_data"], path)
    return path


@pytest.fixture(scope="session")
def reliability_subject(tmp_path_factory):
    """The reliability checks' circuit (`pipeline.reliability.subject`: 4 features, logrows ~13), built once."""
    from pipeline.reliability import subject

    return subject.build(tmp_path_factory.mktemp("reliability"))
