"""Thresholds on the input's grid: every comparison of an input feature with a constant decided exactly.

ezkl feeds the circuit q = round(x * 2**s) for each input value (s: the input scale calibration chose) and
quantizes a constant threshold t as round(t * 2**u), u >= s (a constant read by a comparison is re-quantized
at the larger of its and the other operand's scale; calibration never picks a parameter scale below the
input scale). So a tree's "x > t" is decided as q * 2**(u - s) > round(t * 2**u), which is not the model's
decision on the quantized input x' = q / 2**s when t * 2**u rounds up across a grid point: for
t = 0.30001 at s = u = 13, x' = 2458 / 8192 goes the wrong way.

This rewrite runs after calibration, once s is known, and replaces each such threshold by the point of the
s-grid that makes the integer comparison the model's on x':

    x > t, x <= t   ->  t' = floor(t * 2**s) / 2**s      (q > t * 2**s  <=>  q > floor(t * 2**s))
    x < t, x >= t   ->  t' = ceil(t * 2**s) / 2**s       (q < t * 2**s  <=>  q < ceil(t * 2**s))

t' is a multiple of 2**-s, which ezkl represents exactly at every scale >= s, so the circuit's decision is
exactly the model's on x' whatever scales calibration picked. The graph the circuit is compiled from
differs from the model only by moving thresholds within one grid step, never across a grid point.

Applied where one operand is a float constant and the other is a float graph input's values, passed only
through operators that move or select elements (Gather, Reshape, ...: they keep the input's scale), and the
input is not prescaled. Comparisons on computed values (a linear score, a path score) are left alone: their
operands are not on the input grid.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from .base import Rewrite, RewriteContext
from .graph import Graph

COMPARISONS = {"Less", "LessOrEqual", "Greater", "GreaterOrEqual"}
# Operators whose output values are some of their first input's values: the input's grid and scale carry over.
SELECTING = {"Identity", "Gather", "GatherElements", "GatherND", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
             "Transpose", "Slice", "Expand"}
# The float32 mantissa: a multiple of 2**-s is exact in float32 while |t * 2**s| < 2**24.
MAX_GRID_INTEGER = 2 ** 24


def grid_input(graph: Graph, name: str) -> str | None:
    """The graph input whose values `name` holds unchanged (through selecting operators), else None."""
    inputs = set(graph.input_names)
    while name not in inputs:
        node = graph.producer(name)
        if node is None or node.op_type not in SELECTING or node.domain not in ("", "ai.onnx"):
            return None
        name = node.input[0]
    return name


def _rounding(op_type: str, constant_first: bool) -> str:
    """floor or ceil, from which strict comparison the decision reduces to (see the module docstring)."""
    above = op_type in ("Greater", "LessOrEqual")  # x > t, or its negation x <= t
    return "ceil" if above == constant_first else "floor"


def _apply(graph: Graph, ctx: RewriteContext) -> list[str]:
    if not ctx.input_scales:
        return []
    float_inputs = {vi.name for vi in graph.g.input
                    if vi.type.tensor_type.elem_type in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)}
    moved, comparisons, per_input = 0, 0, {}
    for node in [n for n in graph.g.node if n.op_type in COMPARISONS and n.domain in ("", "ai.onnx")]:
        for k in (0, 1):
            value = graph.constant(node.input[k])
            source = grid_input(graph, node.input[1 - k])
            if (value is None or source is None or source not in float_inputs or source in ctx.input_prescale
                    or source not in ctx.input_scales or not np.issubdtype(np.asarray(value).dtype, np.floating)):
                continue
            s = int(ctx.input_scales[source])
            t = np.asarray(value, dtype=np.float64)
            scaled = np.floor(t * 2.0 ** s) if _rounding(node.op_type, k == 0) == "floor" else np.ceil(t * 2.0 ** s)
            if not np.all(np.isfinite(scaled)) or np.abs(scaled).max(initial=0) >= MAX_GRID_INTEGER:
                continue  # not representable on the grid in float32: left as it is
            snapped = (scaled / 2.0 ** s).astype(np.asarray(value).dtype)
            comparisons += 1
            changed = int(np.count_nonzero(snapped != np.asarray(value)))
            if changed:
                # A fresh constant for this comparison alone: other readers of the old one keep its values.
                node.input[k] = graph.add_constant(snapped, f"{node.input[k]}_on_grid")
                moved += changed
                per_input[source] = s
            break
    if not moved:
        return []
    graph.remove_unused()
    where = ", ".join(f"{name!r} at scale {s} (grid 2^-{s})" for name, s in per_input.items()) or "the input grid"
    return [f"{moved} threshold value(s) of {comparisons} input comparison(s) moved onto {where}, so each "
            "decision is exactly the model's on the quantized input"]


THRESHOLDS_ON_GRID = Rewrite(
    name="thresholds-on-input-grid",
    works_around="ezkl rounds a threshold to nearest at its scale, so a tree decision on an input within one "
                 "step of the threshold can go the other way than the model's on that quantized input",
    apply=_apply,
)
