"""The reference: what the user's model computes, to hold the circuit to.

The fidelity gate compares the circuit with the model as the user gave it (never with zkinfer's rewritten
graph: the rewrites are among the things it checks). Three ways to run that model, tried in order:

1. **onnxruntime**, fed the element types the ONNX signature declares (float64, int64, bool, ...);
2. **onnx's reference evaluator** (`onnx.reference.ReferenceEvaluator`, pure numpy), for graphs that
   onnxruntime refuses although they are valid ONNX (hummingbird's int8 MatMul, for one);
3. **the data file's `output_data`** (ezkl's input.json field), when neither can run the graph: the outputs
   its producer recorded for exactly the samples in `input_data`.

The choice and the reason are recorded in the fidelity report. Outputs are compared as float64 vectors,
all output tensors joined; booleans count as 0/1, and a sequence of maps (skl2onnx's ZipMap) as its values
in key order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UnsupportedModelError
from .export import OnnxSignature

ONNXRUNTIME = "onnxruntime"
ONNX_REFERENCE = "onnx.reference"
OUTPUT_DATA = "output_data"

_NUMPY_TYPES = {
    "float": np.float32, "double": np.float64, "float16": np.float16,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
    "uint64": np.uint64, "uint32": np.uint32, "uint16": np.uint16, "uint8": np.uint8, "bool": np.bool_,
}


def numpy_type(elem_type: str):
    try:
        return _NUMPY_TYPES[elem_type]
    except KeyError:
        raise UnsupportedModelError(f"graph input of element type {elem_type} cannot be given as numbers") from None


def feeds(sig: OnnxSignature, sample: list[list[float]], variables: dict) -> dict[str, np.ndarray]:
    """One sample (one flat list per input) as arrays of the declared types and shapes."""
    out = {}
    for spec, values in zip(sig.inputs, sample, strict=True):
        dtype = numpy_type(spec.elem_type)
        a = np.asarray(values, dtype=np.float64).reshape(spec.concrete_shape(variables))
        if not np.issubdtype(dtype, np.floating):
            a = np.rint(a)
        out[spec.name] = a.astype(dtype)
    return out


def as_vector(outputs: list) -> np.ndarray:
    """All output tensors of one evaluation, flattened and joined as float64."""
    parts = []
    for o in outputs:
        if isinstance(o, list) and o and isinstance(o[0], dict):  # ZipMap: [{class: probability}, ...]
            o = [[row[k] for k in sorted(row)] for row in o]
        parts.append(np.asarray(o, dtype=np.float64).ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


@dataclass
class Reference:
    """A way to run the user's model. `kind` and `why` go into the fidelity report."""

    kind: str
    why: str
    _run: object = None
    _recorded: list[np.ndarray] | None = None

    @property
    def needs_given_samples(self) -> bool:
        """True when only the data file's own samples have reference outputs (no derived validation)."""
        return self.kind == OUTPUT_DATA

    def outputs(self, sample_feeds: dict[str, np.ndarray], index: int | None = None) -> np.ndarray:
        if self._recorded is not None:
            return self._recorded[index]
        return as_vector(self._run(sample_feeds))

    def describe(self) -> dict:
        return {"kind": self.kind, "why": self.why}


def _onnxruntime(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda f: session.run(None, f)


def _onnx_reference(path: Path):
    import onnx
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(onnx.load(str(path)))
    return lambda f: evaluator.run(None, f)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def recorded_outputs(output_data, n_samples: int, where: str) -> list[np.ndarray] | None:
    """ezkl's `output_data` (one flat list per output tensor, samples back to back) -> one vector per sample."""
    if not isinstance(output_data, list) or not output_data:
        return None
    try:
        tensors = [np.asarray(t, dtype=np.float64).ravel() for t in output_data]
    except (TypeError, ValueError):
        return None
    if any(t.size % n_samples for t in tensors):
        return None
    per = [t.reshape(n_samples, -1) for t in tensors]
    return [np.concatenate([p[i] for p in per]) for i in range(n_samples)]


def open_reference(onnx_path: str | os.PathLike, sig: OnnxSignature, probe: dict[str, np.ndarray],
                   output_data=None, n_given: int = 0) -> Reference:
    """The first of onnxruntime, onnx.reference and `output_data` that runs the model on `probe`.

    UnsupportedModelError, naming each failure, when none can.
    """
    path = Path(onnx_path)
    failures = []
    for kind, opener in ((ONNXRUNTIME, _onnxruntime), (ONNX_REFERENCE, _onnx_reference)):
        try:
            run = opener(path)
            vec = as_vector(run(probe))
            if not np.all(np.isfinite(vec)):
                raise ValueError("non-finite outputs")
        except Exception as e:  # each runtime raises its own types for a graph it cannot run
            failures.append(f"{kind}: {_first_line(e)}")
            continue
        why = ("runs the model with its declared input types" if not failures
               else "onnxruntime cannot run this graph (" + failures[0] + ")")
        return Reference(kind=kind, why=why, _run=run)
    recorded = recorded_outputs(output_data, n_given, str(path)) if n_given else None
    if recorded is not None:
        return Reference(kind=OUTPUT_DATA, why="neither runtime can run this graph (" + "; ".join(failures) +
                         "): the data file's recorded output_data for its own samples", _recorded=recorded)
    raise UnsupportedModelError(
        f"{path}: no reference can run this model to check the circuit against ({'; '.join(failures)}); "
        "add the model's outputs for the calibration samples as \"output_data\" in the data file")
