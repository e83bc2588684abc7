"""Small real models and data files for tests (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


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


def make_slots_onnx(path: Path, weights: list[float], bias: float = 0.0, k: int = 2, split: bool = True) -> Path:
    """y = sigmoid(x @ weights + bias) for K inferences at once: K inputs [1, n] concatenated (`split`, like
    `--batch K --split-inputs`), or one input [K, n] (like `--batch K`). Output [K, 1], row i for slot i."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = len(weights)
    inits = [numpy_helper.from_array(np.asarray(weights, dtype=np.float32).reshape(n, 1), "w"),
             numpy_helper.from_array(np.asarray([bias], dtype=np.float32), "b")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["y"])]
    if split:
        nodes.insert(0, helper.make_node("Concat", [f"x{i}" for i in range(k)], ["x"], axis=0))
        inputs = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [1, n]) for i in range(k)]
    else:
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [k, n])]
    graph = helper.make_graph(nodes, "slots", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [k, 1])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
