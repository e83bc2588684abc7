"""Equal as comparisons: ezkl 23 gives Equal's 0/1 output its input's scale.

ezkl lowers ONNX `Equal` to `HybridOp::Equals`, whose output scale is its first input's (every other
comparison, `Less`, `Greater` and the `...OrEqual`s, gives scale 0). A true result at input scale s then
reads as 2**-s instead of 1, and whatever consumes it is off by that factor: hummingbird's GEMM trees
multiply leaf values by exactly such a result, so a random forest predicted 0 where onnxruntime gave 2.21.

The rewrite: for numbers, a == b is not (a < b or a > b); for booleans, not (a xor b). Both use only
operators whose lowering gives scale 0, and on ezkl's integer representations they are exact.
"""

from __future__ import annotations

from onnx import TensorProto, helper

from .base import Rewrite, RewriteContext
from .graph import Graph

_BOOL_PRODUCERS = {"Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Equal", "And", "Or", "Not", "Xor",
                   "IsNaN", "IsInf"}


def _is_bool(graph: Graph, name: str) -> bool:
    if graph.elem_type(name) == TensorProto.BOOL:
        return True
    node = graph.producer(name)
    if node is None:
        return False
    if node.op_type == "Cast":
        return any(a.name == "to" and a.i == TensorProto.BOOL for a in node.attribute)
    return node.op_type in _BOOL_PRODUCERS


def _apply(graph: Graph, ctx: RewriteContext) -> list[str]:
    notes = []
    for node in [n for n in graph.g.node if n.op_type == "Equal" and n.domain in ("", "ai.onnx")]:
        a, b = node.input
        out = node.output[0]
        label = node.name or out
        if _is_bool(graph, a) or _is_bool(graph, b):
            x = graph.fresh(f"{label}_xor")
            new = [helper.make_node("Xor", [a, b], [x], name=graph.fresh(f"{label}_xor")),
                   helper.make_node("Not", [x], [out], name=graph.fresh(f"{label}_not"))]
            how = "not(a xor b)"
        else:
            lt, gt, either = graph.fresh(f"{label}_lt"), graph.fresh(f"{label}_gt"), graph.fresh(f"{label}_ne")
            new = [helper.make_node("Less", [a, b], [lt], name=graph.fresh(f"{label}_less")),
                   helper.make_node("Greater", [a, b], [gt], name=graph.fresh(f"{label}_greater")),
                   helper.make_node("Or", [lt, gt], [either], name=graph.fresh(f"{label}_or")),
                   helper.make_node("Not", [either], [out], name=graph.fresh(f"{label}_not"))]
            how = "not(a < b or a > b)"
        graph.replace_node(node, new)
        notes.append(f"Equal at node {label!r} -> {how}")
    return notes


EQUAL_AS_COMPARISONS = Rewrite(
    name="equal-as-comparisons",
    works_around="ezkl gives Equal's 0/1 output its input's scale, so true reads as 2^-scale",
    apply=_apply,
)
