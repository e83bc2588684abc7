"""The core of the lowering: its state, and the primitives the operators' lowerings are written in."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..graph import Graph, opset
from .operators import node_attrs, refusal
from .scaled import RANGES, SMALL_MULTIPLIER, Scaled, multiplier


class LoweringCore:
    """The lowering's state (the node list being written, what each tensor holds) and what every operator's
    lowering uses: emitting nodes, scaling by a float32 constant in exact stages, reading tensors, and a
    QuantizeLinear/DequantizeLinear's parameters."""

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
        raise refusal(node, why)

    def quant_params(self, node: onnx.NodeProto, data: str, axis: int, scale_in: int = 1):
        """(scale, zero point, integer range) of a QuantizeLinear/DequantizeLinear, shaped to broadcast
        against `data` along `axis`."""
        attrs = node_attrs(node)
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
        if dtype not in RANGES:
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
        return s, z, RANGES[dtype]
