"""What a build will do, decided before any ezkl work: its options, the data it reads, its key (a build
whose inputs are unchanged since the last successful one does nothing) and its plan (`plan_build`).
`pipeline.build` carries the plan out; `pipeline.estimate` uses it to predict costs without keys."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import EZKL_VERSION
from . import fidelity as fidelity_mod
from . import inputs as inputs_mod
from . import manifest as manifest_mod
from . import prepare as prepare_mod
from . import reference as reference_mod
from . import srs as srs_mod
from .artifacts import (
    canonical_json,
    sha256_bytes,
    sha256_file,
)
from .compile import (
    DEFAULT_LADDER,
    CalibrationAttempt,
    CircuitArgs,
    Visibility,
)
from .errors import (
    ArtifactMismatchError,
    InputError,
    UsageError,
)
from .export import OnnxSignature, inspect

log = logging.getLogger("pipeline.build")  # one logger for the whole build, planning included

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class BuildOptions:
    name: str | None = None
    visibility: Visibility = field(default_factory=Visibility)
    # Inferences per proof. For a model with a symbolic batch dimension, that dimension's value; for a
    # fixed-shape model it must match the export (first dimension, or one input per inference).
    batch_size: int | None = None
    # Values for other symbolic input dimensions, as (name, value) pairs (`--dim NAME=N`).
    dims: tuple[tuple[str, int], ...] = ()
    tolerance: fidelity_mod.Tolerance | None = None  # None: a default relative to the outputs' spread
    task: str | None = None  # "classification" adds label agreement to the fidelity report
    srs_path: Path | None = None  # a ceremony SRS; None: the cached dev SRS (insecure)
    ladder: tuple[CalibrationAttempt, ...] = DEFAULT_LADDER
    max_attempts: int | None = None  # None: the whole ladder
    max_logrows: int | None = None
    max_validation: int = fidelity_mod.DEFAULT_MAX_SAMPLES
    seed: int = 0
    # Rewrites (by name, see `pipeline.rewrites`) not to apply: for comparing with plain ezkl, or debugging.
    skip_rewrites: tuple[str, ...] = ()
    circuit_args: CircuitArgs = field(default_factory=CircuitArgs)

    def __post_init__(self):
        if self.task is not None and self.task not in TASKS:
            raise UsageError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {self.batch_size}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise UsageError(f"max attempts must be at least 1, got {self.max_attempts}")
        prepare_mod.check_rewrite_names(self.skip_rewrites)

    def key_fields(self) -> dict:
        """Everything that changes what the build produces (the name and budget only label it)."""
        d = asdict(self)
        d["srs_path"] = None
        d["ladder"] = [asdict(a) for a in self.attempts]
        for k in ("name", "max_attempts"):
            d.pop(k)
        return json.loads(json.dumps(d, default=str))

    @property
    def attempts(self) -> tuple[CalibrationAttempt, ...]:
        return self.ladder[: self.max_attempts] if self.max_attempts else self.ladder


@dataclass
class _Data:
    """A data file's samples (one ezkl input_data value each) and its recorded outputs, if any."""

    samples: list
    output_data: object = None


def _load_samples(path: Path, sig: OnnxSignature, variables: dict, what: str) -> _Data:
    sizes = [t.numel(variables) for t in sig.inputs]
    shapes = [t.concrete_shape(variables) for t in sig.inputs]
    obj = inputs_mod.load_file(path, what)
    data = obj.get("input_data") if isinstance(obj, dict) else None
    if isinstance(data, list) and len(sizes) < len(data) and all(isinstance(v, list) for v in data) \
            and any(data[len(sizes):]):
        # ezkl pairs input_data's lists with the model's inputs in order and ignores the rest: so do we.
        log.warning("%s: \"input_data\" has %d lists but the model has %d inputs: using the first %d, as ezkl does",
                    path, len(data), len(sizes), len(sizes))
        obj = {**obj, "input_data": data[: len(sizes)]}
    flat = inputs_mod.parse_input_data(obj, str(path), sizes, [t.elem_type == "bool" for t in sig.inputs])
    inputs_mod.count_samples(flat, sizes, shapes, str(path))
    for i, (values, t) in enumerate(zip(flat, sig.inputs, strict=True)):
        limit = _FLOAT_LIMITS.get(t.elem_type)
        bad = next((j for j, v in enumerate(values) if limit is not None and abs(v) > limit), None)
        if bad is not None:
            raise InputError(f"{path} input_data[{i}] value {bad} ({values[bad]:.6g}) is beyond the largest "
                             f"{t.elem_type} ({limit:.6g}) the model's input '{t.name}' can hold")
    return _Data(inputs_mod.split_samples(flat, sizes), obj.get("output_data"))


