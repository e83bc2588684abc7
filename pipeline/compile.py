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
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import native
from .artifacts import canonical_json, read_json, write_json_atomic, write_with
from .errors import UnsupportedModelError, UsageError
from .export import OnnxSignature
from .native import NativeFailure

# Our names -> ezkl's. Inputs and outputs: public (in the proof's instances), private (witness only),
# hashed (a Poseidon hash of the values is public). Parameters: fixed (baked into the circuit at setup),
# private, or hashed (a public Poseidon commitment to the weights, so a verifier can pin them).
IO_VISIBILITIES = {"public": "public", "private": "private", "hashed": "hashed"}
PARAM_VISIBILITIES = {"fixed": "fixed", "private": "private", "hashed": "hashed"}

CALIBRATION_TARGETS = ("resources", "accuracy")
# What ezkl printed while building (calibration tables, tract's warnings, panics), kept beside the circuit.
BUILD_LOG = "build.log"


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


def run_args(visibility: Visibility, circuit_args: CircuitArgs | None = None, graph_args: dict | None = None):
    """ezkl's run arguments. The graph it compiles has concrete shapes (`pipeline.prepare`): no variables.
    `graph_args`: what the prepared graph needs (`PreparedModel.run_args`, set by its rewrites)."""
    import ezkl

    ra = ezkl.PyRunArgs()
    (circuit_args or CircuitArgs()).apply(ra)
    for name, value in (graph_args or {}).items():
        setattr(ra, name, value)
    # ezkl's Python defaults differ from its CLI's: always set visibility explicitly.
    ra.input_visibility = IO_VISIBILITIES[visibility.input]
    ra.output_visibility = IO_VISIBILITIES[visibility.output]
    ra.param_visibility = PARAM_VISIBILITIES[visibility.param]
    return ra


# tract (ezkl's ONNX front end) names a failing node as: node #12 "my_node" OpName
_TRACT_NODE = re.compile(r'node #(\d+) "([^"]*)"\s*(\w+)?')
_UNIMPLEMENTED = re.compile(r"Unimplemented\((\w+)\)")
# tract's names for ONNX ops carry a type suffix: QuantizeLinearI8, DynamicQuantizeLinearU8
_TYPE_SUFFIX = re.compile(r"(I8|U8|I16|U16|I32|U32|I64|F16|F32|F64)$")


def _onnx_op(tract_op: str, sig: OnnxSignature) -> tuple[str, list[str]]:
    """The ONNX operator (and its nodes) behind a tract op name, as far as the graph shows it."""
    op = _TYPE_SUFFIX.sub("", tract_op)
    nodes = [name for name, t in sig.node_ops.items() if t == op]
    return (op, nodes) if nodes else (tract_op, [])


def compiler_error(failure: NativeFailure, sig: OnnxSignature, stage: str, model: Path | None = None):
    """ezkl/tract's failure on a model as one line naming the ONNX operator and node at fault."""
    where = model or sig.path
    msg = failure.message
    m = _TRACT_NODE.search(msg)
    if m:
        node_name = m.group(2)
        op = sig.node_ops.get(node_name) or m.group(3) or "?"
        why = "is not supported by the circuit compiler" if _UNIMPLEMENTED.search(msg) else "could not be compiled"
        return UnsupportedModelError(f"{where}: ONNX operator {op} at node {node_name!r} {why} (ezkl {stage}: {msg})")
    if failure.unknown_ops:
        op, nodes = _onnx_op(failure.unknown_ops[0], sig)
        at = f" at node {nodes[0]!r}" + (f" (and {len(nodes) - 1} more)" if len(nodes) > 1 else "") if nodes else ""
        others = [o for o in failure.unknown_ops[1:] if _onnx_op(o, sig)[0] != op]
        also = f"; also unknown: {', '.join(others)}" if others else ""
        return UnsupportedModelError(
            f"{where}: ONNX operator {op}{at} is not supported by the circuit compiler (tract reads it as "
            f"{failure.unknown_ops[0]}{also}; ezkl {stage}: {failure.describe()})")
    return UnsupportedModelError(f"{where}: the circuit compiler rejected the model during {stage}: "
                                 f"{failure.describe()}")


def _ezkl(stage: str, sig: OnnxSignature, log_path: Path, model: Path | None, fn, *args, **kwargs):
    try:
        return native.call(fn, *args, log_path=log_path, **kwargs)
    except NativeFailure as f:
        raise compiler_error(f, sig, stage, model) from None


