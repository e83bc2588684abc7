"""Quantized models: int8/uint8 graphs rewritten into float operators that compute the quantized arithmetic.

ezkl 23 cannot compile what onnxruntime.quantization (or PyTorch's quantized export) writes: tract knows
`QuantizeLinear`/`DequantizeLinear` only for uint8 and maps them to identities (dropping the rounding and
the saturation), reads the int8 forms as unknown ops (static QDQ: "General synthesis error"), has no
QOperator kernels (`QLinearMatMul`, `QLinearAdd`, `QGemm`: Unimplemented) and panics on dynamic quantization
(`DynamicQuantizeLinear`). This rewrite replaces every quantized operator by float operators ezkl lowers
correctly and which compute what the quantized model computes:

    QuantizeLinear(x, s, z)        Clip(Round(x * (1/s)) + z, qmin, qmax)        (Round: half to even)
    DequantizeLinear(q, s, z)      (q - z) * s, carried out only where a real number is needed (below)
    QLinearMatMul, QLinearConv, QGemm, QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu,
    QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat
                                   expanded into DequantizeLinear -> the float operator -> QuantizeLinear
    DynamicQuantizeLinear(x)       the scale (max(x, 0) - min(x, 0)) / 255 and zero point computed in the graph
    MatMulInteger, ConvInteger     MatMul / Conv of (q - z) with the constant (w - z_w)

Per-tensor and per-channel (axis) scales; int8, uint8, int16, uint16 values, int32 biases. Any other
quantized operator (a com.microsoft QLinearSoftmax, QAttention, ...), a data-dependent scale outside dynamic
quantization, blocked quantization and opsets below 13 are refused with one line naming the operator and node.

**Integers stay integers.** A dequantized tensor is kept as (its integers, its scale): MatMul, Gemm and
Conv with quantized weights, a bias quantized at the accumulator's scale (onnxruntime writes int32 biases at
s_x * s_w), GlobalAveragePool (as a sum, 1/(H*W) going into the scale), Relu, MaxPool and reshapes work on
the integers, so the circuit computes exactly the accumulator sum((q - z)(w - z_w)) + bias that onnxruntime's
integer kernels compute. Integers are exact in ezkl's fixed point at any scale (v is held as v * 2^p), so
are their sums and products. Elementwise functions between a DequantizeLinear and a QuantizeLinear (Sigmoid,
Tanh, ..., QLinearSigmoid) become what onnxruntime's QLinearSigmoid is, a table over the input's (at most
2^8) integers, evaluated in float32 when the graph is rewritten and computed in the circuit exactly as
T[lo] + sum_k (T[k] - T[k-1]) * [v > k - 1/2] (comparisons of integers are exact 0/1 in ezkl), when
values x steps <= MAX_TABLE_COMPARISONS; beyond that ezkl's float lookup runs (LeakyRelu: ezkl's LeakyRelu on
the integers, its slope held at the parameter scale), and the rewrite says so in the manifest.

**Where the circuit rounds.** Only where an integer tensor meets its float scale:

- Requantizing: the multiplier M (accumulator scale / output scale, in float32 as onnxruntime computes it)
  is m * 2^-k with m an integer below 2^24 (its float32 mantissa): the value is shifted (free in ezkl: only
  its scale changes) and multiplied by the integer m, and ezkl's rescaling divides by 2^k, rounding once to
  the circuit's grid 2^-p (p: the calibrated scale). A multiplier below 2^-4 takes two such stages, c * 2^j
  then 2^-j, each exact, because ezkl's rescaling can divide by at most 2^27. Then Round (half to even)
  and saturation, as onnxruntime does. The circuit's integer differs from onnxruntime's only where acc * M
  lies within 2^-(p+1) of a .5 boundary: the grid rounding lands on the .5 and Round picks the even
  neighbour, the wrong one half the time. That is about 2^-(p+1) per requantized value (1 in 16,000 at
  p = 13); exact ties (acc * M = n + 1/2) are on the grid and round half to even.
- The first QuantizeLinear of a float input sees x as ezkl quantized it. The circuit is fed x * 2^j with
  2^j about 1/s (`input_prescale`, applied by zkinfer wherever it hands inputs to ezkl), so ezkl's input
  grid 2^-g (g: the input scale) is a grid on x / s, the quantizer's own units, within a factor of 2: q
  differs only where x / s lies within about 2^-g of a .5 boundary.
- Dequantizing for a float consumer (a float output, a Sigmoid beyond the table budget): (q - z) * s at the
  grid 2^-p; float ops then run as ezkl runs them (lookup tables at the calibrated scale).
- Dynamic quantization's scale depends on the data: x * 255 / range uses ezkl's reciprocal of the range at
  the calibrated scale, so q can be one step off more often than in static models (measured in the tests).
- Magnitudes: ezkl range-checks a rescaled value, and every comparison, within 2^28 at the calibrated scale
  (2^15 real at p = 13). Accumulators are never compared; a product of two quantized tensors (QLinearMul) is
  shifted by 2^-PRODUCT_SHIFT first (exact for p >= 8), and a dynamic accumulator takes its constant scale
  before it meets the data-dependent one.

**In float32** (onnxruntime with graph optimizations off, onnx.reference) the rewritten graph computes
exactly what onnxruntime's quantized kernels compute, except where float32 rounds x * (1/s) and x / s apart
at a .5 boundary, and except AveragePool: onnxruntime averages in float32 (QDQ AveragePool and its
QLinearAveragePool kernel alike), so where the exact average is n + 1/2 its result falls either side, while
the rewrite rounds the exact average half to even.

The rewrite asks ezkl to hold integer-valued constants at scale 0 (`rebase_frac_zero_constants`: m keeps
24 bits whatever the calibrated parameter scale, integer weights need no rescaling) and to rescale every
product (`scale_rebase_multiplier` 1: the shifts would otherwise pile scales up until ezkl panics).

The rewrite's modules, each importing only those above it:

    operators   which operators are quantized (`is_quantized_op`, `SUPPORTED`), what is read off a node
    scaled      quantized types' ranges, `Scaled` (integers and their scale), `multiplier` (m * 2^-k)
    expand      QOperator forms -> DequantizeLinear -> float op -> QuantizeLinear
    core        the lowering's state and primitives: emitting, scaling in exact stages, reading tensors
    arithmetic  integer products, linear layers, biases, Add/Mul/Div, scale-commuting ops on the integers
    lowering    the walk: QuantizeLinear/DequantizeLinear, dynamic quantization, tables, everything else
"""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedModelError
from ..base import Rewrite, RewriteContext
from ..graph import Graph, opset
from .expand import expand
from .lowering import Lowering
from .operators import MS, QOPERATOR, SUPPORTED, is_quantized_op, op_name
from .scaled import MAX_SHIFT, SMALL_MULTIPLIER, multiplier


