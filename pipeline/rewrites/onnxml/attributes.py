"""What the `ai.onnx.ml` rewrite reads off a node: its attributes, and why a node cannot be rewritten."""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

TRANSFORMS = {"NONE": "none", "LOGISTIC": "logistic", "SOFTMAX": "softmax"}


class Refused(Exception):
    """Why one node cannot be rewritten (turned into an UnsupportedModelError naming it)."""


def node_attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [x.decode() for x in v]
        elif a.type == a.TENSOR:
            v = numpy_helper.to_array(v)
        out[a.name] = v
    return out


def floats(attrs: dict, name: str) -> np.ndarray | None:
    """A float list attribute, or its `_as_tensor` (double) twin."""
    if attrs.get(f"{name}_as_tensor") is not None:
        return np.asarray(attrs[f"{name}_as_tensor"], dtype=np.float64).reshape(-1)
    v = attrs.get(name)
    return None if v is None else np.asarray(v, dtype=np.float32).astype(np.float64).reshape(-1)


def post_transform(attrs: dict) -> str:
    pt = attrs.get("post_transform", "NONE")
    if pt not in TRANSFORMS:
        raise Refused(f"post_transform {pt} has no exact circuit form (NONE, LOGISTIC and SOFTMAX do)")
    return TRANSFORMS[pt]