# The largest finite value of each float input type: a larger one becomes infinity when the model reads it.
_FLOAT_LIMITS = {"float": 3.4028234663852886e38, "float16": 65504.0, "bfloat16": 3.3895313892515355e38}


def _n_classes(sig: OnnxSignature, variables: dict, task: str | None) -> int | None:
    if task != "classification":
        return None
    shape = sig.outputs[0].concrete_shape(variables)
    return int(shape[-1]) if shape else 1


def build_key(onnx_path: Path, data_path: Path, validation_path: Path | None, options: BuildOptions) -> str:
    srs = {"origin": srs_mod.DEV_ORIGIN} if options.srs_path is None else {
        "origin": "given", "sha256": sha256_file(options.srs_path)}
    return sha256_bytes(canonical_json({
        "schema": manifest_mod.SCHEMA,
        "ezkl": EZKL_VERSION,
        "prepare": prepare_mod.PREPARE_VERSION,
        "onnx": sha256_file(onnx_path),
        "data": sha256_file(data_path),
        "validation": sha256_file(validation_path) if validation_path else None,
        "options": options.key_fields(),
        "srs": srs,
    }))


def _up_to_date(out_dir: Path, key: str) -> manifest_mod.Manifest | None:
    """The existing manifest, if it was built from exactly these inputs and its artifacts still match."""
    if not (out_dir / manifest_mod.MANIFEST).exists():
        return None
    try:
        m = manifest_mod.load(out_dir)
    except UsageError:
        return None
    if m.data.get("build_key") != key:
        return None
    try:
        manifest_mod.verify_artifacts(m)
    except ArtifactMismatchError as e:
        log.warning("rebuilding: %s", e.message)
        return None
    return m


@dataclass
class _Plan:
    """What a build works from, read and checked before anything is written."""

    onnx_path: Path
    data_path: Path
    sig: OnnxSignature
    variables: dict
    calibration: list
    validation: list
    validation_source: str
    reference: reference_mod.Reference
    key: str


def plan_build(onnx_path: Path, data_path: Path, validation_path: Path | None, options: BuildOptions) -> _Plan:
    """Read and check everything a build works from (files, signature, samples, reference), writing nothing."""
    for p, what in ((onnx_path, "ONNX model"), (data_path, "calibration data"), (validation_path, "validation data")):
        if p is not None and not p.is_file():
            raise UsageError(f"{what} not found: {p}")
    if options.srs_path is not None and not Path(options.srs_path).is_file():
        raise UsageError(f"SRS file not found: {options.srs_path}")
    sig = inspect(onnx_path)
    variables = prepare_mod.resolve_dims(sig, options.batch_size, dict(options.dims))
    data = _load_samples(data_path, sig, variables, "calibration data")
    probe = reference_mod.feeds(sig, data.samples[0], variables)
    ref = reference_mod.open_reference(onnx_path, sig, probe, data.output_data, len(data.samples))
    if ref.needs_given_samples:
        validation = data.samples[: options.max_validation]
        source = (f"given: the data file's {len(validation)} samples, whose recorded output_data is the only "
                  "reference for this graph")
    elif validation_path:
        validation = _load_samples(validation_path, sig, variables, "validation data").samples
        validation = validation[: options.max_validation]
        source = f"held-out: {len(validation)} samples from {validation_path.name}"
    else:
        integer = [not t.elem_type.startswith(("float", "double", "bfloat")) for t in sig.inputs]
        validation, source = fidelity_mod.derive_validation(data.samples, options.max_validation, options.seed,
                                                            integer)
    key = build_key(onnx_path, data_path, validation_path, options)
    return _Plan(onnx_path, data_path, sig, variables, data.samples, validation, source, ref, key)
