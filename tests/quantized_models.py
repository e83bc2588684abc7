"""Quantized models as users bring them, made by the tests: small float models (an 8-16-1 MLP, a CNN on 1x8x8
images) quantized with onnxruntime.quantization (static QDQ or QOperator, int8 or uint8 activations, per-tensor
or per-channel weights; dynamic), and a PyTorch MLP quantized with torch.ao.quantization's eager post-training
quantization and exported with torch's TorchScript exporter. Seeded, so every run quantizes alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from foreign_models import save
from model_helpers import make_mlp_onnx
from onnx import TensorProto, helper, numpy_helper


def mlp_data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, (n, 8)).astype(np.float32)


def image_data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)


def _conv(inputs, output, **attrs):
    # ezkl 23 needs every Conv attribute spelled out (PyTorch's exporter writes them all)
    attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1, "kernel_shape": [3, 3]} | attrs
    return helper.make_node("Conv", inputs, [output], **attrs)


def cnn_onnx(path: Path, seed: int = 0, channels: int = 4) -> Path:
    """Conv 3x3 (`channels`, padded) -> Relu -> Conv 3x3 stride 2 -> Relu -> GlobalAveragePool -> Gemm: two
    logits from a 1x8x8 image."""
    rng = np.random.default_rng(seed)
    c = channels
    inits = {"w1": rng.normal(0, 0.4, (c, 1, 3, 3)), "b1": rng.normal(0, 0.1, c),
             "w2": rng.normal(0, 0.4, (c, c, 3, 3)), "b2": rng.normal(0, 0.1, c),
             "wf": rng.normal(0, 0.4, (c, 2)), "bf": rng.normal(0, 0.1, 2)}
    nodes = [_conv(["x", "w1", "b1"], "c1", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
             _conv(["r1", "w2", "b2"], "c2", strides=[2, 2]), helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"])]
    return _save(nodes, inits, [1, 1, 8, 8], [1, 2], path)


def ops_cnn_onnx(path: Path, seed: int = 1) -> Path:
    """The other operators onnxruntime quantizes in CNNs: LeakyRelu, AveragePool, MaxPool, Add and Mul of two
    activations, Concat, then GlobalAveragePool, Gemm, Sigmoid."""
    rng = np.random.default_rng(seed)
    inits = {"w1": rng.normal(0, 0.4, (4, 1, 3, 3)), "b1": rng.normal(0, 0.1, 4), "wf": rng.normal(0, 0.4, (8, 2)),
             "bf": rng.normal(0, 0.1, 2)}
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    nodes = [_conv(["x", "w1", "b1"], "c1", pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c1"], ["l1"], alpha=0.1),
             helper.make_node("AveragePool", ["l1"], ["a"], **pool), helper.make_node("MaxPool", ["l1"], ["m"], **pool),
             helper.make_node("Add", ["a", "m"], ["s"]), helper.make_node("Mul", ["a", "m"], ["p"]),
             helper.make_node("Concat", ["s", "p"], ["cat"], axis=1),
             helper.make_node("GlobalAveragePool", ["cat"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["y"])]
    return _save(nodes, inits, [1, 1, 8, 8], [1, 2], path)


def _save(nodes, inits, in_shape, out_shape, path: Path) -> Path:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def float_model(kind: str, path: Path) -> Path:
    """`mlp` (8-16-1), `cnn` (4 channels), `small_cnn` (2 channels: what the circuit tests build), `ops`."""
    return {"mlp": lambda p: make_mlp_onnx(p), "cnn": cnn_onnx, "small_cnn": lambda p: cnn_onnx(p, channels=2),
            "ops": ops_cnn_onnx}[kind](path)


def data_for(kind: str, n: int, seed: int) -> np.ndarray:
    return mlp_data(n, seed) if kind == "mlp" else image_data(n, seed)


def quantize_static(float_path: Path, out: Path, calibration: np.ndarray, fmt: str = "qdq", activations: str = "int8",
                    per_channel: bool = False) -> Path:
    """onnxruntime.quantization's static quantization: `fmt` "qdq" (QuantizeLinear/DequantizeLinear around
    float ops) or "qoperator" (QLinearMatMul, QLinearConv, QGemm, ...); int8 weights."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter([{"x": x[None]} for x in calibration])

        def get_next(self):
            return next(self.samples, None)

    ort_quantize_static(str(float_path), str(out), Reader(),
                        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                        activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=per_channel)
    return out


def quantize_dynamic(float_path: Path, out: Path, per_channel: bool = False) -> Path:
    """onnxruntime.quantization's dynamic quantization: DynamicQuantizeLinear, MatMulInteger, ConvInteger."""
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    ort_quantize_dynamic(str(float_path), str(out), per_channel=per_channel)
    return out


def torch_ptq_mlp(path: Path, calibration: np.ndarray, seed: int = 0) -> Path:
    """An 8-16-1 credit-style MLP quantized with torch.ao.quantization eager-mode post-training quantization
    (QuantStub, Linear-ReLU-Linear, DeQuantStub, then a float sigmoid; qnnpack's quint8 activations and
    per-tensor qint8 weights), calibrated on `calibration`, exported with torch's TorchScript exporter
    (`dynamo=False`), which writes the quantized modules as QuantizeLinear/DequantizeLinear around float Gemms."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = torch.ao.quantization.QuantStub()
            self.fc1, self.relu, self.fc2 = nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1)
            self.dequant = torch.ao.quantization.DeQuantStub()

        def forward(self, x):
            return torch.sigmoid(self.dequant(self.fc2(self.relu(self.fc1(self.quant(x))))))

    model = Mlp().eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig("qnnpack")
    prepared = torch.ao.quantization.prepare(model)
    with torch.no_grad():
        prepared(torch.from_numpy(calibration))
    quantized = torch.ao.quantization.convert(prepared)
    torch.onnx.export(quantized, torch.from_numpy(calibration[:1]), str(path), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)
    return path


def output_step(path: Path, last: bool = False) -> float | None:
    """The scale of the DequantizeLinear writing the graph's output (one output quantization step), if any;
    with `last`, of the graph's last DequantizeLinear (one step of the last quantized tensor, which a float
    head such as a sigmoid reads)."""
    from pipeline.rewrites.graph import Graph

    graph = Graph(onnx.load(str(path)))
    outputs = {o.name for o in graph.g.output}
    dequantizers = [n for n in graph.g.node if n.op_type == "DequantizeLinear" and graph.constant(n.input[0]) is None]
    for node in reversed(dequantizers):
        if last or node.output[0] in outputs:
            return float(np.asarray(graph.constant(node.input[1])).reshape(-1)[0])
    return None
