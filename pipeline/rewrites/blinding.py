"""Blinded inputs: each hashed input tensor takes its rows' salts after their features, and the graph slices
them off before anything reads the input (`pipeline.blinding` says why and how they are laid out).

Not a workaround like the other rewrites: it is part of what a hashed-input circuit is, applied by
`pipeline.prepare` last (after the calibrated rewrites too), never skipped. Input `x` of shape S becomes
input `x` of shape [R, C + E] (R rows, C features per row, E blinding elements), followed by
Slice(x, 0..C on the last axis) and, where S is not [R, C], a Reshape back to S; every node that read `x`
reads that instead.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UnsupportedModelError
from .shapes import set_dims


def add_blinding(model: onnx.ModelProto, blinding: dict) -> list[str]:
    """Rewrite the graph's inputs for `blinding` (the manifest's ``circuit.blinding``). Returns what changed."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    changes, nodes = [], []
    weights = {i.name for i in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in weights]
    for vi, shape in zip(inputs, blinding["shapes"], strict=True):
        name = vi.name
        if name in outputs:
            raise UnsupportedModelError(f"input {name!r} is also a graph output: a hashed input's salt would "
                                        "be an output too")
        original = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        rows, width = shape
        features = width - blinding["elements"]
        sliced = f"{name}__features" if original == [rows, features] else f"{name}__rows"
        consumer = f"{name}__features"
        for node in graph.node:
            for i, inp in enumerate(node.input):
                if inp == name:
                    node.input[i] = consumer
        consts = {f"{name}__starts": [0], f"{name}__ends": [features], f"{name}__axes": [1]}
        if sliced != consumer:
            consts[f"{name}__shape"] = original
        for cname, value in consts.items():
            graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), cname))
        nodes.append(helper.make_node("Slice", [name, f"{name}__starts", f"{name}__ends", f"{name}__axes"],
                                      [sliced], name=f"{name}__unblind"))
        if sliced != consumer:
            nodes.append(helper.make_node("Reshape", [sliced, f"{name}__shape"], [consumer],
                                          name=f"{name}__unblind_reshape"))
        set_dims(vi, (rows, width))
        changes.append(f"input {name!r}: {original} -> [{rows}, {width}], the last {blinding['elements']} of each "
                       "row a salt element, sliced off")
    # The slices first: a graph's nodes are in topological order.
    old = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + old)
    return changes
