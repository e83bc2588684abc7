"""Prepare: the ONNX graph a user gives -> the graph ezkl compiles, computing the same function.

    prepared = prepare_model(source_onnx, sig, variables, calibration_samples, staging / "network.onnx")

Between export and compilation, because ezkl's front end reads some valid graphs wrongly or not at all:

1. every graph input gets its concrete shape (symbolic dimensions resolved by `resolve_dims`);
2. the rewrites in `pipeline.rewrites` run in order, each working around one known ezkl miscompilation or
   gap (for example `Equal`'s output scale, or raw-amount inputs one fixed-point scale cannot hold);
3. every graph output gets its concrete shape, and intermediate annotations are dropped.

Then, per calibration attempt, once ezkl has chosen the fixed-point scales, `apply_calibrated` runs the
rewrites that depend on them (`pipeline.rewrites.CALIBRATED_REWRITES`) on that graph, before compilation.

What was rewritten, and why, is recorded in the manifest. The user's original graph stays the reference
for the fidelity gate (`pipeline.reference`), so no rewrite is trusted on its own say-so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UnsupportedModelError, UsageError
from .export import OnnxSignature, inspect
from .inputs import to_circuit_values
from .rewrites import CALIBRATED_REWRITES, REWRITES, RewriteContext
from .rewrites.shapes import concrete_inputs, concrete_outputs

# Bump when a rewrite changes what it produces: builds keyed on an older version are redone.
PREPARE_VERSION = 3


@dataclass
class PreparedModel:
    path: Path
    sig: OnnxSignature  # the prepared graph's signature: concrete shapes throughout
    variables: dict[str, int]  # the source graph's symbolic dimensions, resolved
    rewrites: list[dict] = field(default_factory=list)  # [{"rewrite", "works_around", "changes": [...]}]
    # Per graph input, per feature along its last axis: the circuit is fed x / 2**m. None: no prescaling.
    input_prescale: list[list[int] | None] | None = None
    # Applied after calibration, for the last attempt's scales (same form as `rewrites`).
    after_calibration: list[dict] = field(default_factory=list)
    skip: tuple[str, ...] = ()
    _before_calibrated: bytes = field(default=b"", repr=False)

    def apply_calibrated(self, input_scales: list[int]) -> list[dict]:
        """Rewrite `path` for these input scales (one per graph input), from the graph as prepared: each
        attempt starts from the same graph. Returns (and records) what was applied."""
        import onnx

        model = onnx.load_from_string(self._before_calibrated) if self._before_calibrated else onnx.load(str(self.path))
        if not self._before_calibrated:
            self._before_calibrated = model.SerializeToString()
        names = [t.name for t in self.sig.inputs]
        prescaled = {n: np.asarray(m) for n, m in zip(names, self.input_prescale or [None] * len(names), strict=True)
                     if m and any(m)}
        ctx = RewriteContext(samples=[], input_names=names, input_prescale=prescaled,
                             input_scales=dict(zip(names, (int(s) for s in input_scales), strict=True)))
        self.after_calibration = _run(CALIBRATED_REWRITES, model, ctx, self.skip, self.path)
        onnx.save(model, str(self.path))
        return self.after_calibration
    # ezkl run arguments the prepared graph needs (`RewriteContext.run_args`), applied to every calibration.
    run_args: dict = field(default_factory=dict)

    def circuit_values(self, sample: list[list[float]]) -> list[list[float]]:
        """One sample as the values ezkl is given (prescaled where the manifest says so)."""
        return to_circuit_values(sample, self.input_prescale)

    def manifest_entry(self) -> dict:
        entry = {"version": PREPARE_VERSION, "rewrites": self.rewrites, "after_calibration": self.after_calibration}
        return entry | ({"run_args": self.run_args} if self.run_args else {})


def resolve_dims(sig: OnnxSignature, batch_size: int | None, dims: dict[str, int] | None = None) -> dict[str, int]:
    """A value for every symbolic dimension of the graph's inputs.

    A symbolic first axis is the batch axis: `batch_size` (default 1). Any other needs a value from `dims`
    (`--dim NAME=N`); a fixed-shape model asked for a batch must have been exported with it.
    """
    dims = dict(dims or {})
    unknown = set(dims) - {d for t in sig.inputs for d in t.symbolic_dims}
    if unknown:
        raise UsageError(f"{sig.path}: --dim names {', '.join(sorted(unknown))}, which no model input has "
                         f"(symbolic dimensions: {', '.join(sig.symbolic_dims) or 'none'})")
    variables: dict[str, int] = {}
    batch_axes = {t.shape[0] for t in sig.inputs if t.shape and isinstance(t.shape[0], str)}
    for spec in sig.inputs:
        for axis, d in enumerate(spec.shape):
            if not isinstance(d, str) or d in variables:
                continue
            if d in dims:
                variables[d] = int(dims[d])
            elif axis == 0 or d in batch_axes:
                variables[d] = batch_size or 1
            else:
                raise UsageError(f"{sig.path}: input {spec.name!r} has symbolic dimension {d!r} (axis {axis}) that "
                                 f"cannot be inferred; give its value with --dim {d}=N")
    for name, value in variables.items():
        if value < 1:
            raise UsageError(f"{sig.path}: dimension {name!r} must be at least 1, got {value}")
    if not batch_axes and batch_size and batch_size > 1:
        first = sig.inputs[0].shape
        if (not first or first[0] != batch_size) and len(sig.inputs) != batch_size:
            raise UsageError(f"{sig.path}: --batch {batch_size} but the model has fixed input shapes "
                             f"{[list(t.shape) for t in sig.inputs]}; export it with batch size {batch_size}")
    return variables


def sample_feeds(sig: OnnxSignature, sample: list[list[float]], variables: dict) -> dict[str, np.ndarray]:
    from .reference import feeds

    return feeds(sig, sample, variables)


def check_rewrite_names(names) -> None:
    known = {r.name for r in (*REWRITES, *CALIBRATED_REWRITES)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown rewrite(s) {', '.join(unknown)}; the rewrites are {', '.join(sorted(known))}")


def prepare_model(source: str | os.PathLike, sig: OnnxSignature, variables: dict[str, int],
                  samples: list[list[list[float]]], out_path: str | os.PathLike,
                  skip: tuple[str, ...] = ()) -> PreparedModel:
    """Write the graph ezkl will compile to `out_path` and describe what was done to it. Rewrites named in
    `skip` are not applied."""
    import onnx

    model = onnx.load(str(source))
    concrete_inputs(model, {t.name: t.concrete_shape(variables) for t in sig.inputs})
    arrays = [[np.asarray(v, dtype=np.float64).reshape(t.concrete_shape(variables))
               for v, t in zip(s, sig.inputs, strict=True)] for s in samples]
    ctx = RewriteContext(samples=arrays, input_names=[t.name for t in sig.inputs])
    applied = _run(REWRITES, model, ctx, skip, source)
    prescale = None
    if ctx.input_prescale:
        prescale = [ctx.input_prescale[t.name].tolist() if t.name in ctx.input_prescale else None
                    for t in sig.inputs]
    probe = sample_feeds(sig, to_circuit_values(samples[0], prescale), variables)
    concrete_outputs(model, probe)
    out_path = Path(out_path)
    onnx.save(model, str(out_path))
    return PreparedModel(path=out_path, sig=inspect(out_path), variables=variables, rewrites=applied,
                         input_prescale=prescale, skip=tuple(skip), run_args=ctx.run_args)


def _run(rewrites, model, ctx: RewriteContext, skip, source) -> list[dict]:
    applied = []
    for rewrite in rewrites:
        if rewrite.name in skip:
            continue
        try:
            changes = rewrite(model, ctx)
        except UnsupportedModelError as e:  # a rewrite refusing a model names the operator; say which file
            raise UnsupportedModelError(f"{source}: {e.message}") from None
        if changes:
            applied.append({"rewrite": rewrite.name, "works_around": rewrite.works_around, "changes": changes})
    return applied
