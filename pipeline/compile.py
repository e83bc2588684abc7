"""Quantize and compile: ezkl settings, calibration and circuit compilation.

ezkl turns a float ONNX graph into fixed-point arithmetic: every value v becomes round(v * 2^scale), and
non-linear operations (sigmoid, tanh, ReLU's comparisons) become lookups into tables that cover a
calibrated range. `calibrate` chooses scales and ranges from sample data; values outside what calibration
saw can fall off the tables at proving time, which is why the fidelity gate (`pipeline.fidelity`) checks
held-out data and why proving checks every witness against the calibrated range first.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .artifacts import native_output_to, read_json, write_with
from .errors import UsageError
from .export import OnnxSignature, compiler_error

# Our names -> ezkl's. Inputs and outputs: public (in the proof's instances), private (witness only),
# hashed (a Poseidon hash of the values is public). Parameters: fixed (baked into the circuit at setup),
# private, or hashed (a public Poseidon commitment to the weights, so a verifier can pin them).
IO_VISIBILITIES = {"public": "public", "private": "private", "hashed": "hashed"}
PARAM_VISIBILITIES = {"fixed": "fixed", "private": "private", "hashed": "hashed"}

CALIBRATION_TARGETS = ("resources", "accuracy")


@dataclass(frozen=True)
class Visibility:
    input: str = "public"
    output: str = "public"
    param: str = "fixed"

    def __post_init__(self):
        for what, value, allowed in (
            ("input", self.input, IO_VISIBILITIES),
            ("output", self.output, IO_VISIBILITIES),
            ("param", self.param, PARAM_VISIBILITIES),
        ):
            if value not in allowed:
                raise UsageError(f"{what} visibility must be one of {', '.join(allowed)}; got {value!r}")


@dataclass(frozen=True)
class CircuitArgs:
    """Advanced ezkl layout knobs: they trade rows against columns, never what the circuit computes.

    num_inner_cols: advice columns per operation (fewer columns: a smaller proof and verifier, more rows).
    decomp_base / decomp_legs: how range checks decompose values (a smaller base: smaller lookup tables, so
    fewer rows, but more legs). None keeps ezkl's default.
    """

    num_inner_cols: int | None = None
    decomp_base: int | None = None
    decomp_legs: int | None = None

    def __post_init__(self):
        for name, value in (("num_inner_cols", self.num_inner_cols), ("decomp_base", self.decomp_base),
                            ("decomp_legs", self.decomp_legs)):
            if value is not None and value < 1:
                raise UsageError(f"{name} must be at least 1, got {value}")

    def apply(self, ra) -> None:
        for name in ("num_inner_cols", "decomp_base", "decomp_legs"):
            value = getattr(self, name)
            if value is not None:
                setattr(ra, name, value)


@dataclass(frozen=True)
class CalibrationAttempt:
    """One rung of the fidelity ladder: how hard calibration tries to be exact."""

    target: str = "resources"
    scales: tuple[int, ...] | None = None  # None: let ezkl search its default scales
    lookup_safety_margin: float = 2.0
    scale_rebase_multiplier: tuple[int, ...] = (1, 10)

    def describe(self) -> str:
        scales = "default" if self.scales is None else ",".join(map(str, self.scales))
        return f"target={self.target} scales={scales} lookup_margin={self.lookup_safety_margin:g}"


# Tried in order until the fidelity gate passes (`build --max-attempts` bounds how many). Each rung is
# stronger and costlier than the last: higher scales shrink rounding error but grow lookup tables, a
# wider lookup margin keeps inputs outside the calibration data on the tables.
DEFAULT_LADDER: tuple[CalibrationAttempt, ...] = (
    CalibrationAttempt(target="resources", lookup_safety_margin=2.0),
    CalibrationAttempt(target="accuracy", lookup_safety_margin=2.0),
    CalibrationAttempt(target="accuracy", scales=(10, 11, 12, 13), lookup_safety_margin=4.0),
    CalibrationAttempt(target="accuracy", scales=(13, 14, 15, 16), lookup_safety_margin=8.0),
)


@dataclass
class CircuitSettings:
    """What the rest of the pipeline needs to know from ezkl's settings.json."""

    logrows: int
    input_scales: list[int]
    output_scales: list[int]
    param_scale: int
    lookup_range: tuple[int, int]
    instance_shapes: list[list[int]]
    visibility: dict
    variables: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CircuitSettings:
        s = read_json(path, "settings file")
        ra = s["run_args"]
        return cls(
            logrows=int(ra["logrows"]),
            input_scales=list(s["model_input_scales"]),
            output_scales=list(s["model_output_scales"]),
            param_scale=int(ra["param_scale"]),
            lookup_range=tuple(ra["lookup_range"]),
            instance_shapes=[list(x) for x in s["model_instance_shapes"]],
            visibility={
                "input": _visibility_name(ra["input_visibility"]),
                "output": _visibility_name(ra["output_visibility"]),
                "param": _visibility_name(ra["param_visibility"]),
            },
            variables={k: v for k, v in ra.get("variables", [])},
            raw=s,
        )

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("raw")
        d["lookup_range"] = list(self.lookup_range)
        return d


