"""Operators on the features: Scaler, Normalizer, ArrayFeatureExtractor, Binarizer, Imputer,
FeatureVectorizer."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ...export.builder import Emitter
from ..graph import Graph
from .attributes import Refused
from .inputs import n_features


def scaler(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    offset = np.asarray(attrs.get("offset", [0.0]), dtype=np.float32)
    scale = np.asarray(attrs.get("scale", [1.0]), dtype=np.float32)
    centered = em.op("Sub", [node.input[0], em.const(offset, "scaler_offset")], "scaler_centered")
    em.op("Mul", [centered, em.const(scale, "scaler_scale")], "scaler", node.output[0])
    return [f"Scaler {node.name or node.output[0]!r} -> (x - offset) * scale"]


def normalizer(graph: Graph, node, em: Emitter, attrs: dict, stochastic: set) -> list[str]:
    norm = attrs.get("norm", "MAX")
    x = node.input[0]
    if norm == "L1" and x in stochastic:
        em.op("Identity", [x], "normalized", node.output[0])
        stochastic.add(node.output[0])
        return [f"Normalizer L1 {node.name or node.output[0]!r} -> identity (its input rows already sum to 1)"]
    if norm not in ("L1", "L2"):
        raise Refused(f"norm {norm} is not supported (L1 and L2 are)")
    n = n_features(graph, x)
    if not n:
        raise Refused("the input's feature count is unknown")
    ones = em.const(np.ones((n, 1)), "ones")
    if norm == "L1":
        total = em.op("MatMul", [em.op("Abs", [x], "abs"), ones], "l1")
    else:
        total = em.op("Sqrt", [em.op("MatMul", [em.op("Mul", [x, x], "square"), ones], "sum_sq")], "l2")
    em.op("Mul", [x, em.op("Reciprocal", [total], "inverse_norm")], "normalized", node.output[0])
    return [f"Normalizer {norm} {node.name or node.output[0]!r} -> x / norm"]


def array_feature_extractor(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    idx = graph.constant(node.input[1])
    if idx is None:
        raise Refused("indices that are not constant")
    em.op("Gather", [node.input[0], em.const(np.asarray(idx).reshape(-1), "columns", np.int64)], "columns",
          node.output[0], axis=1)
    return [f"ArrayFeatureExtractor {node.name or node.output[0]!r} -> Gather"]


def binarizer(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    above = em.op("Greater", [node.input[0], em.const(np.float32(attrs.get("threshold", 0.0)), "threshold")], "bin")
    em.op("Cast", [above], "binarized", node.output[0], to=TensorProto.FLOAT)
    return [f"Binarizer {node.name or node.output[0]!r} -> Cast(x > threshold)"]


def imputer(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    replaced = attrs.get("replaced_value_float", float("nan"))
    if not np.isnan(replaced):
        raise Refused(f"replacing {replaced} (not NaN) is not supported")
    em.op("Identity", [node.input[0]], "imputed", node.output[0])
    return [f"Imputer {node.name or node.output[0]!r} -> identity (circuit inputs are never NaN)"]


def feature_vectorizer(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    em.op("Concat", list(node.input), "features", node.output[0], axis=1)
    return [f"FeatureVectorizer {node.name or node.output[0]!r} -> Concat"]
