"""The circuit every reliability check runs against: a small real model built by zkinfer's own build.

A credit-risk stand-in, PD = sigmoid(w . x + b) over 4 features in [-BOX, BOX], at scale 7 with a small
decomposition base, so the circuit sits at logrows ~10: it builds in seconds and proves in about a second,
which is what lets the checks try hundreds of mutants and several crashes with real proofs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS = (1.0, 0.5, -0.5, 0.25)
BIAS = 0.0
BOX = 4.0
SCALE = 7
# A borrower whose PD (about 0.54) gives a first rate within the default lending terms' circuit breaker.
ONCHAIN_FEATURES = (0.1, 0.2, 0.3, 0.4)


@dataclass(frozen=True)
class Subject:
    dir: Path          # the built circuit
    onnx: Path         # the model it was built from
    calibration: Path  # its calibration file
    n_features: int = len(WEIGHTS)

    def features(self, rng: np.random.Generator, n: int) -> list[list[float]]:
        """n rows of features inside the calibrated box, rounded to 3 decimals (distinct inputs, stable ids)."""
        return [[round(float(v), 3) for v in row] for row in rng.uniform(-BOX * 0.9, BOX * 0.9, (n, self.n_features))]


def write_onnx(path: Path, weights=WEIGHTS, bias: float = BIAS) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = len(weights)
    w = numpy_helper.from_array(np.asarray(weights, dtype=np.float32).reshape(n, 1), "w")
    b = numpy_helper.from_array(np.asarray([bias], dtype=np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["y"])]
    graph = helper.make_graph(nodes, "reliability", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_calibration(path: Path, weights=WEIGHTS, seed: int = 0) -> Path:
    """Random samples over the box plus the two corners that push the output furthest each way."""
    rng = np.random.default_rng(seed)
    corner = np.sign(weights) * BOX
    rows = np.vstack([corner, -corner, rng.uniform(-BOX, BOX, (30, len(weights)))])
    path.write_text(json.dumps({"input_data": [rows.ravel().tolist()]}))
    return path


def options(name: str = "reliability"):
    from ..build import BuildOptions
    from ..compile import CalibrationAttempt, CircuitArgs, Visibility
    from ..fidelity import Tolerance

    return BuildOptions(
        name=name, visibility=Visibility(input="public", output="public", param="fixed"),
        ladder=(CalibrationAttempt(target="resources", scales=(SCALE,)),),
        tolerance=Tolerance(max_abs_error=0.1),
        circuit_args=CircuitArgs(decomp_base=256, decomp_legs=4))


def build(root: str | Path, name: str = "subject", bias: float = BIAS, force: bool = False) -> Subject:
    """Build (or reuse, when nothing changed) the subject circuit under root/name."""
    from ..build import build_circuit

    root = Path(root)
    src = root / f"{name}.src"
    src.mkdir(parents=True, exist_ok=True)
    onnx_path = write_onnx(src / "model.onnx", bias=bias)
    cal = write_calibration(src / "calibration.json")
    build_circuit(onnx_path, cal, root / name, options(name), force=force)
    return Subject(dir=root / name, onnx=onnx_path, calibration=cal)
