"""The graph input behind constant per-feature affine steps (skl2onnx's scalers), folded into the model
that reads it, so that trees compare raw features and their thresholds go on the input grid."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ...export.builder import Affine
from ...export.trees import TreeEnsemble
from ..graph import Graph


def affine_source(graph: Graph, name: str) -> tuple[str, Affine] | None:
    """(graph input, its per-feature map) when `name` holds a * input + b feature by feature, through
    Identity and Add/Sub/Mul/Div with constant operands; None otherwise."""
    steps = []
    while name not in graph.input_names:
        node = graph.producer(name)
        if node is None:
            return None
        if node.op_type == "Identity" or (node.op_type == "Cast" and _float_to_float(graph, node)):
            name = node.input[0]
            continue
        if node.op_type not in ("Add", "Sub", "Mul", "Div") or len(node.input) != 2:
            return None
        k = 1 if graph.constant(node.input[1]) is not None else 0
        c = graph.constant(node.input[k])
        if c is None or graph.constant(node.input[1 - k]) is not None:
            return None
        c = np.asarray(c, dtype=np.float64).reshape(-1)
        if node.op_type == "Div" and (k == 0 or np.any(c == 0)):
            return None  # c / x is not affine in x
        steps.append((node.op_type, k, c))
        name = node.input[1 - k]
    n = n_features(graph, name)
    if n is None or any(c.size not in (1, n) for _, _, c in steps):
        return None
    aff = Affine.identity(n)
    for op, k, c in reversed(steps):  # from the input outwards
        a, b = {"Add": (1.0, c), "Sub": (1.0, -c) if k == 1 else (-1.0, c), "Mul": (c, 0.0),
                "Div": (1.0 / c, 0.0)}[op]
        aff = aff.then(a, b)
    return name, aff


def _float_to_float(graph: Graph, cast) -> bool:
    """A Cast that changes nothing (skl2onnx writes Cast(to=float) of float inputs before scalers)."""
    to = next((a.i for a in cast.attribute if a.name == "to"), None)
    return to == TensorProto.FLOAT and graph.elem_type(cast.input[0]) == TensorProto.FLOAT


def n_features(graph: Graph, name: str) -> int | None:
    """The last dimension of a tensor, where the graph declares it (inputs have concrete shapes by now)."""
    for vi in (*graph.g.input, *graph.g.value_info, *graph.g.output):
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if dims and dims[-1].HasField("dim_value"):
                return int(dims[-1].dim_value)
    return None


def fold_input(graph: Graph, x: str, body):
    """(the tensor to read, the body reading it): the graph input itself when `x` is an affine map of it
    that the body can absorb (trees: positive factors only), else `x` unchanged."""
    found = affine_source(graph, x)
    if found is None or found[0] == x or len(found[1].a) != body.n_features:
        return x, body
    src, aff = found
    if isinstance(body, TreeEnsemble) and np.any(aff.a <= 0):
        return x, body
    return src, body.on_affine_input(aff)
