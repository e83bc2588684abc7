"""Build a circuit: ONNX + data -> settings, compiled circuit, keys, fidelity report and manifest.

    build_circuit("model.onnx", "calibration.json", "circuits/my_model", BuildOptions(...))

The steps, in order: read the ONNX signature and data; calibrate and compile (`pipeline.compile`), then
run the fidelity gate (`pipeline.fidelity`) on held-out inputs, climbing a ladder of stronger calibration
settings until the model's tolerance is met or the budget is spent; fetch the SRS (`pipeline.srs`); make
keys (`pipeline.keys`); write the manifest (`pipeline.manifest`) last.

Everything happens in a staging folder inside the output directory and is moved into place only when
the whole build succeeded, manifest last: a killed or failed build leaves the previous circuit intact.
A build whose inputs (ONNX, data, options, SRS choice, ezkl version) are unchanged since the last
successful one does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import EZKL_VERSION, __version__
from . import fidelity as fidelity_mod
from . import inputs as inputs_mod
from . import keys as keys_mod
from . import layout as layout_mod
from . import manifest as manifest_mod
from . import srs as srs_mod
from .artifacts import canonical_json, copy_atomic, sha256_bytes, sha256_file, write_json_atomic, write_text_atomic
from .compile import (
    DEFAULT_LADDER,
    CalibrationAttempt,
    CircuitArgs,
    Visibility,
    settings_and_compile,
)
from .errors import ArtifactMismatchError, FidelityError, UsageError
from .export import OnnxSignature, inspect

log = logging.getLogger(__name__)

FAILED_REPORT = "fidelity.failed.json"
CALIBRATION_LOG = "calibration.log"
STAGING = ".staging"
N_SAMPLES_SAVED = 5
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class BuildOptions:
    name: str | None = None
    visibility: Visibility = field(default_factory=Visibility)
    # Inferences per proof. For a model with a symbolic batch dimension, that dimension's value; for a
    # fixed-shape model it must match the export (first dimension, or one input per inference).
    batch_size: int | None = None
    tolerance: fidelity_mod.Tolerance | None = None  # None: a default relative to the outputs' spread
    task: str | None = None  # "classification" adds label agreement to the fidelity report
    srs_path: Path | None = None  # a ceremony SRS; None: the cached dev SRS (insecure)
    ladder: tuple[CalibrationAttempt, ...] = DEFAULT_LADDER
    max_attempts: int | None = None  # None: the whole ladder
    max_logrows: int | None = None
    max_validation: int = fidelity_mod.DEFAULT_MAX_SAMPLES
    seed: int = 0
    circuit_args: CircuitArgs = field(default_factory=CircuitArgs)

    def __post_init__(self):
        if self.task is not None and self.task not in TASKS:
            raise UsageError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {self.batch_size}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise UsageError(f"max attempts must be at least 1, got {self.max_attempts}")

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
class BuildResult:
    manifest: manifest_mod.Manifest
    rebuilt: bool
    fidelity: dict


Progress = Callable[[str], None]


def _say(progress: Progress | None, msg: str) -> None:
    (progress or log.info)(msg)


def _load_samples(path: Path, sig: OnnxSignature, variables: dict, what: str) -> list:
    sizes = [t.numel(variables) for t in sig.inputs]
    shapes = [t.concrete_shape(variables) for t in sig.inputs]
    flat = inputs_mod.parse_input_data(inputs_mod.load_file(path, what), str(path), sizes)
    inputs_mod.count_samples(flat, sizes, shapes, str(path))
    return inputs_mod.split_samples(flat, sizes)


def _variables(sig: OnnxSignature, batch_size: int | None) -> dict:
    dims = sig.symbolic_dims
    if dims:
        return {dims[0]: batch_size or 1}
    if batch_size and batch_size > 1 and sig.inputs[0].shape[0] != batch_size and len(sig.inputs) != batch_size:
        raise UsageError(f"{sig.path}: --batch {batch_size} but the model has fixed input shapes "
                         f"{[list(t.shape) for t in sig.inputs]}; export it with batch size {batch_size}")
    return {}


def _n_classes(sig: OnnxSignature, variables: dict, task: str | None) -> int | None:
    if task != "classification":
        return None
    shape = sig.outputs[0].concrete_shape(variables)
    return int(shape[-1]) if shape else 1


def build_key(onnx_path: Path, data_path: Path, validation_path: Path | None, options: BuildOptions) -> str:
    srs = {"origin": srs_mod.DEV_ORIGIN} if options.srs_path is None else {
        "origin": srs_mod.CEREMONY_ORIGIN, "sha256": sha256_file(options.srs_path)}
    return sha256_bytes(canonical_json({
        "schema": manifest_mod.SCHEMA,
        "ezkl": EZKL_VERSION,
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


def build_circuit(onnx_path: str | os.PathLike, data_path: str | os.PathLike, out_dir: str | os.PathLike,
                  options: BuildOptions | None = None, validation_path: str | os.PathLike | None = None,
                  force: bool = False, progress: Progress | None = None) -> BuildResult:
    """Build (or confirm up to date) the circuit for an ONNX model into `out_dir`.

    Raises UsageError for bad input (missing files, shapes, unsupported operators) and FidelityError
    when no calibration in the budget meets the tolerance (the report is left in out_dir/fidelity.failed.json).
    """
    options = options or BuildOptions()
    onnx_path, data_path, out_dir = Path(onnx_path), Path(data_path), Path(out_dir)
    validation_path = Path(validation_path) if validation_path else None
    for p, what in ((onnx_path, "ONNX model"), (data_path, "calibration data"), (validation_path, "validation data")):
        if p is not None and not p.is_file():
            raise UsageError(f"{what} not found: {p}")
    if options.srs_path is not None and not Path(options.srs_path).is_file():
        raise UsageError(f"SRS file not found: {options.srs_path}")

    t_start = time.perf_counter()
    sig = inspect(onnx_path)
    variables = _variables(sig, options.batch_size)
    calibration = _load_samples(data_path, sig, variables, "calibration data")
    if validation_path:
        validation = _load_samples(validation_path, sig, variables, "validation data")[: options.max_validation]
        source = f"held-out: {len(validation)} samples from {validation_path.name}"
    else:
        validation, source = fidelity_mod.derive_validation(calibration, options.max_validation, options.seed)

    key = build_key(onnx_path, data_path, validation_path, options)
    if not force:
        existing = _up_to_date(out_dir, key)
        if existing:
            _say(progress, f"{out_dir}: up to date (nothing changed since the last build)")
            return BuildResult(manifest=existing, rebuilt=False, fidelity=existing.data["fidelity"])

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        return _build_in(staging, out_dir, onnx_path, data_path, sig, variables, calibration, validation, source,
                         key, options, t_start, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build_in(staging, out_dir, onnx_path, data_path, sig, variables, calibration, validation, source, key,
              options, t_start, progress) -> BuildResult:
    timings: dict[str, float] = {}
    staged_onnx = staging / manifest_mod.ONNX
    shutil.copyfile(onnx_path, staged_onnx)
    references = fidelity_mod.reference_outputs(staged_onnx, sig, validation, variables)
    tolerance = options.tolerance or fidelity_mod.default_tolerance(references)
    n_classes = _n_classes(sig, variables, options.task)

    attempts_log, report, first_witness, settings = [], None, None, None
    for i, attempt in enumerate(options.attempts, 1):
        _say(progress, f"calibrating (attempt {i}/{len(options.attempts)}: {attempt.describe()})")
        settings, t = settings_and_compile(staged_onnx, data_path, staging, options.visibility,
                                           options.batch_size, attempt, sig, options.max_logrows,
                                           options.circuit_args)
        for k, v in t.items():
            timings[k] = timings.get(k, 0.0) + v
        t0 = time.perf_counter()
        report, first_witness = fidelity_mod.measure(staging / manifest_mod.COMPILED, settings, validation,
                                                     references, tolerance, n_classes, source, scratch_dir=staging)
        timings["fidelity"] = timings.get("fidelity", 0.0) + time.perf_counter() - t0
        attempts_log.append({"attempt": asdict(attempt), "logrows": settings.logrows,
                             "input_scales": settings.input_scales, "passed": report["passed"],
                             "max_abs_error": report["max_abs_error"], "label_agreement": report.get("label_agreement"),
                             "failures": report["failures"]})
        verdict = "passed" if report["passed"] else "; ".join(report["failures"])
        _say(progress, f"  logrows {settings.logrows}, scales {settings.input_scales}: fidelity {verdict}")
        if report["passed"]:
            break
    report["attempts"] = attempts_log
    report["calibration"] = attempts_log[-1]["attempt"]

    if not report["passed"]:
        failed_path = out_dir / FAILED_REPORT
        write_json_atomic(failed_path, report)
        raise FidelityError(
            f"fidelity gate failed after {len(attempts_log)} calibration attempt(s): {report['failures'][0]} "
            f"(report: {failed_path})", report)
    (out_dir / FAILED_REPORT).unlink(missing_ok=True)

    t0 = time.perf_counter()
    srs = srs_mod.resolve(settings.logrows, options.srs_path)
    _link_or_copy(srs.path, staging / manifest_mod.SRS)
    timings["srs"] = time.perf_counter() - t0
    if srs.insecure:
        log.warning(srs_mod.INSECURE_WARNING)
    _say(progress, f"generating keys (logrows {settings.logrows})")
    t0 = time.perf_counter()
    keys_mod.setup(staging / manifest_mod.COMPILED, staging / manifest_mod.SRS, staging / manifest_mod.VK,
                   staging / manifest_mod.PK)
    timings["setup"] = time.perf_counter() - t0

    write_json_atomic(staging / manifest_mod.FIDELITY, report)
    write_text_atomic(staging / manifest_mod.SAMPLES,
                      "".join(json.dumps({"input_data": s}) + "\n" for s in validation[:N_SAMPLES_SAVED]))

    artifact_names = manifest_mod.CIRCUIT_FILES
    artifacts = {n: {"sha256": sha256_file(staging / n), "bytes": (staging / n).stat().st_size} for n in artifact_names}
    circuit = {
        "batch_size": options.batch_size or 1,
        "variables": variables,
        "visibility": asdict(options.visibility),
        "circuit_args": {k: v for k, v in asdict(options.circuit_args).items() if v is not None},
        "input_names": [t.name for t in sig.inputs],
        "input_shapes": [list(t.concrete_shape(variables)) for t in sig.inputs],
        "output_shapes": [list(t.concrete_shape(variables)) for t in sig.outputs],
        **{k: v for k, v in settings.summary().items() if k not in ("visibility", "variables")},
        "instance_layout": layout_mod.instance_layout(first_witness, settings.visibility,
                                                      sum(t.numel(variables) for t in sig.inputs)),
    }
    circuit["num_instances"] = layout_mod.num_instances(circuit["instance_layout"])
    # Hashed weights: the Poseidon hashes every proof carries, which a registry pins (input-independent).
    circuit["param_hashes"] = list((first_witness.get("processed_params") or {}).get("poseidon_hash") or [])
    timings["total"] = time.perf_counter() - t_start
    manifest = {
        "schema": manifest_mod.SCHEMA,
        "name": options.name or out_dir.name,
        "zkinfer_version": __version__,
        "ezkl_version": EZKL_VERSION,
        "build_key": key,
        "source": {"onnx": str(onnx_path), "data": str(data_path), "task": options.task, "opset": sig.opset,
                   "parameters": sig.n_parameters,
                   "operators": dict(sorted(sig.op_counts.items()))},
        "artifacts": artifacts,
        "circuit": circuit,
        "srs": srs.manifest_entry(settings.logrows),
        "fidelity": {k: report[k] for k in ("passed", "validation_source", "n_samples", "n_compared",
                                            "tolerance", "max_abs_error", "mean_abs_error", "worst")}
        | ({"label_agreement": report["label_agreement"]} if "label_agreement" in report else {})
        | {"calibration": report["calibration"], "attempts": len(attempts_log)},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }

    # Publish: the old manifest goes first, the new one last, so no manifest ever describes a mix.
    (out_dir / manifest_mod.MANIFEST).unlink(missing_ok=True)
    for name in artifact_names:
        os.replace(staging / name, out_dir / name)
    if (staging / CALIBRATION_LOG).exists():  # ezkl's own calibration tables, for the curious; not hashed
        os.replace(staging / CALIBRATION_LOG, out_dir / CALIBRATION_LOG)
    write_json_atomic(out_dir / manifest_mod.MANIFEST, manifest)
    m = manifest_mod.load(out_dir)
    _say(progress, f"built {out_dir} in {timings['total']:.1f} s (manifest {m.sha256[:16]}...)")
    return BuildResult(manifest=m, rebuilt=True, fidelity=report)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link the SRS into the circuit (no second copy on disk) or copy it across filesystems."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        copy_atomic(src, dst)