def generate_settings(onnx_path: Path, settings_path: Path, visibility: Visibility, sig: OnnxSignature,
                      circuit_args: CircuitArgs | None = None, log_path: Path | None = None,
                      model: Path | None = None, graph_args: dict | None = None) -> None:
    import ezkl

    ra = run_args(visibility, circuit_args, graph_args)
    log_path = log_path or settings_path.parent / BUILD_LOG
    write_with(settings_path, lambda tmp: _ezkl("settings", sig, log_path, model, ezkl.gen_settings,
                                                str(onnx_path), str(tmp), py_run_args=ra))


def calibrate(onnx_path: Path, data_path: Path, settings_path: Path, attempt: CalibrationAttempt,
              sig: OnnxSignature, max_logrows: int | None = None, log_path: Path | None = None,
              model: Path | None = None, graph_args: dict | None = None) -> None:
    """Calibrate settings in place (ezkl rewrites the settings file; it prints its tables to the log).

    A `scale_rebase_multiplier` in `graph_args` is the only one tried: the prepared graph needs it."""
    import ezkl

    multipliers = list(attempt.scale_rebase_multiplier)
    if graph_args and "scale_rebase_multiplier" in graph_args:
        multipliers = [graph_args["scale_rebase_multiplier"]]
    ok = _ezkl("calibration", sig, log_path or Path(settings_path).parent / BUILD_LOG, model,
               ezkl.calibrate_settings, str(data_path), str(onnx_path), str(settings_path), attempt.target,
               lookup_safety_margin=attempt.lookup_safety_margin,
               scales=list(attempt.scales) if attempt.scales else None,
               scale_rebase_multiplier=multipliers, max_logrows=max_logrows)
    if not ok:
        raise compiler_error(NativeFailure("calibrate_settings returned false"), sig, "calibration", model)
    canonicalize_settings(settings_path)


def canonicalize_settings(settings_path: Path) -> None:
    """Sort the table lists ezkl collects from Rust hash sets.

    ezkl writes `required_lookups`, `required_range_checks` and the einsum equations in hash-set order, which
    Rust seeds afresh in every process, and it configures the circuit's columns in the order listed: the same
    model calibrated twice gives two verifying keys. Sorted, the keys (and the circuit id) are reproducible."""
    s = read_json(settings_path, "settings file")
    key = canonical_json
    changed = dict(s)
    for name in ("required_lookups", "required_range_checks"):
        if isinstance(s.get(name), list):
            changed[name] = sorted(s[name], key=key)
    einsum = s.get("einsum_params")
    if isinstance(einsum, dict) and isinstance(einsum.get("equations"), list):
        changed["einsum_params"] = {**einsum, "equations": sorted(einsum["equations"], key=key)}
    if changed != s:
        write_json_atomic(settings_path, changed)


def compile_circuit(onnx_path: Path, settings_path: Path, compiled_path: Path, sig: OnnxSignature,
                    log_path: Path | None = None, model: Path | None = None) -> None:
    import ezkl

    log_path = log_path or compiled_path.parent / BUILD_LOG
    write_with(compiled_path, lambda tmp: _ezkl("compilation", sig, log_path, model, ezkl.compile_circuit,
                                                str(onnx_path), str(tmp), str(settings_path)))


def settings_and_compile(onnx_path: Path, calibration_path: Path, work_dir: Path, visibility: Visibility,
                         attempt: CalibrationAttempt, sig: OnnxSignature, max_logrows: int | None = None,
                         circuit_args: CircuitArgs | None = None, model: Path | None = None,
                         graph_args: dict | None = None, before_compile=None) -> tuple[CircuitSettings, dict]:
    """settings -> calibrate -> compile into work_dir; returns the settings and the seconds each step took.

    `sig` is the compiled graph's signature (for naming nodes), `model` the user's file (for naming it).
    `before_compile(settings)`, if given, may rewrite `onnx_path` for the calibrated scales before it is
    compiled (`prepare.PreparedModel.apply_calibrated`)."""
    settings_path = work_dir / "settings.json"
    log_path = work_dir / BUILD_LOG
    timings = {}
    t = time.perf_counter()
    generate_settings(onnx_path, settings_path, visibility, sig, circuit_args, log_path, model, graph_args)
    timings["settings"] = time.perf_counter() - t
    t = time.perf_counter()
    calibrate(onnx_path, calibration_path, settings_path, attempt, sig, max_logrows, log_path, model, graph_args)
    timings["calibrate"] = time.perf_counter() - t
    if before_compile is not None:
        before_compile(CircuitSettings.load(settings_path))
    t = time.perf_counter()
    compile_circuit(onnx_path, settings_path, work_dir / "network.compiled", sig, log_path, model)
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