def _visibility_name(v) -> str:
    """settings.json spells visibility as "Public" or {"Hashed": {"hash_is_public": true, ...}}."""
    if isinstance(v, str):
        return v.lower()
    (kind, detail), = v.items()
    if kind == "Hashed":
        return "hashed" if detail.get("hash_is_public", True) else "hashed/private"
    return kind.lower()


def run_args(visibility: Visibility, batch_size: int | None, sig: OnnxSignature,
             circuit_args: CircuitArgs | None = None):
    import ezkl

    ra = ezkl.PyRunArgs()
    (circuit_args or CircuitArgs()).apply(ra)
    # ezkl's Python defaults differ from its CLI's: always set visibility explicitly.
    ra.input_visibility = IO_VISIBILITIES[visibility.input]
    ra.output_visibility = IO_VISIBILITIES[visibility.output]
    ra.param_visibility = PARAM_VISIBILITIES[visibility.param]
    dims = sig.symbolic_dims
    if dims:
        if len(dims) > 1:
            raise UsageError(f"{sig.path}: several symbolic input dimensions {dims}; export with fixed shapes")
        ra.variables = [(dims[0], batch_size or 1)]
    return ra


def generate_settings(onnx_path: Path, settings_path: Path, visibility: Visibility, batch_size: int | None,
                      sig: OnnxSignature, circuit_args: CircuitArgs | None = None) -> None:
    import ezkl

    ra = run_args(visibility, batch_size, sig, circuit_args)
    try:
        write_with(settings_path, lambda tmp: ezkl.gen_settings(str(onnx_path), str(tmp), py_run_args=ra))
    except RuntimeError as e:
        raise compiler_error(e, sig, "settings") from None


def calibrate(onnx_path: Path, data_path: Path, settings_path: Path, attempt: CalibrationAttempt,
              sig: OnnxSignature, max_logrows: int | None = None) -> None:
    """Calibrate settings in place (ezkl rewrites the settings file)."""
    import ezkl

    try:
        with native_output_to(Path(settings_path).parent / "calibration.log"):  # ezkl prints its tables
            ok = ezkl.calibrate_settings(
                str(data_path), str(onnx_path), str(settings_path), attempt.target,
                lookup_safety_margin=attempt.lookup_safety_margin,
                scales=list(attempt.scales) if attempt.scales else None,
                scale_rebase_multiplier=list(attempt.scale_rebase_multiplier),
                max_logrows=max_logrows,
            )
    except RuntimeError as e:
        raise compiler_error(e, sig, "calibration") from None
    if not ok:
        raise compiler_error(RuntimeError("calibrate_settings returned false"), sig, "calibration")


def compile_circuit(onnx_path: Path, settings_path: Path, compiled_path: Path, sig: OnnxSignature) -> None:
    import ezkl

    try:
        write_with(compiled_path, lambda tmp: ezkl.compile_circuit(str(onnx_path), str(tmp), str(settings_path)))
    except RuntimeError as e:
        raise compiler_error(e, sig, "compilation") from None


def settings_and_compile(onnx_path: Path, calibration_path: Path, work_dir: Path, visibility: Visibility,
                         batch_size: int | None, attempt: CalibrationAttempt, sig: OnnxSignature,
                         max_logrows: int | None = None,
                         circuit_args: CircuitArgs | None = None) -> tuple[CircuitSettings, dict]:
    """settings -> calibrate -> compile into work_dir; returns the settings and the seconds each step took."""
    settings_path = work_dir / "settings.json"
    timings = {}
    t = time.perf_counter()
    generate_settings(onnx_path, settings_path, visibility, batch_size, sig, circuit_args)
    timings["settings"] = time.perf_counter() - t
    t = time.perf_counter()
    calibrate(onnx_path, calibration_path, settings_path, attempt, sig, max_logrows)
    timings["calibrate"] = time.perf_counter() - t
    t = time.perf_counter()
    compile_circuit(onnx_path, settings_path, work_dir / "network.compiled", sig)
    timings["compile"] = time.perf_counter() - t
    return CircuitSettings.load(settings_path), timings


def attempt_from_dict(d: dict) -> CalibrationAttempt:
    d = dict(d)
    if d.get("scales") is not None:
        d["scales"] = tuple(d["scales"])
    if "scale_rebase_multiplier" in d:
        d["scale_rebase_multiplier"] = tuple(d["scale_rebase_multiplier"])
    unknown = set(d) - set(CalibrationAttempt.__dataclass_fields__)
    if unknown:
        raise UsageError(f"unknown calibration option(s): {', '.join(sorted(unknown))}")
    if d.get("target", "resources") not in CALIBRATION_TARGETS:
        raise UsageError(f"calibration target must be one of {CALIBRATION_TARGETS}; got {d['target']!r}")
    return CalibrationAttempt(**d)


def dumps_attempt(a: CalibrationAttempt) -> str:
    return json.dumps(asdict(a), sort_keys=True)
