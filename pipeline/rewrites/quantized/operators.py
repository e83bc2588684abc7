"""Which operators the quantized rewrite reads, and what every part of it reads off a node."""

from __future__ import annotations

import onnx
from onnx import helper

from ...errors import UnsupportedModelError

MS = "com.microsoft"

# QOperator forms: node -> DequantizeLinear of each quantized input, the float op, QuantizeLinear.
QOPERATOR = {"QLinearMatMul", "QLinearConv", "QGemm", "QLinearAdd", "QLinearMul", "QLinearSigmoid",
             "QLinearLeakyRelu", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat"}
_LOWERED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}
SUPPORTED = frozenset(QOPERATOR | _LOWERED)

_MS_QUANTIZED_PREFIXES = ("QLinear", "QGemm", "QAttention", "QOrdered", "QEmbed", "QMoE", "DynamicQuantize")


def is_quantized_op(node: onnx.NodeProto) -> bool:
    op = node.op_type
    if node.domain in ("", "ai.onnx"):
        return op in SUPPORTED
    # onnxruntime's contrib quantized families (QuickGelu, a float op, is not one)
    return node.domain == MS and (op in SUPPORTED or op.startswith(_MS_QUANTIZED_PREFIXES) or "Quant" in op
                                  or "Integer" in op or "NBits" in op)


def node_attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def op_name(node: onnx.NodeProto) -> str:
    return f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type


def node_label(node: onnx.NodeProto) -> str:
    """The prefix of the names written for a node's replacement."""
    return (node.name or node.output[0]).replace("/", "_").strip("_")


def refusal(node: onnx.NodeProto, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"{op_name(node)} at node {node.name or node.output[0]!r}: {why}")
