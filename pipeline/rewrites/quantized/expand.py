"""QOperator forms (QLinearMatMul, QGemm, ...) as standard DequantizeLinear -> float op -> QuantizeLinear
nodes, so that the lowering reads one form only."""

from __future__ import annotations

import numpy as np
import onnx

from ..graph import Graph
from .operators import node_attrs, node_label, refusal

# QOperator elementwise and pooling ops: the float op between their DequantizeLinear and QuantizeLinear.
_UNARY = {"QLinearSigmoid": "Sigmoid", "QLinearLeakyRelu": "LeakyRelu",
          "QLinearGlobalAveragePool": "GlobalAveragePool", "QLinearAveragePool": "AveragePool"}


def expand(graph: Graph, node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """One QOperator node as standard DequantizeLinear -> float op -> QuantizeLinear nodes."""
    label = node_label(node)
    ins = list(node.input) + [""] * 9
    attrs = node_attrs(node)
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
    elif t in _UNARY:
        if attrs.pop("channels_last", 0):
            raise refusal(node, "channels_last layout is not supported")
        q(op(_UNARY[t], [dq(ins[0], ins[1], ins[2])], **attrs), ins[3], ins[4])
    elif t == "QLinearConcat":
        parts = list(node.input[2:])
        xs = [dq(parts[i], parts[i + 1], parts[i + 2]) for i in range(0, len(parts), 3)]
        q(op("Concat", xs, **attrs), ins[0], ins[1])
    return new
