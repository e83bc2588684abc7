"""The lowering's arithmetic: integer products, linear layers and their biases, Add/Sub, Mul, Div by a
constant, and the ops that commute with a positive scale, on `Scaled` tensors whose scales are carried along
(and multiplied out only where a consumer needs a real value)."""

from __future__ import annotations

import numpy as np

from .core import LoweringCore
from .operators import node_attrs
from .scaled import Scaled

# Ops that move or select values without arithmetic: on integers they give integers, on a scaled tensor the
# same scale (when the scale is one number).
SHAPE_OPS = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Slice", "Gather",
             "Expand", "Dropout", "Tile", "Split"}
# Elementwise and per-channel ops f with f(c * v) = c * f(v) for c > 0 (per channel for the pools). ezkl
# lowers them with comparisons or a division, which range-check their input: applied to integers only where
# those are a dequantized tensor's (bounded by the quantized type), never to accumulators.
_HOMOGENEOUS = {"Relu", "LeakyRelu", "MaxPool", "AveragePool"}
# ezkl range-checks a rescaled product within 2^28 at the calibrated scale: see `mul`.
PRODUCT_SHIFT = 8


class Arithmetic(LoweringCore):
    """The arithmetic ops lowered onto the integers. `linear`, `add`, `mul`, `div` and `passthrough` return
    False, writing nothing, when their operands lack the form they need: the node is then copied as it is,
    fed real values."""

    def integer_product(self, node):
        """MatMulInteger / ConvInteger: (a - z_a) op (b - z_b) on integers."""
        a = self._minus_zero_point(node.input[0], node.input[2] if len(node.input) > 2 else "", node)
        b = self._minus_zero_point(node.input[1], node.input[3] if len(node.input) > 3 else "", node, weight=True)
        op = "MatMul" if node.op_type == "MatMulInteger" else "Conv"
        attrs = node_attrs(node) if op == "Conv" else {}
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
        attrs = node_attrs(node)
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
        if op in SHAPE_OPS or op == "Concat":
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
        out = self.emit(op, inputs, **node_attrs(node))
        domain = None
        if s.domain is not None and op in (*SHAPE_OPS, "MaxPool", "Relu"):
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
