"""Build a circuit: ONNX + data -> settings, compiled circuit, keys, fidelity report and manifest.

    build_circuit("model.onnx", "calibration.json", "circuits/my_model", BuildOptions(...))

The steps, in order: read the ONNX signature and data and open a reference for the user's model
(`pipeline.reference`); prepare the graph ezkl compiles (`pipeline.prepare`: concrete shapes, rewrites of
what ezkl gets wrong); calibrate and compile (`pipeline.compile`), then run the fidelity gate
(`pipeline.fidelity`) on held-out inputs, climbing a ladder of stronger calibration settings until the
model's tolerance is met or the budget is spent; check the machine can afford the keys
(`pipeline.resources`); fetch the SRS (`pipeline.srs`); make keys (`pipeline.keys`); write the manifest
(`pipeline.manifest`) last.

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
from dataclasses import asdict, dataclass
from pathlib import Path

from . import __version__, faults, installed_ezkl_version, require_ezkl, resources
from . import blinding as blinding_mod
from . import estimate as estimate_mod
from . import fidelity as fidelity_mod
from . import inputs as inputs_mod
from . import keys as keys_mod
from . import layout as layout_mod
from . import manifest as manifest_mod
from . import prepare as prepare_mod
from . import profile as profile_mod
from . import srs as srs_mod
from .artifacts import (
    copy_atomic,
    read_json,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from .build_plan import (  # noqa: F401 (build_key: part of this module's API, as before the plan moved out)
    BuildOptions,
    _n_classes,
    _Plan,
    _up_to_date,
    build_key,
    plan_build,
)
from .compile import (
    BUILD_LOG,
    CircuitSettings,
    settings_and_compile,
)
from .errors import (
    FidelityError,
    ResourceLimitError,
    UnsupportedModelError,
)

log = logging.getLogger(__name__)

FAILED_REPORT = "fidelity.failed.json"
STAGING = manifest_mod.STAGING
N_SAMPLES_SAVED = 5
# The calibration data as ezkl is given it (prescaled where the graph was): lives in staging only.
STAGED_CALIBRATION = "calibration.json"


@dataclass
class BuildResult:
    manifest: manifest_mod.Manifest
    rebuilt: bool
    fidelity: dict


Progress = Callable[[str], None]


def _say(progress: Progress | None, msg: str) -> None:
    (progress or log.info)(msg)


def build_circuit(onnx_path: str | os.PathLike, data_path: str | os.PathLike, out_dir: str | os.PathLike,
                  options: BuildOptions | None = None, validation_path: str | os.PathLike | None = None,
                  force: bool = False, progress: Progress | None = None) -> BuildResult:
    """Build (or confirm up to date) the circuit for an ONNX model into `out_dir`.

    Raises UsageError for bad input (missing files, shapes, unsupported operators), FidelityError when no
    calibration in the budget meets the tolerance (the report is left in out_dir/fidelity.failed.json) and
    ResourceLimitError when the next step would need more memory than this machine has.
    """
    options = options or BuildOptions()
    out_dir = Path(out_dir)
    require_ezkl(what="building a circuit")
    if options.visibility.param == layout_mod.PRIVATE:
        log.warning("%s: %s (deploy refuses it: use fixed or hashed)", out_dir, layout_mod.PRIVATE_PARAMS_RISK)
    t_start = time.perf_counter()
    plan = plan_build(Path(onnx_path), Path(data_path), Path(validation_path) if validation_path else None, options)
    if not force:
        existing = _up_to_date(out_dir, plan.key)
        if existing:
            _say(progress, f"{out_dir}: up to date (nothing changed since the last build)")
            # Built before profiles were recorded, or with an older kind of profile: (re)compute it only.
            if profile_mod.PROFILE not in existing.data["artifacts"] or not profile_mod.is_current(out_dir):
                profile_mod.attach_profile(out_dir, profile_mod.for_build(plan, existing.circuit))
                _say(progress, f"  recorded its data profile: {out_dir / profile_mod.PROFILE}")
                existing = manifest_mod.load(out_dir)
            return BuildResult(manifest=existing, rebuilt=False, fidelity=existing.data["fidelity"])

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_mod.finish_install(out_dir)  # a previous build killed while publishing: keep its circuit whole
    staging = out_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        return _build_in(staging, out_dir, plan, options, t_start, progress)
    finally:
        if (staging / BUILD_LOG).exists():  # what ezkl printed, kept for the curious whether or not it worked
            os.replace(staging / BUILD_LOG, out_dir / BUILD_LOG)
        shutil.rmtree(staging, ignore_errors=True)


def _calibrate_until_faithful(staging: Path, out_dir: Path, plan: _Plan, prepared: prepare_mod.PreparedModel,
                              options: BuildOptions, timings: dict, progress: Progress | None):
    """The fidelity ladder: calibrate, compile and measure, attempt after attempt, until the gate passes.

    Returns (report, first witness, settings) of the last attempt. A calibration that finds no settings
    counts as a failed attempt; an attempt whose circuit this machine could not mock or set up stops the
    ladder (ResourceLimitError) before anything is allocated.
    """
    references = fidelity_mod.reference_outputs(plan.reference, plan.sig, plan.validation, plan.variables)
    # Hashed inputs: each validation sample's slots get random salts, which must change nothing the gate sees.
    per_sample = options.batch_size or 1
    salts = blinding_mod.random_salts(per_sample * len(plan.validation), options.seed)
    tolerance = options.tolerance or fidelity_mod.default_tolerance(references)
    n_classes = _n_classes(prepared.sig, {}, options.task)
    staged_data = _stage_calibration(staging, plan, prepared)

    attempts_log, report, first_witness, settings = [], None, None, None
    for i, attempt in enumerate(options.attempts, 1):
        _say(progress, f"calibrating (attempt {i}/{len(options.attempts)}: {attempt.describe()})")
        entry = {"attempt": asdict(attempt)}
        attempts_log.append(entry)
        try:
            settings, t = settings_and_compile(prepared.path, staged_data, staging, options.visibility, attempt,
                                               prepared.sig, options.max_logrows, options.circuit_args,
                                               model=plan.onnx_path, graph_args=prepared.run_args,
                                               before_compile=lambda st: _after_calibration(prepared, st, progress))
        except UnsupportedModelError as e:
            if "during calibration" not in e.message:
                raise
            entry.update(passed=False, failures=[e.message])
            _say(progress, f"  calibration found no settings: {e.message.split(': ', 1)[-1]}")
            continue
        for k, v in t.items():
            timings[k] = timings.get(k, 0.0) + v
        entry.update(logrows=settings.logrows, input_scales=settings.input_scales)
        need = resources.estimate(settings)
        entry["estimate"] = need.to_dict()
        short = resources.shortfall(need)
        if short:
            entry.update(passed=False, failures=[short])
            write_json_atomic(out_dir / FAILED_REPORT, {"passed": False, "failures": [short], "attempts": attempts_log})
            raise ResourceLimitError(f"stopped before calibration attempt {i}'s circuit (logrows {settings.logrows}) "
                                     f"was mock-proven and set up: {short} (report: {out_dir / FAILED_REPORT})")
        circuit_validation = [prepared.circuit_values(v, salts[j * per_sample:(j + 1) * per_sample],
                                                      settings.input_scales)
                              for j, v in enumerate(plan.validation)]
        t0 = time.perf_counter()
        with resources.watchdog(f"checking calibration attempt {i}'s circuit"):
            report, first_witness = fidelity_mod.measure(
                staging / manifest_mod.COMPILED, settings, circuit_validation, references, tolerance, n_classes,
                plan.validation_source, scratch_dir=staging, log_path=staging / BUILD_LOG,
                reference_kind=plan.reference.kind)
        timings["fidelity"] = timings.get("fidelity", 0.0) + time.perf_counter() - t0
        # The first witness is of the first sample that ran (salts are distinct, so only its own can match).
        if prepared.blinding and first_witness and not any(
                blinding_mod.carried_exactly(first_witness["inputs"], prepared.blinding,
                                             salts[j * per_sample:(j + 1) * per_sample])
                for j in range(len(plan.validation))):
            raise UnsupportedModelError(f"{plan.onnx_path}: the circuit does not carry a salt's elements exactly "
                                        f"({prepared.blinding['bits']} bits each): a publisher's commitment would "
                                        "not match the proof's")
        entry.update(passed=report["passed"], max_abs_error=report["max_abs_error"],
                     label_agreement=report.get("label_agreement"), failures=report["failures"])
        verdict = "passed" if report["passed"] else "; ".join(report["failures"])
        _say(progress, f"  logrows {settings.logrows}, scales {settings.input_scales}: fidelity {verdict}")
        if report["passed"]:
            break
    if report is None:
        raise UnsupportedModelError(f"{attempts_log[-1]['failures'][0]} (in all {len(attempts_log)} attempts)")
    report["attempts"] = attempts_log
    report["calibration"] = attempts_log[-1]["attempt"]
    report["reference"] = plan.reference.describe()
    report["rewrites"] = prepared.rewrites + prepared.after_calibration
    return report, first_witness, settings


def _stage_calibration(staging: Path, plan: _Plan, prepared: prepare_mod.PreparedModel) -> Path:
    """The calibration data as ezkl is given it (prescaled where the graph is), in one ezkl input file."""
    staged_data = staging / STAGED_CALIBRATION
    write_json_atomic(staged_data, inputs_mod.ezkl_input(
        [[v for s in plan.calibration for v in prepared.circuit_values(s)[i]] for i in range(len(plan.sig.inputs))]),
        indent=None)
    return staged_data


def first_calibration(work_dir: Path, plan: _Plan, options: BuildOptions,
                      progress: Progress | None = None) -> CircuitSettings:
    """The cheap part of a build (prepare, settings, the ladder's first calibration, compile) into `work_dir`:
    the settings `pipeline.estimate` predicts costs from. No fidelity gate, SRS or keys."""
    prepared = prepare_mod.prepare_model(plan.onnx_path, plan.sig, plan.variables, plan.calibration,
                                         work_dir / manifest_mod.ONNX, skip=options.skip_rewrites)
    _say(progress, f"calibrating ({options.attempts[0].describe()})")
    settings, _ = settings_and_compile(prepared.path, _stage_calibration(work_dir, plan, prepared), work_dir,
                                       options.visibility, options.attempts[0], prepared.sig, options.max_logrows,
                                       options.circuit_args, model=plan.onnx_path, graph_args=prepared.run_args,
                                       before_compile=lambda st: _after_calibration(prepared, st, progress))
    return settings


def _after_calibration(prepared: prepare_mod.PreparedModel, settings: CircuitSettings, progress: Progress | None):
    for r in prepared.apply_calibrated(settings.input_scales):
        _say(progress, f"  rewrite {r['rewrite']}: {'; '.join(r['changes'])}")


def _build_in(staging: Path, out_dir: Path, plan: _Plan, options: BuildOptions, t_start: float,
              progress: Progress | None) -> BuildResult:
    timings: dict[str, float] = {}
    shutil.copyfile(plan.onnx_path, staging / manifest_mod.SOURCE_ONNX)
    blinding = blinding_mod.plan(options.visibility.input, [t.name for t in plan.sig.inputs],
                                 [t.elem_type for t in plan.sig.inputs],
                                 [list(t.concrete_shape(plan.variables)) for t in plan.sig.inputs],
                                 options.batch_size or 1, options.circuit_args.decomp_base,
                                 options.circuit_args.decomp_legs)
    prepared = prepare_mod.prepare_model(plan.onnx_path, plan.sig, plan.variables, plan.calibration,
                                         staging / manifest_mod.ONNX, skip=options.skip_rewrites, blinding=blinding)
    for r in prepared.rewrites:
        _say(progress, f"rewrite {r['rewrite']}: {'; '.join(r['changes'])}")
    _say(progress, f"reference: {plan.reference.kind} ({plan.reference.why})")
    report, first_witness, settings = _calibrate_until_faithful(staging, out_dir, plan, prepared, options, timings,
                                                                progress)
    if not report["passed"]:
        failed_path = out_dir / FAILED_REPORT
        write_json_atomic(failed_path, report)
        raise FidelityError(
            f"fidelity gate failed after {len(report['attempts'])} calibration attempt(s): {report['failures'][0]} "
            f"(report: {failed_path})", report)
    (out_dir / FAILED_REPORT).unlink(missing_ok=True)
    (staging / STAGED_CALIBRATION).unlink(missing_ok=True)

    # Everything the manifest says about the circuit is known now, before the slow part.
    circuit = _circuit_entry(options, plan, prepared, settings, first_witness)

    t0 = time.perf_counter()
    srs = srs_mod.resolve(settings.logrows, options.srs_path)
    _link_or_copy(srs.path, staging / manifest_mod.SRS)
    timings["srs"] = time.perf_counter() - t0
    if srs.insecure:
        log.warning(srs_mod.INSECURE_WARNING)
    _say(progress, estimate_mod.from_settings(settings).describe())
    _say(progress, f"generating keys (logrows {settings.logrows}; {resources.estimate(settings).describe()})")
    t0 = time.perf_counter()
    with resources.watchdog("generating keys"):
        keys_mod.setup(staging / manifest_mod.COMPILED, staging / manifest_mod.SRS, staging / manifest_mod.VK,
                       staging / manifest_mod.PK, log_path=staging / BUILD_LOG)
    timings["setup"] = time.perf_counter() - t0

    write_json_atomic(staging / manifest_mod.FIDELITY, report)
    write_text_atomic(staging / manifest_mod.SAMPLES, _samples_text(plan.validation[:N_SAMPLES_SAVED], prepared,
                                                                    options))
    # What `zkinfer monitor` compares proven rows with: authenticated (listed below), not part of the identity.
    write_json_atomic(staging / profile_mod.PROFILE, profile_mod.for_build(plan, circuit))

    artifact_names = (*manifest_mod.CIRCUIT_FILES, profile_mod.PROFILE)
    artifacts = {n: {"sha256": sha256_file(staging / n), "bytes": (staging / n).stat().st_size} for n in artifact_names}
    timings["total"] = time.perf_counter() - t_start
    manifest = {
        "schema": manifest_mod.SCHEMA,
        "name": options.name or out_dir.name,
        "zkinfer_version": __version__,
        "ezkl_version": installed_ezkl_version(),
        "build_key": plan.key,
        "source": {"onnx": str(plan.onnx_path), "data": str(plan.data_path), "task": options.task,
                   "opset": plan.sig.opset, "parameters": plan.sig.n_parameters,
                   "operators": dict(sorted(plan.sig.op_counts.items()))},
        "prepare": prepared.manifest_entry(),
        "artifacts": artifacts,
        "circuit": circuit,
        "srs": srs.manifest_entry(settings.logrows),
        "fidelity": {k: report[k] for k in ("passed", "validation_source", "n_samples", "n_compared",
                                            "tolerance", "max_abs_error", "mean_abs_error", "worst", "reference")}
        | ({"label_agreement": report["label_agreement"]} if "label_agreement" in report else {})
        | {"calibration": report["calibration"], "attempts": len(report["attempts"])},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }

    manifest["circuit_id"] = manifest_mod.circuit_id(manifest, read_json(staging / manifest_mod.SETTINGS))

    # Publish: the new manifest is staged first (so a build killed from here on is finished by the next
    # reader: `manifest.finish_install`), the old one goes, the artifacts move, the new manifest comes last,
    # so no manifest ever describes a mix.
    write_json_atomic(staging / manifest_mod.MANIFEST, manifest)
    (out_dir / manifest_mod.MANIFEST).unlink(missing_ok=True)
    for name in artifact_names:
        os.replace(staging / name, out_dir / name)
        faults.point("build-install")
    os.replace(staging / manifest_mod.MANIFEST, out_dir / manifest_mod.MANIFEST)
    m = manifest_mod.load(out_dir)
    _say(progress, f"built {out_dir} in {timings['total']:.1f} s (circuit id {m.circuit_id[:16]}...)")
    return BuildResult(manifest=m, rebuilt=True, fidelity=report)


def _samples_text(samples: list, prepared: prepare_mod.PreparedModel, options: BuildOptions) -> str:
    """samples.jsonl: a few validation inputs ready for `zkinfer prove`; a hashed-input circuit's with a salt
    per slot (demonstration salts, reproducible from the seed, which hide nothing)."""
    k = options.batch_size or 1
    salts = blinding_mod.random_salts(k * len(samples), options.seed + 1)
    lines = []
    for j, sample in enumerate(samples):
        obj = {"input_data": sample}
        if prepared.blinding:
            mine = [blinding_mod.format_salt(x) for x in salts[j * k:(j + 1) * k]]
            obj["salt"] = mine[0] if k == 1 else mine
        lines.append(json.dumps(obj) + "\n")
    return "".join(lines)


def _circuit_entry(options: BuildOptions, plan: _Plan, prepared: prepare_mod.PreparedModel,
                   settings: CircuitSettings, first_witness: dict) -> dict:
    """The manifest's `circuit` section: shapes, scales, visibility and where each public value sits."""
    sig = prepared.sig
    circuit = {
        "batch_size": options.batch_size or 1,
        "variables": plan.variables,
        "visibility": asdict(options.visibility),
        "circuit_args": {k: v for k, v in asdict(options.circuit_args).items() if v is not None},
        "input_names": [t.name for t in sig.inputs],
        "input_types": [t.elem_type for t in sig.inputs],
        "input_shapes": [list(t.concrete_shape({})) for t in sig.inputs],
        "output_shapes": [list(t.concrete_shape({})) for t in sig.outputs],
        "input_prescale": prepared.input_prescale,
        **{k: v for k, v in settings.summary().items() if k not in ("visibility", "variables")},
        "instance_layout": layout_mod.instance_layout(first_witness, settings.visibility,
                                                      sum(t.numel({}) for t in sig.inputs)),
    }
    circuit["num_instances"] = layout_mod.num_instances(circuit["instance_layout"])
    if prepared.blinding:  # hashed inputs: where each subject's salt sits, inside the hash (`pipeline.blinding`)
        circuit["blinding"] = prepared.blinding
    # Hashed weights: the Poseidon hashes every proof carries, which a registry pins (input-independent).
    circuit["param_hashes"] = list((first_witness.get("processed_params") or {}).get("poseidon_hash") or [])
    return circuit


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link the SRS into the circuit (no second copy on disk) or copy it across filesystems."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        copy_atomic(src, dst)
