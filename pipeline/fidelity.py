"""The fidelity gate: does the circuit compute what the model computes?

Calibration can silently produce a circuit that proves the wrong numbers (measured: ezkl's default
calibration gave 0.57 for a small gradient-boosted model where scikit-learn gave 0.92), and ezkl lowers
some operators wrongly. A proof only shows the circuit ran correctly, not that the circuit is the model,
so no circuit is trusted until this gate has compared its witness outputs with the user's own model
(`pipeline.reference`: onnxruntime, onnx's reference evaluator, or recorded outputs) on inputs
calibration never saw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import witness as witness_mod
from .compile import CircuitSettings
from .errors import ProofError, UsageError
from .export import OnnxSignature
from .reference import Reference, feeds

# Arbitrary ONNX models with no declared tolerance: outputs may differ from the reference by at most this
# fraction of the reference outputs' spread or, when they barely vary (one sample, one output), of their
# magnitude; never less than DEFAULT_ABS_FLOOR.
DEFAULT_RELATIVE_TOLERANCE = 0.01
DEFAULT_ABS_FLOOR = 0.01
# Held-out samples compared per attempt: enough to find a bad calibration, few enough to stay quick.
DEFAULT_MAX_SAMPLES = 64
# Witnesses run through ezkl's mock prover per attempt: the first sample and those that push the lookup
# tables hardest (a witness can have in-range lookup inputs and still break a constraint).
MOCKED_SAMPLES = 3
# Derived validation inputs (when the user gives none): calibration samples plus noise of this many
# per-feature standard deviations, clipped to the calibration range so they stay in-distribution.
DERIVED_NOISE_STD = 0.05


@dataclass(frozen=True)
class Tolerance:
    max_abs_error: float
    label_agreement: float | None = None  # classifiers: fraction of samples whose label must match

    def __post_init__(self):
        if not (self.max_abs_error > 0 and math.isfinite(self.max_abs_error)):
            raise UsageError(f"tolerance must be a positive number, got {self.max_abs_error}")
        if self.label_agreement is not None and not 0 < self.label_agreement <= 1:
            raise UsageError(f"label agreement must be in (0, 1], got {self.label_agreement}")

    @classmethod
    def from_dict(cls, d: dict) -> Tolerance:
        return cls(max_abs_error=float(d["max_abs_error"]), label_agreement=d.get("label_agreement"))

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def reference_outputs(ref: Reference, sig: OnnxSignature, samples: list[list[list[float]]],
                      variables: dict[str, int]) -> list[np.ndarray]:
    """The user's model's outputs for each sample (`pipeline.reference`), each one flat float64 vector."""
    return [ref.outputs(feeds(sig, sample, variables), i) for i, sample in enumerate(samples)]


def default_tolerance(references: list[np.ndarray]) -> Tolerance:
    allv = np.concatenate(references)
    spread = float(allv.max() - allv.min()) if allv.size else 0.0
    magnitude = float(np.abs(allv).max()) if allv.size else 0.0
    return Tolerance(max_abs_error=max(DEFAULT_ABS_FLOOR, DEFAULT_RELATIVE_TOLERANCE * max(spread, magnitude)))


def derive_validation(calibration_samples: list[list[list[float]]], n: int, seed: int = 0,
                      integer_inputs: list[bool] | None = None):
    """Perturbed calibration samples, for models built with no held-out data. Returns (samples, note).

    Inputs of integer or boolean type (`integer_inputs`) stay whole numbers: the graph could not take others."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray([s[i] for s in calibration_samples], dtype=np.float64)
              for i in range(len(calibration_samples[0]))]
    picks = rng.choice(len(calibration_samples), size=min(n, len(calibration_samples)), replace=False)
    derived = []
    for p in picks:
        sample = []
        for i, a in enumerate(arrays):
            std = a.std(axis=0)
            v = np.clip(a[p] + rng.normal(0.0, 1.0, a.shape[1]) * DERIVED_NOISE_STD * std, a.min(axis=0), a.max(axis=0))
            if integer_inputs and integer_inputs[i]:
                v = np.rint(v)
            sample.append(v.tolist())
        derived.append(sample)
    note = (f"derived: no validation data given, so {len(derived)} calibration samples perturbed by "
            f"N(0, ({DERIVED_NOISE_STD}*std)^2) per value and clipped to the calibration range; "
            "pass --validation with held-out data for a real check")
    return derived, note


