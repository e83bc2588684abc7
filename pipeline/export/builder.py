"""Emitting ONNX nodes that ezkl lowers correctly, for the classic-ML exporters and the `ai.onnx.ml` rewrite.

One `Emitter` collects nodes and initializers under fresh names; the exporters (`pipeline.export.sklearn`,
`xgboost`, `lightgbm`) put them into a new graph (`make_model`), the rewrite (`pipeline.rewrites.onnxml`)
into the user's graph in place of the operators ezkl cannot read. Both call the same builders, so a tree
ensemble or a linear model becomes the same operators whichever way it arrives.

Only operators available since ONNX opset 9 are emitted (skl2onnx writes opset-9 graphs), and only those
whose ezkl 23 lowering is right: comparisons `Less`/`Greater` (0/1 at scale 0; never `Equal`, which keeps its
input's scale), `Not`, `Cast`, `Gather` with constant indices, `Reshape`, `MatMul`, `Add`, `Sub`, `Mul`,
`Sigmoid`/`Softmax`/`Exp` (lookups) and `ArgMax`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper, numpy_helper

# The opset new graphs are written at (the zoo's); emitted nodes stay valid down to opset 9.
EXPORT_OPSET = 17
# IR version 8 is what opset 17 shipped with; tract reads it.
EXPORT_IR_VERSION = 8
INPUT_NAME = "features"
BATCH_DIM = "batch"

# Output transforms: raw scores -> what the model outputs.
TRANSFORMS = ("none", "logistic", "softmax", "exp")


class Emitter:
    """Nodes and initializers under names from `fresh` (a graph's, so they never collide)."""

    def __init__(self, fresh: Callable[[str], str]):
        self.fresh = fresh
        self.nodes: list = []
        self.initializers: list = []

    def const(self, value, base: str, dtype=np.float32) -> str:
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], base: str, output: str | None = None, **attrs) -> str:
        out = output or self.fresh(base)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(f"{base}_node"), **attrs))
        return out


def counter_names(taken=()) -> Callable[[str], str]:
    """A `fresh` for a new graph: base names as given, numbered on reuse."""
    used = set(taken)

    def fresh(base: str) -> str:
        name, i = base, 1
        while name in used:
            i += 1
            name = f"{base}_{i}"
        used.add(name)
        return name

    return fresh


@dataclass(frozen=True)
class Affine:
    """A per-feature map x -> a * x + b (scalers, and the constant Sub/Mul/Div/Add chains converters write)."""

    a: np.ndarray
    b: np.ndarray

    @classmethod
    def identity(cls, n: int) -> Affine:
        return cls(np.ones(n), np.zeros(n))

    def then(self, a, b) -> Affine:
        """This map followed by x -> a * x + b."""
        a = np.broadcast_to(np.asarray(a, dtype=np.float64), self.a.shape)
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), self.b.shape)
        return Affine(self.a * a, self.b * a + b)

    @property
    def is_identity(self) -> bool:
        return bool(np.all(self.a == 1) and np.all(self.b == 0))


def emit_transform(em: Emitter, scores: str, transform: str, output: str | None = None) -> str:
    """Raw scores [B, K] -> outputs: `logistic` (elementwise), `softmax` (over the K columns), `exp`, `none`."""
    if transform == "none":
        return em.op("Identity", [scores], "scores", output) if output else scores
    op = {"logistic": "Sigmoid", "softmax": "Softmax", "exp": "Exp"}[transform]
    attrs = {"axis": 1} if op == "Softmax" else {}
    return em.op(op, [scores], transform, output, **attrs)


def emit_linear(em: Emitter, x: str, weights: np.ndarray, bias: np.ndarray) -> str:
    """x [B, F] @ weights [F, K] + bias [K] -> raw scores [B, K]."""
    xw = em.op("MatMul", [x, em.const(weights, "weights")], "linear")
    return em.op("Add", [xw, em.const(np.asarray(bias).reshape(-1), "bias")], "linear_bias")


def make_model(em: Emitter, n_features: int, outputs: list[tuple[str, int]], graph_name: str,
               input_name: str = INPUT_NAME, doc: str = ""):
    """A standalone model: one float input [batch, n_features], float outputs [batch, k] as (name, k)."""
    import onnx

    graph = helper.make_graph(
        em.nodes, graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [BATCH_DIM, n_features])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH_DIM, k]) for name, k in outputs],
        initializer=em.initializers, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", EXPORT_OPSET)], producer_name="zkinfer")
    model.ir_version = EXPORT_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model
