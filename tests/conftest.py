"""Shared fixtures: a dev SRS cache per test session, and a tiny real model built into a real circuit once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

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


def make_mlp_onnx(path: Path, n_in: int = 8, hidden: int = 16, seed: int = 0, batch: int | str = 1) -> Path:
    """An n_in-hidden-1 MLP with a sigmoid head, built with onnx.helper (no torch): a stand-in for a
    credit model, small enough to prove in seconds."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (n_in, hidden)).astype(np.float32)
    b1 = rng.normal(0, 0.1, hidden).astype(np.float32)
    w2 = rng.normal(0, 0.5, (hidden, 1)).astype(np.float32)
    b2 = np.array([0.1], dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="dense1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="dense1_bias"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu1"),
        helper.make_node("MatMul", ["h2", "w2"], ["o0"], name="dense2"),
        helper.make_node("Add", ["o0", "b2"], ["o1"], name="dense2_bias"),
        helper.make_node("Sigmoid", ["o1"], ["y"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 1])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_input_file(path: Path, samples: np.ndarray) -> Path:
    """ezkl input.json with samples back to back for a single-input model."""
    path.write_text(json.dumps({"input_data": [np.asarray(samples, dtype=float).ravel().tolist()]}))
    return path


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
