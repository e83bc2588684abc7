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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import UnsupportedModelError
from .base import Rewrite, RewriteContext
from .graph import Graph, opset

MS = "com.microsoft"
# ezkl decomposes comparisons, and so the remainder check of its rescaling division, into 2 legs of base
# 2^14 (its defaults): dividing by 2^k needs 2^k < 2^28.
MAX_SHIFT = 27
# Constants reach ezkl as float32: integer multipliers stay exact below 2^24.
MANTISSA_BITS = 24
# Below this a multiplier's 24-bit mantissa needs a shift beyond MAX_SHIFT: 2^(MANTISSA_BITS - 1 - MAX_SHIFT).
SMALL_MULTIPLIER = 2.0 ** (MANTISSA_BITS - 1 - MAX_SHIFT)

_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255), np.dtype(np.int16): (-32768, 32767),
           np.dtype(np.uint16): (0, 65535), np.dtype(np.int32): (-(2**31), 2**31 - 1)}
_ELEM_RANGES = {TensorProto.INT8: (-128, 127), TensorProto.UINT8: (0, 255), TensorProto.INT16: (-32768, 32767),
                TensorProto.UINT16: (0, 65535), TensorProto.INT32: (-(2**31), 2**31 - 1)}

# QOperator forms: node -> DequantizeLinear of each quantized input, the float op, QuantizeLinear.
_QOPERATOR = {"QLinearMatMul", "QLinearConv", "QGemm", "QLinearAdd", "QLinearMul", "QLinearSigmoid",
              "QLinearLeakyRelu", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat"}
_LOWERED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}
SUPPORTED = frozenset(_QOPERATOR | _LOWERED)
# Ops that move or select values without arithmetic: on integers they give integers, on a scaled tensor the
# same scale (when the scale is one number).
_SHAPE_OPS = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Slice", "Gather",
              "Expand", "Dropout", "Tile", "Split"}
# Elementwise and per-channel ops f with f(c * v) = c * f(v) for c > 0 (per channel for the pools). ezkl
# lowers them with comparisons or a division, which range-check their input: applied to integers only where
# those are a dequantized tensor's (bounded by the quantized type), never to accumulators.
_HOMOGENEOUS = {"Relu", "LeakyRelu", "MaxPool", "AveragePool"}
# ezkl range-checks a rescaled product within 2^28 at the calibrated scale: see `mul`.
PRODUCT_SHIFT = 8
# Elementwise functions: between a DequantizeLinear and a QuantizeLinear, a table on the input's integers.
_ELEMENTWISE = {"Sigmoid", "Tanh", "Exp", "Log", "Erf", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Elu",
                "Selu", "Celu", "Gelu", "Mish", "Sqrt", "Reciprocal", "Neg", "Abs", "Sin", "Cos", "LeakyRelu"}
# A table costs one comparison per element and per step: beyond this many, the float op runs instead.
MAX_TABLE_COMPARISONS = 4096


_MS_QUANTIZED_PREFIXES = ("QLinear", "QGemm", "QAttention", "QOrdered", "QEmbed", "QMoE", "DynamicQuantize")


def is_quantized_op(node: onnx.NodeProto) -> bool:
    op = node.op_type
    if node.domain in ("", "ai.onnx"):
        return op in SUPPORTED
    # onnxruntime's contrib quantized families (QuickGelu, a float op, is not one)
    return node.domain == MS and (op in SUPPORTED or op.startswith(_MS_QUANTIZED_PREFIXES) or "Quant" in op
                                  or "Integer" in op or "NBits" in op)


@dataclass
class Scaled:
    """A tensor of the rewritten graph whose real value is `value * scale` (the scale broadcasts against it):
    a dequantized tensor, or an accumulator, not yet multiplied out."""

    value: str
    scale: np.ndarray  # float32, broadcastable to the value
    domain: tuple[int, int] | None = None  # the value's integers lie in [lo, hi] (a dequantized tensor)

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1


def multiplier(c: np.ndarray) -> tuple[int, np.ndarray]:
    """c as m * 2^-k: m integer-valued (|m| < 2^24, exact in float32), 0 <= k <= MAX_SHIFT, k no larger than
    c needs (an integer c gives k = 0)."""
    c = np.asarray(c, dtype=np.float64)
    peak = float(np.abs(c).max()) if c.size else 0.0
    if peak == 0.0:
        return 0, np.zeros_like(c)
    k = int(np.clip(MANTISSA_BITS - 1 - math.floor(math.log2(peak)), 0, MAX_SHIFT))
    while k > 0 and np.array_equal(c * 2.0 ** (k - 1), np.round(c * 2.0 ** (k - 1))):
        k -= 1
    return k, np.round(c * 2.0**k)


