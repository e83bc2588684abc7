"""What a rewrite is, and what it is told about the model it rewrites."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx

from .graph import Graph


@dataclass
class RewriteContext:
    """What rewrites may consult besides the graph.

    `samples`: calibration samples, each a list with one array per graph input (concrete shapes), as the
    user gave them. `input_prescale`: filled by rewrites that choose an input's unit (prescale: raw
    amounts; quantized: x * 2^j for a QuantizeLinear): graph input name -> per-feature exponents m (the circuit
    is fed x / 2**m along the input's last axis; m may be negative). `run_args`: ezkl run arguments a
    rewrite's output needs (for example integer constants held at scale 0), set on every calibration.
    `input_scales`: for the rewrites that run after calibration (`CALIBRATED_REWRITES`), graph input name ->
    the fixed-point scale chosen.
    """

    samples: list[list[np.ndarray]]
    input_names: list[str]
    input_prescale: dict[str, np.ndarray] = field(default_factory=dict)
    input_scales: dict[str, int] = field(default_factory=dict)
    run_args: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Rewrite:
    """One graph transformation that keeps what the model computes.

    `works_around` says what ezkl does wrong (or cannot do) without it. `apply` edits the graph in place and
    returns one note per change (empty: nothing to do). The fidelity gate, run against the user's original
    model, checks every rewrite's result like any other circuit.
    """

    name: str
    works_around: str
    apply: Callable[[Graph, RewriteContext], list[str]]

    def __call__(self, model: onnx.ModelProto, ctx: RewriteContext) -> list[str]:
        return self.apply(Graph(model), ctx)
