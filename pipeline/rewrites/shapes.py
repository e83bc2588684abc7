"""Concrete shapes: every symbolic dimension replaced by its value before compilation.

ezkl resolves only the symbols it is told about (`variables`, by default just `batch_size`), and the
shapes zkinfer records (output shapes, instance layout) must be known before keys are made. Exporters
name dimensions freely (`batch_size`, `N`, `unk__12`), skl2onnx leaves them unnamed, and tract names the
ones it invents after the node that made them (`Softmaxonnx::ArgMax_63_dim_1`). So the circuit is
compiled from a graph whose inputs have concrete shapes (resolved from `--batch`, `--dim` and the data),
whose outputs have concrete shapes (inferred, or read off one evaluation of the graph), and which carries
no intermediate shape annotations for tract to trip on.
"""

from __future__ import annotations

import numpy as np
import onnx

from ..errors import UnsupportedModelError


def set_dims(value_info: onnx.ValueInfoProto, shape: tuple[int, ...]) -> None:
    dims = value_info.type.tensor_type.shape.dim
    del dims[:]
    for d in shape:
        dims.add().dim_value = int(d)


def concrete_inputs(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> None:
    """Give each named graph input its concrete shape."""
    for vi in model.graph.input:
        if vi.name in shapes:
            set_dims(vi, shapes[vi.name])


def _known(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)
    return None if any(d is None for d in dims) else dims


def concrete_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Give each graph output its concrete shape: from ONNX shape inference where it is definite, else by
    evaluating the graph once on `feeds` (onnx's reference evaluator). Intermediate annotations are dropped.
    Returns the output shapes."""
    del model.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        by_name = {vi.name: _known(vi) for vi in inferred.graph.output}
    except Exception:  # inference is a hint only; evaluation below decides
        by_name = {}
    missing = [o.name for o in model.graph.output if by_name.get(o.name) is None]
    if missing:
        try:
            values = _evaluate(model, feeds, missing)
        except Exception as e:  # the reference evaluator raises many types for graphs it cannot run
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UnsupportedModelError(f"the shape of output(s) {', '.join(missing)} is not declared and the graph "
                                        f"could not be evaluated to find it ({type(e).__name__}: {first})") from None
        for name, value in zip(missing, values, strict=True):
            by_name[name] = tuple(int(d) for d in np.shape(value))
    for vi in model.graph.output:
        set_dims(vi, by_name[vi.name])
    return {vi.name: by_name[vi.name] for vi in model.graph.output}


def _evaluate(model: onnx.ModelProto, feeds: dict[str, np.ndarray], names: list[str]) -> list:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(names, feeds)
