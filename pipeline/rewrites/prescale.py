"""Input prescaling: raw amounts (dollars, basis points) fed to the circuit in units it can afford.

ezkl quantizes every value of an input tensor with one scale: x becomes round(x * 2**s). A model whose
inputs are raw amounts and whose first step normalizes them ((x - mean) / std inside the graph, or small
first-layer weights) then fails: at any scale that keeps its ratios and small features precise, an income
of 200,000 is a 2**25 integer, the products and range checks downstream outgrow every lookup table, and
calibration finds no settings at all ("could not find any suitable parameters"); and the normalizing
constants (1/std ~ 2**-16) round to zero at the parameter scale.

The rewrite gives each feature its own power of two: the circuit's input is x' = x / 2**m (per feature, along
the input's last axis), and the graph's first op absorbs the factor back, exactly:

    x - c    ->  x' - c / 2**m                  (then carried on to the next op; Identity passes it on)
    x * a    ->  x' * (a * 2**m)                x / d  ->  x' / (d / 2**m)
    x @ W    ->  x' @ (2**m W)  (rows)          Gemm(x, B) likewise
    BatchNormalization(x; gamma, mean)  ->  BatchNormalization(x'; gamma * 2**m, mean / 2**m)  ([N, F] inputs)

m is chosen so the absorbed multiplier is about 1 (m ~ -log2 |multiplier|), and never so large that x'
would fall below 1 in magnitude (m <= log2 max|x| over the calibration data), so a feature keeps 2**-s
relative precision where the model looks at it. Dividing by a power of two is exact in binary floating
point, so the integers the circuit sees are exactly round(x * 2**(s - m)): the input is quantized at scale
s - m instead of s. zkinfer applies the division wherever it hands inputs to ezkl (proving, calibration,
the fidelity gate, commitments), from the manifest's `input_prescale`.

Applied only to inputs with some feature of magnitude >= 2**MIN_MAGNITUDE_LOG2 in the calibration data,
and only when every step up to an absorbing op is one of the forms above: other models are left as they
are.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from .base import Rewrite, RewriteContext
from .graph import Graph

# Inputs with a feature this large (2**8 = 256) are "raw amounts"; below, ezkl's single scale copes.
MIN_MAGNITUDE_LOG2 = 8
MAX_EXPONENT = 40


def _feature_vector(value: np.ndarray, n: int) -> np.ndarray | None:
    """A constant that broadcasts along the last axis only, as a length-n vector (None: it does not)."""
    v = np.asarray(value, dtype=np.float64)
    if v.size == 1:
        return np.full(n, float(v.reshape(-1)[0]))
    if v.shape[-1:] == (n,) and v.size == n:
        return v.reshape(n)
    return None


def _gemm_attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _plan(graph: Graph, name: str, n: int, rank: int):
    """Follow `name` through offset ops to the op that absorbs a per-feature factor.

    Returns (offsets, absorber, multiplier): the Add/Sub nodes passed on the way and the absorbing node, each
    with the index of its constant input, and the absorber's per-feature multiplier; None when the chain has another
    shape (more than one consumer, a non-constant operand, an op that cannot absorb the factor).
    """
    offsets = []
    current = name
    while True:
        users = graph.consumers(current)
        if len(users) != 1 or graph.is_graph_output(current):
            return None
        node = users[0]
        if node.op_type == "Identity":
            current = node.output[0]
            continue
        if node.op_type == "BatchNormalization" and rank == 2 and len(node.output) == 1:
            consts = [graph.constant(n) for n in node.input[1:5]]
            if any(c is None or c.shape != (n,) for c in consts):
                return None
            gamma, _, _, var = (np.asarray(c, dtype=np.float64) for c in consts)
            eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            return offsets, (node, 1), np.abs(gamma / np.sqrt(var + eps))
        if node.op_type in ("Add", "Sub", "Mul", "Div"):
            other = 1 if node.input[0] == current else 0
            if node.input[1 - other] != current:
                return None
            const = graph.constant(node.input[other])
            vec = None if const is None else _feature_vector(const, n)
            if vec is None:
                return None
            if node.op_type in ("Add", "Sub"):
                offsets.append((node, other))
                current = node.output[0]
                continue
            if node.op_type == "Div" and other != 1:  # c / x is not linear in x
                return None
            multiplier = vec if node.op_type == "Mul" else 1.0 / np.where(vec == 0, np.inf, vec)
            return offsets, (node, other), np.abs(multiplier)
        if node.op_type in ("MatMul", "Gemm") and node.input[0] == current:
            w = graph.constant(node.input[1])
            if w is None or w.ndim != 2:
                return None
            attrs = _gemm_attrs(node) if node.op_type == "Gemm" else {}
            if attrs.get("transA", 0):
                return None
            rows = w.T if attrs.get("transB", 0) else w
            if rows.shape[0] != n:
                return None
            return offsets, (node, 1), np.abs(rows).max(axis=1)
        return None


def _exponents(multiplier: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """m per feature: about -log2(multiplier), at most log2(max |x|), at least 0."""
    m = np.zeros(len(multiplier), dtype=np.int64)
    for i, (mult, mag) in enumerate(zip(multiplier, magnitude, strict=True)):
        if mult > 0 and math.isfinite(mult) and mag >= 1:
            m[i] = int(np.clip(min(round(-math.log2(mult)), math.floor(math.log2(mag))), 0, MAX_EXPONENT))
    return m


def _absorb(graph: Graph, offsets, absorber, factor: np.ndarray) -> None:
    """Rewrite constants so the graph computes on x' = x / factor what it computed on x."""
    def rescale(name: str, how) -> None:
        c = np.asarray(graph.constant(name))
        new = how(_feature_vector(c, len(factor))).astype(c.dtype)
        graph.set_constant(name, new.reshape(c.shape) if c.size == len(factor) else new)

    for node, k in offsets:
        rescale(node.input[k], lambda v: v / factor)
    node, k = absorber
    if node.op_type == "BatchNormalization":  # (x - mean) * gamma / sd: mean by 1/factor, gamma by factor
        rescale(node.input[3], lambda v: v / factor)
        rescale(node.input[1], lambda v: v * factor)
        return
    if node.op_type in ("Mul", "Div"):
        rescale(node.input[k], (lambda v: v * factor) if node.op_type == "Mul" else (lambda v: v / factor))
        return
    w = np.asarray(graph.constant(node.input[1]))
    trans_b = _gemm_attrs(node).get("transB", 0) if node.op_type == "Gemm" else 0
    scaled = w * factor[None, :] if trans_b else w * factor[:, None]
    graph.set_constant(node.input[1], scaled.astype(w.dtype))