class _Lowering:
    """Walks the graph once, in order, writing a new node list: quantized ops become float ops, and
    dequantized tensors stay `Scaled` until a consumer needs their real value."""

    def __init__(self, graph: Graph, input_names: list[str]):
        self.graph = graph
        self.opset = opset(graph.model)
        self.nodes: list[onnx.NodeProto] = []
        self.scaled: dict[str, Scaled] = {}
        self.alias: dict[str, str] = {}  # Casts of integer tensors: the same values under another name
        self.integer: set[str] = set()   # tensors holding integers (quantized values, accumulators)
        self.bounds: dict[str, tuple[int, int]] = {}  # integer tensors' ranges, where known
        self.done: set[str] = set()      # QuantizeLinear outputs already written (by a table)
        self.floated: list[str] = []     # elementwise functions too large for a table, and what runs instead
        self.too_big: str | None = None
        self.real: set[str] = set()      # Scaled tensors whose real value has been written under their name
        self.shapes = graph.shapes()
        self.label = "q"
        self.prescale = self._input_exponents(input_names)

    def _input_exponents(self, input_names: list[str]) -> dict[str, int]:
        """Per graph input read only by QuantizeLinear with one per-tensor scale s: j with 2^j ~ 1/s. The
        circuit is then fed x * 2^j, so ezkl's input grid 2^-scale is a grid on x / s, the quantizer's own
        units, rather than on x (with s = 2^-6, 64 times finer where QuantizeLinear rounds)."""
        out = {}
        for name in input_names:
            users = self.graph.consumers(name)
            scales = {float(np.asarray(c).reshape(-1)[0]) for c in (self.constant(u.input[1]) for u in users
                                                                    if u.op_type == "QuantizeLinear")
                      if c is not None and np.asarray(c).size == 1}
            if users and len(scales) == 1 and all(u.op_type == "QuantizeLinear" for u in users) \
                    and not self.graph.is_graph_output(name):
                j = round(-math.log2(scales.pop()))
                if j > 0:
                    out[name] = j
        return out

    # ---- emitting

    def emit(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        node = self.graph.new_node(op, inputs, output, label=self.label, **attrs)
        self.nodes.append(node)
        return node.output[0]

    def const(self, value, base: str = "q") -> str:
        return self.graph.add_constant(np.asarray(value, dtype=np.float32), f"{self.label}_{base}")

    def scale_by(self, x: str, c: np.ndarray, output: str | None = None) -> str:
        """x * c with c's float32 value, so that ezkl multiplies by integers and rounds once per stage.

        One stage: (x * 2^-k) * m, c = m * 2^-k. A c below SMALL_MULTIPLIER would need k > MAX_SHIFT for its
        mantissa, so it takes two exact stages: c * 2^j (a float32 with the same mantissa, large enough for
        one stage), then 2^-j, written as (x * 2^-(j+1)) * 2 because ezkl only rescales after a
        multiplication by something other than a power of two. In float32 the two stages equal x * c
        exactly, since scaling by a power of two is exact."""
        c = np.asarray(c, dtype=np.float32)
        peak = float(np.abs(c).max()) if c.size else 0.0
        if 0.0 < peak < SMALL_MULTIPLIER:
            j = math.ceil(math.log2(SMALL_MULTIPLIER / peak))
            x = self._stage(x, (c * np.float32(2.0**j)).astype(np.float32))
            return self._steps(x, [(2.0 ** -(j + 1), "shift"), (2.0, "two")], output)
        return self._stage(x, c, output)

    def _stage(self, x: str, c: np.ndarray, output: str | None = None) -> str:
        k, m = multiplier(c)
        return self._steps(x, ([(2.0**-k, "shift")] if k else []) + ([(m, "multiplier")] if not np.all(m == 1) else []),
                           output)

    def _steps(self, x: str, steps: list, output: str | None) -> str:
        if not steps:
            return self.emit("Identity", [x], output)
        for i, (value, base) in enumerate(steps):
            x = self.emit("Mul", [x, self.const(value, base)], output if i == len(steps) - 1 else None)
        return x

    # ---- reading

    def name(self, t: str) -> str:
        while t in self.alias:
            t = self.alias[t]
        return t

    def constant(self, t: str) -> np.ndarray | None:
        return None if not t else self.graph.constant(self.name(t))

    def real_value(self, t: str) -> str:
        """The name holding t's real value, writing it (under t's own name) if t is Scaled."""
        t = self.name(t)
        s = self.scaled.get(t)
        if s is None or t in self.real:
            return t
        self.real.add(t)
        return self.scale_by(s.value, s.scale, t)

    def scaled_of(self, t: str) -> Scaled | None:
        """t as a Scaled tensor: Scaled ones as they are, integer tensors with scale 1."""
        t = self.name(t)
        if t in self.scaled:
            return self.scaled[t]
        if t in self.integer:
            return Scaled(t, np.float32(1.0))
        return None

    def rank(self, t: str) -> int | None:
        c = self.constant(t)
        if c is not None:
            return c.ndim
        shape = self.shapes.get(self.name(t))
        return None if shape is None else len(shape)

    # ---- refusing

    def refuse(self, node: onnx.NodeProto, why: str):
        raise UnsupportedModelError(f"{_op_name(node)} at node {node.name or node.output[0]!r}: {why}")

    def quant_params(self, node: onnx.NodeProto, data: str, axis: int, scale_in: int = 1):
        """(scale, zero point, integer range) of a QuantizeLinear/DequantizeLinear, shaped to broadcast
        against `data` along `axis`."""
        attrs = _attrs(node)
        if attrs.get("block_size", 0):
            self.refuse(node, "blocked quantization (block_size) is not supported")
        s = self.constant(node.input[scale_in])
        if s is None:
            self.refuse(node, "its scale is not a constant")
        zp_name = node.input[scale_in + 1] if len(node.input) > scale_in + 1 else ""
        z = self.constant(zp_name) if zp_name else None
        if zp_name and z is None:
            self.refuse(node, "its zero point is not a constant")
        if z is not None:
            dtype = z.dtype
        else:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(attrs.get("output_dtype") or TensorProto.UINT8))
        if dtype not in _RANGES:
            self.refuse(node, f"quantized type {dtype} is not supported (int8, uint8, int16, uint16, int32 are)")
        s = np.asarray(s, dtype=np.float32)
        z = np.zeros_like(s, dtype=np.float64) if z is None else np.asarray(z, dtype=np.float64)
        if s.size > 1:
            rank = self.rank(data)
            if rank is None:
                self.refuse(node, "per-axis quantization of a tensor whose rank is unknown")
            shape = [1] * rank
            shape[axis % rank] = s.size
            s, z = s.reshape(shape), z.reshape(shape)
        return s, z, _RANGES[dtype]

    # ---- the operators

    def dequantize(self, node):
        q, out = node.input[0], node.output[0]
        s, z, _ = self.quant_params(node, q, _attrs(node).get("axis", 1))
        qc = self.constant(q)
        if qc is not None:
            value = self.const(qc.astype(np.float64) - z, "dequantized")
            domain = None
        else:
            value = self.real_value(q)
            if np.any(z != 0):
                value = self.emit("Sub", [value, self.const(z, "zero_point")])
            bounds = self.bounds.get(self.name(q))
            domain = None if bounds is None or z.size > 1 else (bounds[0] - int(z.flat[0]), bounds[1] - int(z.flat[0]))
        self.scaled[out] = Scaled(value, s, domain)

    def quantize(self, node, x: str, out: str):
        s, z, (lo, hi) = self.quant_params(node, x, _attrs(node).get("axis", 1))
        src = self.scaled_of(x)
        if src is not None:
            # float32 as onnxruntime computes its requantization multiplier: scale_in / scale_out
            t = self.scale_by(src.value, (src.scale / s).astype(np.float32))
        else:
            # a prescaled graph input arrives as x * 2^j
            shift = np.float32(2.0 ** -self.prescale.get(self.name(x), 0))
            t = self.scale_by(self.real_value(x), (np.float32(1.0) / s * shift).astype(np.float32))
        r = self.emit("Round", [t])
        if np.any(z != 0):
            r = self.emit("Add", [r, self.const(z, "zero_point")])
        self.emit("Clip", [r, self.const(lo, "qmin"), self.const(hi, "qmax")], out)
        self.integer.add(out)
        self.bounds[out] = (lo, hi)

    def table(self, node) -> bool:
        """An elementwise function f between a DequantizeLinear and a QuantizeLinear, as onnxruntime's
        QLinearSigmoid computes it: a table T[v] = Q(f(v * s)) over the input's integers v in [lo, hi],
        evaluated here in float32 and written as T[lo] + sum_k (T[k] - T[k-1]) * [v > k - 1/2] over the
        steps where T changes. Comparisons of integers are exact in ezkl (0/1 at scale 0), so is the sum."""
        src = self.scaled.get(self.name(node.input[0]))
        users = self.graph.consumers(node.output[0])
        if (src is None or src.domain is None or not src.per_tensor or len(users) != 1
                or users[0].op_type != "QuantizeLinear" or self.graph.is_graph_output(node.output[0])):
            return False
        qnode = users[0]
        s_y, z_y, (lo_y, hi_y) = self.quant_params(qnode, node.output[0], 1)
        if s_y.size != 1:
            return False
        lo, hi = src.domain
        v = np.arange(lo, hi + 1)
        f = _evaluate_elementwise(node, (v.astype(np.float32) * src.scale.astype(np.float32).reshape(())))
        if not np.all(np.isfinite(f)):  # (a Log of a non-positive value): nothing to tabulate
            return False
        t = np.clip(np.rint(f / s_y.reshape(()).astype(np.float32)) + z_y.reshape(()), lo_y, hi_y).astype(np.int64)
        steps = np.flatnonzero(np.diff(t))
        n = self._numel(node.input[0])
        if n is None or n * len(steps) > MAX_TABLE_COMPARISONS:
            self.too_big = f"{node.op_type} at {node.name or node.output[0]!r} ({n} values x {len(steps)} steps)"
            return False
        out = qnode.output[0]
        if len(steps) == 0:
            self.emit("Add", [self.emit("Mul", [src.value, self.const(0.0, "zero")]), self.const(t[0], "table")], out)
        else:
            axes = self.graph.add_constant(np.asarray([-1], np.int64), f"{self.label}_axes")
            column = self.emit("Unsqueeze", [src.value, axes])
            above = self.emit("Greater", [column, self.const(v[steps] + 0.5, "thresholds")])
            jumps = self.emit("Mul", [self.emit("Cast", [above], to=TensorProto.FLOAT), self.const(np.diff(t)[steps],
                                                                                                   "steps")])
            total = self.emit("ReduceSum", [jumps, axes], keepdims=0)
            self.emit("Add", [total, self.const(t[0], "table")], out)
        self.integer.add(out)
        self.bounds[out] = (int(t.min()), int(t.max()))
        self.done.add(out)
        return True

    def _numel(self, t: str) -> int | None:
        shape = self.shapes.get(self.name(t))
        return None if shape is None or any(d is None for d in shape) else int(np.prod(shape))

    def dynamic_quantize(self, node):
        """ONNX DynamicQuantizeLinear (uint8): scale = (max(x, 0) - min(x, 0)) / 255,
        zero point = saturate(round(-min / scale)), q = saturate(round(x / scale) + zero point)."""
        x = self.real_value(node.input[0])
        y, y_scale, y_zp = (list(node.output) + ["", "", ""])[:3]
        zero = self.const(0.0, "zero")
        mx = self.emit("Max", [self._reduce("ReduceMax", x), zero])
        mn = self.emit("Min", [self._reduce("ReduceMin", x), zero])
        span = self.emit("Sub", [mx, mn])
        inv = self.emit("Reciprocal", [span])  # ezkl's Recip: 1 / span at the calibrated scale
        per_unit = self.emit("Mul", [inv, self.const(255.0, "qrange")])
        lo, hi = self.const(0.0, "qmin"), self.const(255.0, "qmax")
        zp = self.emit("Clip", [self.emit("Round", [self.emit("Mul", [self.emit("Neg", [mn]), per_unit])]), lo, hi],
                       y_zp or None)
        q = self.emit("Add", [self.emit("Round", [self.emit("Mul", [x, per_unit])]), zp])
        self.emit("Clip", [q, lo, hi], y)
        self.integer.update({y, zp})
        self.bounds[y] = self.bounds[zp] = (0, 255)
        if y_scale:
            self.scaled[y_scale] = Scaled(span, np.float32(1.0 / 255.0))

    def _reduce(self, op: str, x: str) -> str:
        return self.emit(op, [x], keepdims=0)  # no axes: over the whole tensor

    def integer_product(self, node):
        """MatMulInteger / ConvInteger: (a - z_a) op (b - z_b) on integers."""
        a = self._minus_zero_point(node.input[0], node.input[2] if len(node.input) > 2 else "", node)
        b = self._minus_zero_point(node.input[1], node.input[3] if len(node.input) > 3 else "", node, weight=True)
        op = "MatMul" if node.op_type == "MatMulInteger" else "Conv"
        attrs = _attrs(node) if op == "Conv" else {}
        self.emit(op, [a, b], node.output[0], **attrs)
        self.integer.add(node.output[0])

    def _minus_zero_point(self, t: str, zp: str, node, weight: bool = False) -> str:
        value, zc = self.constant(t), self.constant(zp)
        if weight and value is not None and (not zp or zc is not None):
            z = np.zeros(1) if zc is None else zc.astype(np.float64)
            if z.size > 1:  # per output channel: axis 0 of a conv weight, the columns of a matmul weight
                z = z.reshape((-1,) + (1,) * (value.ndim - 1)) if node.op_type == "ConvInteger" else z
            return self.const(value.astype(np.float64) - z, "weight")
        t = self.name(t) if value is None else self.const(value, "operand")
        if not zp or (zc is not None and not np.any(zc)):
            return t
        if zc is not None and zc.size > 1:
            self.refuse(node, "a per-row zero point on the data input is not supported")
        return self.emit("Sub", [t, self.name(zp) if zc is None else self.const(zc.astype(np.float64), "zero_point")])

    def linear(self, node) -> bool:
        """MatMul, Gemm, Conv of a Scaled tensor with Scaled constant weights: an integer accumulator whose
        scale is the product of theirs. False when the operands do not have that form."""
        a = self.scaled_of(node.input[0])
        w = self.scaled_of(node.input[1])
        if a is None or w is None or not a.per_tensor:
            return False
        attrs = _attrs(node)
        op = node.op_type
        ws = w.scale
        if op == "Conv":
            if not (ws.size == 1 or ws.size == ws.shape[0]):
                return False
            kernel_rank = self.rank(w.value)
            channel = ws.reshape((-1,) + (1,) * (kernel_rank - 2)) if ws.size > 1 else ws.reshape(())
            out_scale = (a.scale.reshape(()) * channel).astype(np.float32)
            bias_scale = out_scale.reshape(-1)
        else:
            trans_b = op == "Gemm" and attrs.get("transB", 0)
            if op == "Gemm" and attrs.get("transA", 0) and ws.size > 1:
                return False
            along = ws.shape[0] if trans_b and ws.ndim else (ws.shape[-1] if ws.ndim else 1)
            if ws.size != along:
                return False
            alpha = np.float32(attrs.get("alpha", 1.0)) if op == "Gemm" else np.float32(1.0)
            out_scale = (alpha * a.scale.reshape(()) * ws.reshape(-1)).astype(np.float32)
            out_scale = out_scale.reshape(()) if out_scale.size == 1 else out_scale
            bias_scale = out_scale
        inputs = [a.value, w.value]
        bias_input = 2 if len(node.input) > 2 and node.input[2] else None
        if bias_input is not None:
            bias = self._bias(node.input[2], bias_scale,
                              np.float32(attrs.get("beta", 1.0)) if op == "Gemm" else np.float32(1.0))
            if bias is None:
                return False
            inputs.append(bias)
        if op == "Gemm":
            attrs = {k: v for k, v in attrs.items() if k in ("transA", "transB")}
        out = self.emit(op, inputs, **attrs)
        self.scaled[node.output[0]] = Scaled(out, out_scale)
        return True

    def _bias(self, t: str, acc_scale: np.ndarray, beta: np.float32) -> str | None:
        """A constant bias in units of the accumulator: integers when it was quantized at the accumulator's
        scale (onnxruntime quantizes biases to int32 at s_x * s_w), else its float value in those units."""
        s = self.scaled.get(self.name(t))
        if s is not None:
            value = self.constant(s.value)
            if value is None:
                return None
            real = value.astype(np.float64) * s.scale.astype(np.float64).reshape(-1 if s.scale.size > 1 else ())
        else:
            value = self.constant(t)
            if value is None:
                return None
            real = value.astype(np.float64)
        units = real * float(beta) / acc_scale.astype(np.float64)
        whole = np.round(units)
        return self.const(whole if np.allclose(units, whole, rtol=0, atol=1e-6) else units, "bias")

    def real_constant(self, t: str) -> np.ndarray | None:
        """t's real value when it is a constant: a plain one, or a dequantized constant."""
        s = self.scaled.get(self.name(t))
        value = self.constant(s.value if s is not None else t)
        if value is None:
            return None
        return value.astype(np.float64) * (s.scale.astype(np.float64) if s is not None else 1.0)

    def add(self, node) -> bool:
        a, b = (self.scaled_of(i) for i in node.input)
        ca, cb = (self.real_constant(i) for i in node.input)
        if a is not None and ca is None and cb is not None:
            operands, scale = [a.value, self.const(cb / a.scale, "offset")], a.scale
        elif b is not None and cb is None and ca is not None:
            operands, scale = [self.const(ca / b.scale, "offset"), b.value], b.scale
        elif a is not None and b is not None:
            other = b.value if np.array_equal(a.scale, b.scale) else self.scale_by(b.value, b.scale / a.scale)
            operands, scale = [a.value, other], a.scale
        else:
            return False
        self.scaled[node.output[0]] = Scaled(self.emit(node.op_type, operands), np.asarray(scale, np.float32))
        return True

    def mul(self, node) -> bool:
        a, b = (self.scaled_of(i) for i in node.input)
        ca, cb = (self.constant(i) for i in node.input)
        if a is not None and b is None and cb is not None:
            self.scaled[node.output[0]] = Scaled(a.value, (a.scale * cb).astype(np.float32))
        elif b is not None and a is None and ca is not None:
            self.scaled[node.output[0]] = Scaled(b.value, (b.scale * ca).astype(np.float32))
        elif a is not None or b is not None:
            a = a or Scaled(self.real_value(node.input[0]), np.float32(1.0))
            b = b or Scaled(self.real_value(node.input[1]), np.float32(1.0))
            if b.value in self.integer and a.value not in self.integer:
                a, b = b, a
            if a.value in self.integer and a.per_tensor and float(a.scale) == 1.0:
                # an accumulator times a scaled tensor (dynamic quantization: acc * (range * s_w / 255)): the
                # constant goes into the accumulator first, so that neither the product nor its rescaling
                # outgrows what ezkl can range-check
                out = self.emit("Mul", [self.scale_by(a.value, b.scale), b.value])
                self.scaled[node.output[0]] = Scaled(out, np.float32(1.0))
            else:
                # two quantized tensors: their product reaches 2^16, more than ezkl's rescaling can check at
                # scales above 12; shifting one operand by 2^-PRODUCT_SHIFT is free and, for scales of at least
                # PRODUCT_SHIFT, exact (the product is still an integer multiple of the grid)
                shifted = self.emit("Mul", [a.value, self.const(2.0**-PRODUCT_SHIFT, "shift")])
                self.scaled[node.output[0]] = Scaled(self.emit("Mul", [shifted, b.value]),
                                                     (a.scale * b.scale * 2.0**PRODUCT_SHIFT).astype(np.float32))
        else:
            return False
        return True

    def div(self, node) -> bool:
        a, c = self.scaled_of(node.input[0]), self.constant(node.input[1])
        if a is None or c is None:
            return False
        self.scaled[node.output[0]] = Scaled(a.value, (a.scale / c).astype(np.float32))
        return True

    def passthrough(self, node) -> bool:
        """Ops that commute with a positive scale: applied to the integers, the scale carried along."""
        op = node.op_type
        s = self.scaled.get(self.name(node.input[0]))  # integer tensors go through `copy`, staying integers
        if s is None or len(node.output) > 1 and any(node.output[1:]) or not np.all(s.scale > 0):
            return False
        if op in _SHAPE_OPS or op == "Concat":
            if not s.per_tensor:
                return False
            rest = [self.scaled_of(i) for i in node.input[1:]]
            if op == "Concat":
                if any(r is None or not np.array_equal(r.scale, s.scale) for r in rest):
                    return False
                inputs = [s.value] + [r.value for r in rest]
            else:
                inputs = [s.value] + [self.name(i) for i in node.input[1:]]
        elif op in _HOMOGENEOUS:
            if s.domain is None:
                return False
            channel_ok = s.per_tensor or op in ("Relu", "LeakyRelu") or (
                s.scale.ndim >= 2 and s.scale.size == s.scale.shape[1])
            if not channel_ok:
                return False
            inputs = [s.value]
        elif op == "GlobalAveragePool":
            return self._global_average(node, s)
        else:
            return False
        out = self.emit(op, inputs, **_attrs(node))
        domain = None
        if s.domain is not None and op in (*_SHAPE_OPS, "MaxPool", "Relu"):
            domain = (max(s.domain[0], 0), max(s.domain[1], 0)) if op == "Relu" else s.domain
        self.scaled[node.output[0]] = Scaled(out, s.scale, domain)
        return True

    def _global_average(self, node, s: Scaled) -> bool:
        """GlobalAveragePool as a sum of integers, the 1/(H*W) folded into the scale (exact)."""
        shape = self.shapes.get(self.name(node.input[0]))
        if shape is None or any(d is None for d in shape[2:]) or len(shape) < 3:
            return False
        axes = list(range(2, len(shape)))
        count = int(np.prod(shape[2:]))
        if self.opset >= 13:
            out = self.emit("ReduceSum", [s.value, self.graph.add_constant(np.asarray(axes, np.int64), "axes")],
                            keepdims=1)
        else:
            out = self.emit("ReduceSum", [s.value], axes=axes, keepdims=1)
        self.scaled[node.output[0]] = Scaled(out, (s.scale / np.float32(count)).astype(np.float32))
        return True

    def cast(self, node) -> bool:
        src = self.name(node.input[0])
        to = _attrs(node).get("to")
        if to == TensorProto.BOOL or (src not in self.scaled and src not in self.integer):
            return False
        # the rewritten graph holds quantized values as float: a Cast between numeric types changes nothing
        self.alias[node.output[0]] = src
        return True

    def copy(self, node):
        """Any other node: given real values for its Scaled inputs, kept as it is."""
        inputs = [self.real_value(i) if i and self.name(i) in self.scaled else (self.name(i) if i else i)
                  for i in node.input]
        new = onnx.NodeProto()
        new.CopyFrom(node)
        del new.input[:]
        new.input.extend(inputs)
        self.nodes.append(new)
        src = self.name(node.input[0]) if node.input else ""
        if node.op_type in ("MaxPool", "Relu", *_SHAPE_OPS, "Concat") and src in self.integer:
            self.integer.update(o for o in node.output[:1] if o)
            if src in self.bounds and node.op_type != "Concat":
                lo, hi = self.bounds[src]
                self.bounds[node.output[0]] = (max(lo, 0), max(hi, 0)) if node.op_type == "Relu" else (lo, hi)

    # ---- the walk

    def run(self) -> None:
        handlers = {"DequantizeLinear": self.dequantize, "DynamicQuantizeLinear": self.dynamic_quantize}
        for vi in self.graph.g.input:  # a model taking quantized values: the same integers, as float
            bounds = _ELEM_RANGES.get(vi.type.tensor_type.elem_type)
            if bounds is not None and vi.name in self.graph.input_names:
                vi.type.tensor_type.elem_type = TensorProto.FLOAT
                self.integer.add(vi.name)
                self.bounds[vi.name] = bounds
        for node in list(self.graph.g.node):
            self.label = (node.name or node.output[0]).replace("/", "_").strip("_") or "q"
            op = node.op_type
            if op in handlers:
                handlers[op](node)
            elif op == "QuantizeLinear":
                if node.output[0] not in self.done:
                    self.quantize(node, node.input[0], node.output[0])
            elif op in ("MatMulInteger", "ConvInteger"):
                self.integer_product(node)
            elif not self._keeps_scale(node):
                self.copy(node)
        for out in self.graph.g.output:
            value = self.real_value(out.name)
            if value != out.name:
                self.emit("Identity", [value], out.name)
            if out.type.tensor_type.elem_type in _ELEM_RANGES:  # quantized outputs: their integers, as float
                out.type.tensor_type.elem_type = TensorProto.FLOAT

    def _keeps_scale(self, node) -> bool:
        if node.domain not in ("", "ai.onnx") or not any(
                self.name(i) in self.scaled or self.name(i) in self.integer for i in node.input if i):
            return False
        op = node.op_type
        if op in _ELEMENTWISE:
            self.too_big = None
            if self.table(node):
                return True
            if self.too_big:
                kept = self._keeps_scale_otherwise(node)
                self.floated.append(f"{self.too_big}: " + (f"ezkl's {op} on the integers" if kept
                                                           else "ezkl's float lookup, then QuantizeLinear"))
                return kept
        return self._keeps_scale_otherwise(node)

    def _keeps_scale_otherwise(self, node) -> bool:
        op = node.op_type
        if op in ("MatMul", "Gemm", "Conv"):
            return self.linear(node)
        if op in ("Add", "Sub"):
            return self.add(node)
        if op == "Mul":
            return self.mul(node)
        if op == "Div":
            return self.div(node)
        if op == "Cast":
            return self.cast(node)
        return self.passthrough(node)


