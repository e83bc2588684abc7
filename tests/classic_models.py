"""Small seeded classic-ML models for tests: data, fitted estimators, skl2onnx / onnxmltools graphs.

Features are multiples of 1/64 in [-2, 2] (a credit-style encoded grid): every circuit scale calibration
picks (>= 6) represents them exactly, so a circuit's tree decisions can be compared with the estimator's
on the very same inputs, not only within one quantization step.
"""

from __future__ import annotations

import warnings

import numpy as np

GRID = 64


def data(n: int = 400, n_features: int = 4, seed: int = 0, grid: bool = True) -> np.ndarray:
    X = np.random.default_rng(seed).uniform(-2, 2, (n, n_features))
    return (np.round(X * GRID) / GRID if grid else X).astype(np.float32)


def binary_target(X: np.ndarray) -> np.ndarray:
    return (X[:, 0] + 0.5 * X[:, 1] - 0.4 * X[:, 2] * X[:, 3] > 0.1).astype(int)


def weak_binary_target(X: np.ndarray, seed: int = 3) -> np.ndarray:
    """Labels with a weak signal: a logistic regression's logits stay within about +-1, so the sigmoid's
    lookup table (sized by the calibrated logit range) and the circuit stay small at the default scales."""
    noise = np.random.default_rng(seed).normal(0, 4, len(X))
    return (X[:, 0] + 0.5 * X[:, 1] + noise > 0).astype(int)


def multiclass_target(X: np.ndarray) -> np.ndarray:
    return (X[:, 0] > -0.3).astype(int) + (X[:, 1] + X[:, 2] > 0.5).astype(int)


def regression_target(X: np.ndarray) -> np.ndarray:
    return (1.5 * X[:, 0] - X[:, 1] ** 2 + 0.5 * X[:, 2]).astype(np.float32)


def fitted(make, X: np.ndarray, y: np.ndarray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make().fit(X, y)


def skl2onnx_graph(estimator, X: np.ndarray, path, zipmap: bool = True):
    """What a scikit-learn user writes with skl2onnx: float input [None, F], ai.onnx.ml operators."""
    from skl2onnx import to_onnx

    options = None if zipmap else {id(estimator): {"zipmap": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = to_onnx(estimator, X[:1], options=options)
    path.write_bytes(model.SerializeToString())
    return path


def onnxmltools_graph(estimator, n_features: int, path):
    """An XGBoost or LightGBM model converted by onnxmltools (float input [None, F])."""
    from onnxmltools.convert import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    convert = convert_xgboost if type(estimator).__module__.startswith("xgboost") else convert_lightgbm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert(estimator, initial_types=[("input", FloatTensorType([None, n_features]))])
    path.write_bytes(model.SerializeToString())
    return path


def ml_node_graph(path, node, n_features: int, outputs):
    """One hand-made ai.onnx.ml node reading X [None, F]; `outputs` as (name, elem_type, shape)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
                              [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
