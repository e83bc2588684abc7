"""Classifier outputs in onnxruntime's conventions: class labels, binary and multiclass probabilities, and
ZipMap's maps as one tensor."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from ...export.builder import Emitter, emit_transform
from ..graph import Graph
from .attributes import Refused


def class_labels(attrs: dict, node) -> list[int]:
    if attrs.get("classlabels_strings"):
        raise Refused("outputs string class labels (classlabels_strings) and a circuit outputs numbers only: "
                      "fit the model on integer labels or drop the label output")
    return [int(v) for v in attrs.get("classlabels_int64s", attrs.get("classlabels_ints", []))]


def _emit_label(em: Emitter, index_i64: str, labels: list[int], output: str) -> None:
    """The class label [N] from a class index [N] (int64)."""
    if labels == list(range(len(labels))):
        em.op("Identity", [index_i64], "label", output)
    else:
        em.op("Gather", [em.const(labels, "class_labels", np.int64), index_i64], "label", output, axis=0)


def binary_outputs(em: Emitter, score: str, transform: str, negative: str, labels: list[int], threshold: float,
                   outputs) -> None:
    """One score s [N, 1] -> onnxruntime's binary outputs: label (s > threshold) and [p0, p1], with
    p1 = transform(s) and p0 = 1 - p1, or -s (`negative` "negate")."""
    label_out, scores_out = outputs
    if label_out:
        above = em.op("Greater", [score, em.const(np.float32(threshold), "label_threshold")], "above")
        index = em.op("Cast", [above], "above_i64", to=TensorProto.INT64)
        index = em.op("Reshape", [index, em.const([-1], "flat", np.int64)], "class_index")
        _emit_label(em, index, labels, label_out)
    if scores_out:
        p1 = {"none": lambda: score, "logistic": lambda: em.op("Sigmoid", [score], "p1")}[transform]()
        if negative == "negate":
            p0 = em.op("Neg", [p1], "p0")
        else:
            p0 = em.op("Sub", [em.const(np.float32(1.0), "one"), p1], "p0")
        em.op("Concat", [p0, p1], "binary_scores", scores_out, axis=1)


def multiclass_outputs(em: Emitter, raw: str, transform: str, labels: list[int], outputs) -> None:
    label_out, scores_out = outputs
    if label_out:
        index = em.op("ArgMax", [raw], "class_index", axis=1, keepdims=0)
        _emit_label(em, index, labels, label_out)
    if scores_out:
        emit_transform(em, raw, transform, scores_out)


def _used(graph: Graph, name: str) -> bool:
    return bool(name) and (graph.is_graph_output(name) or bool(graph.consumers(name)))


def classifier_outputs(graph: Graph, node) -> tuple[str | None, str | None]:
    return tuple(o if _used(graph, o) else None for o in (list(node.output) + ["", ""])[:2])


def zipmap(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    keys = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings") or []
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    if order == list(range(len(keys))):
        em.op("Identity", [node.input[0]], "zipmap", node.output[0])
    else:  # the reference reads each map's values in key order
        em.op("Gather", [node.input[0], em.const(order, "zipmap_order", np.int64)], "zipmap", node.output[0], axis=1)
    _as_float_tensor(graph, node.output[0])
    return [f"ZipMap {node.name or node.output[0]!r} -> the probabilities as a tensor"]


def _as_float_tensor(graph: Graph, name: str) -> None:
    for vi in graph.g.output:
        if vi.name == name:
            vi.type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, None))
