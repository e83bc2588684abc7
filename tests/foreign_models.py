"""ONNX models of the kinds users bring that zkinfer's own exporters did not write: tree ensembles converted
by hummingbird, graphs with float64/int64 inputs, tract- and skl2onnx-style symbolic dimensions, raw-amount
features normalized inside the graph. Small and seeded, so tests build real circuits from them in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(model: onnx.ModelProto, path: Path, ir_version: int = 8) -> Path:
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_data(path: Path, samples: np.ndarray, output_data=None) -> Path:
    obj = {"input_data": [np.asarray(samples, dtype=float).ravel().tolist()]}
    if output_data is not None:
        obj["output_data"] = output_data
    path.write_text(json.dumps(obj))
    return path


def tree_data(n: int = 300, n_features: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, n_features)).astype(np.float32)
    y = (2 * X[:, 0] + X[:, 1] - X[:, 2] * X[:, 3]).astype(np.float32)
    return X, y


def hummingbird_onnx(estimator, X: np.ndarray, path: Path, strategy: str) -> Path:
    """A fitted scikit-learn tree ensemble converted by hummingbird (`gemm` or `tree_trav`), exported from
    its torch model with torch's TorchScript exporter and a dynamic batch axis, as hummingbird users do."""
    import torch
    from hummingbird.ml import convert

    torch_model = convert(estimator, "torch", extra_config={"tree_implementation": strategy}).model
    torch.onnx.export(torch_model, torch.from_numpy(X[:1]), str(path), input_names=["input"],
                      output_names=["output"], opset_version=15, dynamo=False,
                      dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}})
    return path


def _model(nodes, inputs, outputs, initializers, opset: int = 17) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(v, k) for k, v in initializers.items()]
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def int8_gemm_tree(path: Path, seed: int = 0) -> tuple[Path, dict]:
    """One depth-2 decision tree in the GEMM form older hummingbird versions write: the node decisions are
    cast to int8 and multiplied with int8 path matrices, a graph onnxruntime refuses to load (no int8
    MatMul kernel) although it is valid ONNX; leaves are matched with Equal.

    Returns the path and the tree's parameters (for computing expected outputs in numpy)."""
    rng = np.random.default_rng(seed)
    feature = np.array([0, 1, 2], dtype=np.int64)
    threshold = rng.uniform(-0.5, 0.5, 3).astype(np.float32)
    # node 0 is the root; node 1 its left child, node 2 its right child; leaves 0..3 left to right.
    path_matrix = np.array([[1, 1, -1, -1], [1, -1, 0, 0], [0, 0, 1, -1]], dtype=np.int8)
    left_turns = np.array([2, 1, 1, 0], dtype=np.int8)
    leaf_value = np.array([[0.5], [-1.25], [2.0], [0.75]], dtype=np.float32)
    nodes = [
        helper.make_node("Gather", ["x", "feature"], ["tested"], axis=1),
        helper.make_node("Less", ["tested", "threshold"], ["left_bool"]),
        helper.make_node("Cast", ["left_bool"], ["left_i8"], to=TensorProto.INT8),
        helper.make_node("MatMul", ["left_i8", "path"], ["score"]),
        helper.make_node("Equal", ["score", "left_turns"], ["reached_bool"]),
        helper.make_node("Cast", ["reached_bool"], ["reached"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["reached", "leaf_value"], ["y"]),
    ]
    # score[leaf] = (left turns on its path taken) - (right turns on its path not taken): it equals the
    # leaf's number of left turns exactly for the one leaf reached.
    inits = {"feature": feature, "threshold": threshold, "path": path_matrix, "left_turns": left_turns,
             "leaf_value": leaf_value}
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])], inits)
    return save(model, path), inits


def int8_gemm_tree_predict(params: dict, X: np.ndarray) -> np.ndarray:
    left = (X[:, params["feature"]] < params["threshold"]).astype(np.int64)
    score = left @ params["path"].astype(np.int64)
    reached = (score == params["left_turns"]).astype(np.float32)
    return reached @ params["leaf_value"]