def _check(graph: Graph) -> None:
    for node in graph.g.node:
        if is_quantized_op(node) and node.op_type not in SUPPORTED:
            raise UnsupportedModelError(
                f"quantized operator {op_name(node)} at node {node.name or node.output[0]!r} is not supported "
                f"(supported: {', '.join(sorted(SUPPORTED))})")
    if opset(graph.model) < 13:
        raise UnsupportedModelError(f"quantized model with ONNX opset {opset(graph.model)}: re-export it with "
                                    "opset 13 or later")


# What the rewritten graph needs from ezkl (why: the docstring's paragraph on them, before the module list).
RUN_ARGS = {"rebase_frac_zero_constants": True, "scale_rebase_multiplier": 1}


def _apply(graph: Graph, ctx: RewriteContext) -> list[str]:
    quantized = [n for n in graph.g.node if is_quantized_op(n)]
    if not quantized:
        return []
    _check(graph)
    counts: dict[str, int] = {}
    for n in quantized:
        counts[op_name(n)] = counts.get(op_name(n), 0) + 1
    for node in [n for n in graph.g.node if n.op_type in QOPERATOR]:
        graph.replace_node(node, expand(graph, node))
    graph.fold_constants(skip=frozenset(SUPPORTED))
    lowering = Lowering(graph, ctx.input_names)
    lowering.run()
    graph.set_nodes(lowering.nodes)
    graph.remove_unused()
    del graph.g.value_info[:]
    if not any(n.domain == MS for n in graph.g.node):
        keep = [o for o in graph.model.opset_import if o.domain != MS]
        del graph.model.opset_import[:]
        graph.model.opset_import.extend(keep)
    ctx.run_args.update(RUN_ARGS)
    notes = [f"quantized operators rewritten into integer arithmetic on float tensors: "
             f"{', '.join(f'{n} x{c}' for n, c in sorted(counts.items()))}"] + lowering.floated
    for name, j in lowering.prescale.items():
        width = graph.shapes().get(name, (1,))[-1] or 1
        ctx.input_prescale[name] = np.full(width, -j, dtype=np.int64)
        notes.append(f"input {name!r} fed as x * 2^{j}, about x / scale of the QuantizeLinear reading it")
    return notes


QUANTIZED_ARITHMETIC = Rewrite(
    name="quantized-arithmetic",
    works_around="ezkl reads int8 QuantizeLinear/DequantizeLinear as unknown ops (uint8 ones as identities, "
                 "without rounding or saturation), has no QOperator kernels and panics on dynamic quantization",
    apply=_apply,
)


__all__ = ["MAX_SHIFT", "QUANTIZED_ARITHMETIC", "SMALL_MULTIPLIER", "SUPPORTED", "is_quantized_op", "multiplier"]
