"""LinearRegressor and LinearClassifier -> MatMul + Add, through `zkinfer export`'s linear model."""

from __future__ import annotations

import numpy as np

from ...export.builder import Emitter, LinearModel
from ..graph import Graph
from .attributes import Refused, floats, post_transform
from .inputs import fold_input
from .outputs import binary_outputs, class_labels, classifier_outputs, multiclass_outputs


def _linear_body(graph: Graph, node, attrs: dict, n_targets_default: int | None = None):
    coef = np.asarray(attrs["coefficients"], dtype=np.float32).astype(np.float64)
    intercepts = floats(attrs, "intercepts")
    k = int(attrs.get("targets", n_targets_default or (len(intercepts) if intercepts is not None else 1)))
    weights = coef.reshape(k, -1).T
    bias = intercepts if intercepts is not None and len(intercepts) else np.zeros(k)
    x = node.input[0]
    return fold_input(graph, x, LinearModel(weights, bias))


def linear_regressor(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    x, body = _linear_body(graph, node, attrs)
    body.transform = post_transform(attrs)
    body.emit(em, x, node.output[0])
    return [f"LinearRegressor {node.name or node.output[0]!r} -> MatMul + Add"]


def linear_classifier(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    outputs = classifier_outputs(graph, node)
    labels = class_labels(attrs, node) if outputs[0] else []
    intercepts = floats(attrs, "intercepts")
    x, body = _linear_body(graph, node, attrs, len(intercepts))
    transform = post_transform(attrs)
    raw = body.emit_raw(em, x)
    if body.n_outputs == 1:
        if len(labels) != 2 and outputs[0]:
            raise Refused("one score needs exactly two class labels")
        if transform == "softmax":
            raise Refused("SOFTMAX over a single score is not supported")
        binary_outputs(em, raw, transform, "one_minus", labels or [0, 1], 0.0, outputs)
    else:
        multiclass_outputs(em, raw, transform, labels, outputs)
    return [f"LinearClassifier {node.name or node.output[0]!r} ({body.n_outputs} scores) -> MatMul + Add"]