def float64_linear_classifier(path: Path, n_features: int = 6, seed: int = 0) -> Path:
    """A linear SVM-like classifier whose graph input is float64 and whose output is an int64 label."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["s0"]),
        helper.make_node("Add", ["s0", "b"], ["s"]),
        helper.make_node("Reshape", ["s", "flat"], ["score"]),
        helper.make_node("Greater", ["score", "zero"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["classes", "index"], ["label"], axis=0),
    ]
    inits = {"w": rng.normal(0, 1, (n_features, 1)), "b": np.array([0.1]), "flat": np.array([-1], dtype=np.int64),
             "zero": np.array(0.0), "classes": np.array([0, 1], dtype=np.int64)}
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch_size", n_features])],
                   [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch_size"])], inits)
    return save(model, path)


def int64_input_model(path: Path, seed: int = 0) -> Path:
    """Integer inputs (counts): y = sum(w * x) with x int64, cast to float inside the graph."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Cast", ["counts"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["xf", "w"], ["y"]),
    ]
    inits = {"w": rng.uniform(-0.5, 0.5, (5, 2)).astype(np.float32)}
    model = _model(nodes, [helper.make_tensor_value_info("counts", TensorProto.INT64, [1, 5])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    return save(model, path)


def symbolic_dims_model(path: Path, seed: int = 0) -> Path:
    """A softmax classifier with two outputs whose shapes carry dimensions only tract or skl2onnx would
    name that way: an unnamed batch axis on the input, a tract-style `Softmaxprobs_dim_1` on the
    probabilities, a `ReduceSumscore_dim_0` on the score."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        helper.make_node("ReduceSum", ["logits", "axes"], ["score"], keepdims=0),
    ]
    inits = {"w": rng.normal(0, 1, (4, 3)).astype(np.float32), "axes": np.array([1], dtype=np.int64)}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    outputs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", "Softmaxprobs_dim_1"]),
               helper.make_tensor_value_info("score", TensorProto.FLOAT, ["ReduceSumscore_dim_0"])]
    model = _model(nodes, [x], outputs, inits)
    return save(model, path)


# Raw borrower features: income and loan in dollars, age in years, utilization in [0, 1], FICO score.
DOLLAR_RANGES = np.array([[20e3, 250e3], [1e3, 60e3], [18, 80], [0, 1], [300, 850]])


def dollar_data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = DOLLAR_RANGES[:, 0], DOLLAR_RANGES[:, 1]
    return (lo + rng.uniform(0, 1, (n, len(lo))) * (hi - lo)).astype(np.float32)


def dollar_credit_mlp(path: Path, seed: int = 0) -> Path:
    """A credit MLP on raw dollar features with its scaler inside the graph ((x - mean) / std, then
    Gemm-Relu-Gemm-Sigmoid), as a torch model with the scaler as buffers exports."""
    rng = np.random.default_rng(seed)
    X = dollar_data(2000, seed + 1)
    mean, std = X.mean(axis=0), X.std(axis=0)
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centered"]),
        helper.make_node("Div", ["centered", "std"], ["z"]),
        helper.make_node("Gemm", ["z", "w1", "b1"], ["h0"], transB=1),
        helper.make_node("Relu", ["h0"], ["h"]),
        helper.make_node("Gemm", ["h", "w2", "b2"], ["logit"], transB=1),
        helper.make_node("Sigmoid", ["logit"], ["pd"]),
    ]
    inits = {"mean": mean, "std": std, "w1": rng.normal(0, 0.6, (12, 5)).astype(np.float32),
             "b1": rng.normal(0, 0.1, 12).astype(np.float32), "w2": rng.normal(0, 0.6, (1, 12)).astype(np.float32),
             "b2": np.array([-0.2], dtype=np.float32)}
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])],
                   [helper.make_tensor_value_info("pd", TensorProto.FLOAT, [1, 1])], inits)
    return save(model, path)


def dollar_batchnorm_mlp(path: Path, seed: int = 0) -> Path:
    """The same kind of model with its normalization as a BatchNormalization node (torch's BatchNorm1d in
    eval mode exports so), then Gemm-Sigmoid."""
    rng = np.random.default_rng(seed)
    X = dollar_data(2000, seed + 1)
    nodes = [
        helper.make_node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"], ["z"], epsilon=1e-5),
        helper.make_node("Gemm", ["z", "w", "b"], ["logit"], transB=1),
        helper.make_node("Sigmoid", ["logit"], ["pd"]),
    ]
    inits = {"gamma": rng.uniform(0.5, 1.5, 5).astype(np.float32), "beta": rng.normal(0, 0.1, 5).astype(np.float32),
             "mean": X.mean(axis=0), "var": X.var(axis=0), "w": rng.normal(0, 0.6, (1, 5)).astype(np.float32),
             "b": np.array([0.1], dtype=np.float32)}
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])],
                   [helper.make_tensor_value_info("pd", TensorProto.FLOAT, [1, 1])], inits)
    return save(model, path)


def prove_and_verify(circuit_dir, sample, tmp_path):
    """A real proof of one input, verified; returns the proven outputs, flattened."""
    from pipeline.prove import Prover
    from pipeline.verify import verify_proof

    proof_path = tmp_path / "proof.json"
    Prover(circuit_dir).prove(sample, proof_path)
    result = verify_proof(circuit_dir, proof_path)
    assert result.valid, result.reason
    return np.concatenate([np.asarray(t, dtype=float) for t in result.outputs])
