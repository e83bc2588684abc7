"""The lowering: one walk over the graph, in order, writing each quantized op as float ops (QuantizeLinear,
DequantizeLinear, dynamic quantization, elementwise functions as tables) and handing arithmetic to
`Arithmetic`; any other node is copied, fed real values."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .arithmetic import SHAPE_OPS, Arithmetic
from .operators import node_attrs, node_label
from .scaled import ELEM_RANGES, Scaled

# Elementwise functions: between a DequantizeLinear and a QuantizeLinear, a table on the input's integers.
_ELEMENTWISE = {"Sigmoid", "Tanh", "Exp", "Log", "Erf", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Elu",
                "Selu", "Celu", "Gelu", "Mish", "Sqrt", "Reciprocal", "Neg", "Abs", "Sin", "Cos", "LeakyRelu"}
# A table costs one comparison per element and per step: beyond this many, the float op runs instead.
MAX_TABLE_COMPARISONS = 4096


class Lowering(Arithmetic):
    """Walks the graph once, in order, writing a new node list: quantized ops become float ops, and
    dequantized tensors stay `Scaled` until a consumer needs their real value."""

    # ---- the operators

    def dequantize(self, node):
        q, out = node.input[0], node.output[0]
        s, z, _ = self.quant_params(node, q, node_attrs(node).get("axis", 1))
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
        s, z, (lo, hi) = self.quant_params(node, x, node_attrs(node).get("axis", 1))
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

    def cast(self, node) -> bool:
        src = self.name(node.input[0])
        to = node_attrs(node).get("to")
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
        if node.op_type in ("MaxPool", "Relu", *SHAPE_OPS, "Concat") and src in self.integer:
            self.integer.update(o for o in node.output[:1] if o)
            if src in self.bounds and node.op_type != "Concat":
                lo, hi = self.bounds[src]
                self.bounds[node.output[0]] = (max(lo, 0), max(hi, 0)) if node.op_type == "Relu" else (lo, hi)

    # ---- the walk

    def run(self) -> None:
        handlers = {"DequantizeLinear": self.dequantize, "DynamicQuantizeLinear": self.dynamic_quantize}
        for vi in self.graph.g.input:  # a model taking quantized values: the same integers, as float
            bounds = ELEM_RANGES.get(vi.type.tensor_type.elem_type)
            if bounds is not None and vi.name in self.graph.input_names:
                vi.type.tensor_type.elem_type = TensorProto.FLOAT
                self.integer.add(vi.name)
                self.bounds[vi.name] = bounds
        for node in list(self.graph.g.node):
            self.label = node_label(node) or "q"
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
            if out.type.tensor_type.elem_type in ELEM_RANGES:  # quantized outputs: their integers, as float
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

    one = helper.make_node(node.op_type, ["x"], ["y"], **node_attrs(node))
    return np.asarray(ReferenceEvaluator(one).run(None, {"x": np.asarray(x, np.float32)})[0], dtype=np.float32)
