"""ONNX models as the circuit compiler sees them: inputs, outputs, operators, and what goes wrong.

Models reach zkinfer as ONNX files (the zoo's torch/scikit-learn models are exported by `pipeline.zoo`).
This module reads an ONNX file's signature: the shapes data must have, the operators, the nodes by name
(so that errors can name the node at fault).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # a str is a symbolic dimension (e.g. "batch_size")
    elem_type: str

    @property
    def symbolic_dims(self) -> tuple[str, ...]:
        return tuple(d for d in self.shape if isinstance(d, str))

    def concrete_shape(self, variables: dict[str, int]) -> tuple[int, ...]:
        try:
            return tuple(d if isinstance(d, int) else int(variables[d]) for d in self.shape)
        except KeyError as e:
            raise UsageError(f"input {self.name!r} has symbolic dimension {e.args[0]!r} with no value") from None

    def numel(self, variables: dict[str, int]) -> int:
        return math.prod(self.concrete_shape(variables))


@dataclass(frozen=True)
class OnnxSignature:
    path: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int
    op_counts: Counter = field(compare=False)
    node_ops: dict = field(compare=False)  # node name -> op type, for naming nodes in errors
    n_parameters: int = 0  # elements in the graph's initializers (weights, biases, thresholds)

    @property
    def symbolic_dims(self) -> tuple[str, ...]:
        seen = []
        for t in self.inputs:
            for d in t.symbolic_dims:
                if d not in seen:
                    seen.append(d)
        return tuple(seen)


def inspect(path: str | os.PathLike) -> OnnxSignature:
    """Read an ONNX file's inputs (excluding initializers), outputs, opset and operators."""
    import onnx

    p = Path(path)
    if not p.exists():
        raise UsageError(f"ONNX model not found: {p}")
    try:
        model = onnx.load(str(p), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises several unrelated types for a bad file
        raise UsageError(f"{p} is not a valid ONNX model: {str(e).splitlines()[0]}") from None
    graph = model.graph
    initializers = {i.name for i in graph.initializer}

    def spec(vi) -> TensorSpec:
        t = vi.type.tensor_type
        dims = []
        for i, d in enumerate(t.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or f"{vi.name}_dim{i}")
        return TensorSpec(vi.name, tuple(dims), onnx.TensorProto.DataType.Name(t.elem_type).lower())

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    node_ops = {n.name or f"#{i}": n.op_type for i, n in enumerate(graph.node)}
    return OnnxSignature(
        path=p,
        inputs=tuple(spec(v) for v in graph.input if v.name not in initializers),
        outputs=tuple(spec(v) for v in graph.output),
        opset=opset,
        op_counts=Counter(n.op_type for n in graph.node),
        node_ops=node_ops,
        n_parameters=sum(math.prod(i.dims) for i in graph.initializer),
    )
