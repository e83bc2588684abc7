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


class ScoreModel:
    """A model as raw scores [B, K] (`raw`, `emit_raw`) followed by an output transform (`transform`)."""

    transform: str

    def raw(self, X) -> np.ndarray:
        raise NotImplementedError

    def emit_raw(self, em: Emitter, x: str) -> str:
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        return apply_transform(self.raw(X), self.transform)

    def emit(self, em: Emitter, x: str, output: str | None = None) -> str:
        """Nodes computing the model's outputs from x [B, F]; returns the outputs' name."""
        return emit_transform(em, self.emit_raw(em, x), self.transform, output)


@dataclass
class LinearModel(ScoreModel):
    """raw = x @ weights + bias ([F, K] and [K]); output = transform(raw)."""

    weights: np.ndarray
    bias: np.ndarray
    transform: str = "none"

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.bias = np.asarray(self.bias, dtype=np.float64).reshape(-1)
        if self.weights.ndim != 2 or self.weights.shape[1] != len(self.bias):
            raise ValueError(f"weights {self.weights.shape} and bias {self.bias.shape} do not fit")

    @property
    def n_features(self) -> int:
        return self.weights.shape[0]

    @property
    def n_outputs(self) -> int:
        return len(self.bias)

    def on_affine_input(self, affine: Affine) -> LinearModel:
        """The same model reading x where it read a * x + b: (a x + b) W + c = x (diag(a) W) + (b W + c)."""
        if affine.is_identity:
            return self
        return LinearModel(affine.a[:, None] * self.weights, affine.b @ self.weights + self.bias, self.transform)

    def raw(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64).reshape(-1, self.n_features) @ self.weights + self.bias

    def emit_raw(self, em: Emitter, x: str) -> str:
        xw = em.op("MatMul", [x, em.const(self.weights, "weights")], "linear")
        return em.op("Add", [xw, em.const(self.bias, "bias")], "linear_score")


def apply_transform(raw: np.ndarray, transform: str) -> np.ndarray:
    """The numpy twin of `emit_transform`."""
    raw = np.asarray(raw, dtype=np.float64)
    if transform == "logistic":
        return 1.0 / (1.0 + np.exp(-raw))
    if transform == "softmax":
        e = np.exp(raw - raw.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if transform == "exp":
        return np.exp(raw)
    return raw


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