def labels(vec: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-row labels: argmax for several classes, probability >= 0.5 for a single output."""
    rows = vec.reshape(-1, n_classes)
    return rows.argmax(axis=1) if n_classes > 1 else (rows[:, 0] >= 0.5).astype(int)


def measure(compiled_path: Path, settings: CircuitSettings, samples: list[list[list[float]]],
            references: list[np.ndarray], tolerance: Tolerance, n_classes: int | None,
            source: str, scratch_dir: Path | None = None, log_path: Path | None = None,
            reference_kind: str = "reference") -> tuple[dict, dict | None]:
    """Run the circuit's witness on each sample (as the circuit takes it: `inputs.to_circuit_values`) and
    compare with the reference outputs.

    Returns the fidelity report (JSON-ready) and the first witness (its instances show the circuit's
    public layout). A sample whose witness falls off a lookup table counts as a failure: proving it
    would be impossible.
    """
    errors, label_hits, label_total, out_of_range = [], 0, 0, []
    worst = None
    first_witness = None
    lookup_extent = {}  # sample index -> how far its lookup inputs reach
    for i, (sample, ref) in enumerate(zip(samples, references, strict=True)):
        try:
            w = witness_mod.generate(sample, compiled_path, scratch_dir=scratch_dir, log_path=log_path)
        except ProofError as e:
            out_of_range.append({"sample": i, "reason": e.message})
            continue
        if first_witness is None:
            first_witness = w.raw
        why = w.lookup_violation(settings)
        if why:
            out_of_range.append({"sample": i, "reason": why})
            continue
        lookup_extent[i] = max(abs(int(w.raw["min_lookup_inputs"])), abs(int(w.raw["max_lookup_inputs"])))
        got = np.concatenate([np.asarray(t) for t in w.outputs(settings)])
        if got.shape != ref.shape:
            raise UsageError(f"the circuit has {got.size} output values per sample but the model's reference "
                             f"gives {ref.size}: the outputs cannot be compared")
        err = np.abs(got - ref)
        errors.append(err)
        j = int(err.argmax())
        if worst is None or err[j] > worst["abs_error"]:
            worst = {"sample": i, "output_index": j, "circuit": float(got[j]), "reference": float(ref[j]),
                     "abs_error": float(err[j])}
        if n_classes:
            a, b = labels(got, n_classes), labels(ref, n_classes)
            label_hits += int((a == b).sum())
            label_total += len(a)
    mocked = sorted(lookup_extent, key=lambda i: (i != 0, -lookup_extent[i]))[:MOCKED_SAMPLES]
    for i in mocked:
        w_path = Path(scratch_dir or ".") / f".mock-witness-{i}.json"
        try:
            witness_mod.generate(samples[i], compiled_path, out_path=w_path, scratch_dir=scratch_dir,
                                 log_path=log_path)
            why = witness_mod.constraint_violation(w_path, compiled_path, log_path)
        finally:
            w_path.unlink(missing_ok=True)
        if why:
            out_of_range.append({"sample": i, "reason": why})
    all_err = np.concatenate(errors) if errors else np.array([])
    report = {
        "validation_source": source,
        "n_samples": len(samples),
        "n_compared": len(errors),
        "tolerance": tolerance.to_dict(),
        "max_abs_error": float(all_err.max()) if all_err.size else None,
        "mean_abs_error": float(all_err.mean()) if all_err.size else None,
        "worst": worst,
        "out_of_range": out_of_range,
        "mocked_samples": mocked,
    }
    if n_classes:
        report["label_agreement"] = label_hits / label_total if label_total else None
    failures = []
    if out_of_range:
        failures.append(f"{len(out_of_range)} of {len(samples)} samples cannot be proven: outside the calibrated range "
                        f"(first: sample {out_of_range[0]['sample']}: {out_of_range[0]['reason']})")
    if report["max_abs_error"] is not None and report["max_abs_error"] > tolerance.max_abs_error:
        failures.append(f"max abs error {report['max_abs_error']:.6g} > {tolerance.max_abs_error:g} "
                        f"(worst: sample {worst['sample']} output {worst['output_index']}: circuit "
                        f"{worst['circuit']:.6g}, {reference_kind} {worst['reference']:.6g})")
    if tolerance.label_agreement is not None and n_classes:
        agree = report.get("label_agreement")
        if agree is None or agree < tolerance.label_agreement:
            failures.append(f"label agreement {agree} < {tolerance.label_agreement}")
    if not errors:
        failures.append("no sample could be compared")
    report["passed"] = not failures
    report["failures"] = failures
    return report, first_witness