def _shared_constants(graph: Graph, offsets, absorber) -> bool:
    """True when a constant to be rewritten is also read elsewhere (rewriting it would change that use)."""
    for node in [n for n, _ in offsets] + [absorber[0]]:
        for name in node.input:
            if graph.constant(name) is not None and len(graph.consumers(name)) > 1:
                return True
    return False


def _apply(graph: Graph, ctx: RewriteContext) -> list[str]:
    notes = []
    for idx, name in enumerate(ctx.input_names):
        if name in ctx.input_prescale:  # an earlier rewrite chose this input's unit
            continue
        values = np.stack([np.asarray(s[idx], dtype=np.float64) for s in ctx.samples])
        if values.ndim < 2 or not np.issubdtype(values.dtype, np.floating):
            continue
        n = values.shape[-1]
        magnitude = np.abs(values.reshape(-1, n)).max(axis=0)
        if magnitude.max() < 2 ** MIN_MAGNITUDE_LOG2:
            continue
        plan = _plan(graph, name, n, values.ndim - 1)
        if plan is None or _shared_constants(graph, plan[0], plan[1]):
            continue  # the fidelity gate will say whether ezkl's single scale copes
        offsets, absorber, multiplier = plan
        m = _exponents(multiplier, magnitude)
        if not m.any():
            continue
        _absorb(graph, offsets, absorber, np.exp2(m.astype(np.float64)))
        ctx.input_prescale[name] = m
        shown = ", ".join(f"{i}:{int(e)}" for i, e in enumerate(m) if e)
        node = absorber[0]
        notes.append(f"input {name!r} fed as x / 2^m per feature (m {shown}), absorbed by "
                     f"{node.op_type} {node.name or node.output[0]!r}")
    return notes


PRESCALE_RAW_AMOUNTS = Rewrite(
    name="prescale-raw-amounts",
    works_around="one fixed-point scale per input cannot hold raw amounts and small features at once",
    apply=_apply,
)