def _evaluate_elementwise(node: onnx.NodeProto, x: np.ndarray) -> np.ndarray:
    """An elementwise node's output on x (float32), by onnx's reference evaluator: the ONNX definition."""
    from onnx.reference import ReferenceEvaluator

    one = helper.make_node(node.op_type, ["x"], ["y"], **_attrs(node))
    return np.asarray(ReferenceEvaluator(one).run(None, {"x": np.asarray(x, np.float32)})[0], dtype=np.float32)


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _op_name(node: onnx.NodeProto) -> str:
    return f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type


# ---- QOperator forms -> QDQ

def _expand(graph: Graph, node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """One QOperator node as standard DequantizeLinear -> float op -> QuantizeLinear nodes."""
    label = (node.name or node.output[0]).replace("/", "_").strip("_")
    ins = list(node.input) + [""] * 9
    attrs = _attrs(node)
    new: list[onnx.NodeProto] = []

    def dq(x, s, z, axis=None):
        node_ = graph.new_node("DequantizeLinear", [x, s] + ([z] if z else []), label=label,
                               **({"axis": axis} if axis is not None else {}))
        new.append(node_)
        return node_.output[0]

    def per_channel(s, axis):
        c = graph.constant(s)
        return axis if c is not None and c.size > 1 else None

    def op(op_type, inputs, **kw):
        node_ = graph.new_node(op_type, inputs, label=label, **kw)
        new.append(node_)
        return node_.output[0]

    def q(y, s, z):
        new.append(graph.new_node("QuantizeLinear", [y, s] + ([z] if z else []), node.output[0], label=label))

    def bias_dq(bias, a_scale, w_scale, alpha=1.0):
        # int32 bias at scale a_scale * w_scale (onnxruntime's QLinearConv and QGemm)
        sa, sw = graph.constant(a_scale), graph.constant(w_scale)
        scale = (np.float32(alpha) * np.asarray(sa, np.float32) * np.asarray(sw, np.float32)).astype(np.float32)
        s = graph.add_constant(scale.reshape(-1) if scale.size > 1 else scale.reshape(()), f"{label}_bias_scale")
        return dq(bias, s, "", 0 if scale.size > 1 else None)

    t = node.op_type
    if t == "QLinearMatMul":
        b = graph.constant(ins[3])
        axis = (b.ndim - 1) if b is not None else 1
        y = op("MatMul", [dq(ins[0], ins[1], ins[2]), dq(ins[3], ins[4], ins[5], per_channel(ins[4], axis))])
        q(y, ins[6], ins[7])
    elif t == "QLinearConv":
        inputs = [dq(ins[0], ins[1], ins[2]), dq(ins[3], ins[4], ins[5], per_channel(ins[4], 0))]
        if ins[8]:
            inputs.append(bias_dq(ins[8], ins[1], ins[4]))
        q(op("Conv", inputs, **attrs), ins[6], ins[7])
    elif t == "QGemm":
        trans_b = attrs.get("transB", 0)
        inputs = [dq(ins[0], ins[1], ins[2]), dq(ins[3], ins[4], ins[5], per_channel(ins[4], 0 if trans_b else 1))]
        if ins[6]:
            inputs.append(bias_dq(ins[6], ins[1], ins[4], attrs.get("alpha", 1.0)))
        gemm = {k: v for k, v in attrs.items() if k in ("alpha", "transA", "transB")}
        if ins[7]:
            q(op("Gemm", inputs, **gemm), ins[7], ins[8])
        else:  # no output scale: QGemm returns the float result
            new.append(graph.new_node("Gemm", inputs, node.output[0], label=label, **gemm))
    elif t in ("QLinearAdd", "QLinearMul"):
        y = op(t[len("QLinear"):], [dq(ins[0], ins[1], ins[2]), dq(ins[3], ins[4], ins[5])])
        q(y, ins[6], ins[7])
    elif t in ("QLinearSigmoid", "QLinearLeakyRelu", "QLinearGlobalAveragePool", "QLinearAveragePool"):
        if attrs.pop("channels_last", 0):
            raise UnsupportedModelError(f"{_op_name(node)} at node {node.name or node.output[0]!r}: channels_last "
                                        "layout is not supported")
        float_op = {"QLinearSigmoid": "Sigmoid", "QLinearLeakyRelu": "LeakyRelu",
                    "QLinearGlobalAveragePool": "GlobalAveragePool", "QLinearAveragePool": "AveragePool"}[t]
        q(op(float_op, [dq(ins[0], ins[1], ins[2])], **attrs), ins[3], ins[4])
    elif t == "QLinearConcat":
        parts = list(node.input[2:])
        xs = [dq(parts[i], parts[i + 1], parts[i + 2]) for i in range(0, len(parts), 3)]
        q(op("Concat", xs, **attrs), ins[0], ins[1])
    return new


def _check(graph: Graph) -> None:
    for node in graph.g.node:
        if is_quantized_op(node) and node.op_type not in SUPPORTED:
            raise UnsupportedModelError(
                f"quantized operator {_op_name(node)} at node {node.name or node.output[0]!r} is not supported "
                f"(supported: {', '.join(sorted(SUPPORTED))})")
    if opset(graph.model) < 13:
        raise UnsupportedModelError(f"quantized model with ONNX opset {opset(graph.model)}: re-export it with "
                                    "opset 13 or later")


# What the rewritten graph needs from ezkl (see the module docstring's last paragraph).
RUN_ARGS = {"rebase_frac_zero_constants": True, "scale_rebase_multiplier": 1}


def _apply(graph: Graph, ctx: RewriteContext) -> list[str]:
    quantized = [n for n in graph.g.node if is_quantized_op(n)]
    if not quantized:
        return []
    _check(graph)
    counts: dict[str, int] = {}
    for n in quantized:
        counts[_op_name(n)] = counts.get(_op_name(n), 0) + 1
    for node in [n for n in graph.g.node if n.op_type in _QOPERATOR]:
        graph.replace_node(node, _expand(graph, node))
    graph.fold_constants(skip=frozenset(SUPPORTED))
    lowering = _Lowering(graph, ctx.input_names)
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
