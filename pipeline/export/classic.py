"""`zkinfer export`: a fitted scikit-learn, XGBoost or LightGBM model -> an ONNX graph ezkl computes exactly.

    result = export_model(fitted_estimator_or_path, "model.onnx")
    print(result.describe())

The graph has one input, the feature vector `features` [batch, F] (float32), and one output: for
classifiers the positive class's probability [batch, 1] (binary) or every class's probability [batch, K]
(multiclass, in `classes` order); for regressors the prediction [batch, 1] (or one column per target);
linear classifiers without probabilities (LinearSVC, ...) output their decision function. Trees become
`trees.TreeEnsemble`, linear models `builder.LinearModel` (scalers in a pipeline are folded into the
thresholds or the weights), both emitted with operators ezkl lowers correctly.

Every export is checked before it is written: the graph, run by onnxruntime, is compared with the
estimator's own predict_proba / predict on inputs at and around every threshold (`ExportResult.check`);
a difference refuses the export instead of handing the fidelity gate a wrong reference.

Files (the CLI's MODEL_FILE): an XGBoost model (`.json`, `.ubj`), a LightGBM model (`.txt`), or a pickle
(`.pkl`, `.pickle`, `.joblib`) of a fitted scikit-learn estimator or pipeline, or of an XGBoost/LightGBM
scikit-learn-API model. Loading a pickle runs code from the file: only the one path the caller names is
ever loaded, and only as a pickle when its name says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UnsupportedModelError, UsageError
from .builder import BATCH_DIM, INPUT_NAME, Emitter, ScoreModel, counter_names, make_model

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
XGBOOST_SUFFIXES = (".json", ".ubj")
LIGHTGBM_SUFFIXES = (".txt",)
# The export check: the graph and the estimator may differ by float32 arithmetic only.
CHECK_ATOL = 1e-4
CHECK_RTOL = 1e-4
N_RANDOM_PROBES = 256
TINY = 1e-30


@dataclass
class Plan:
    """What a converter makes of a fitted model; `classic.export_model` writes and checks it."""

    kind: str  # what was exported, for people: "scikit-learn RandomForestClassifier (3 trees, depth <= 3)"
    body: ScoreModel  # a TreeEnsemble or a LinearModel, reading the raw features
    task: str  # "classification" or "regression"
    output_name: str
    output_meaning: str
    reference: Callable[[np.ndarray], np.ndarray]  # the estimator's outputs, [N, K], in the graph's layout
    reference_name: str  # what `reference` calls, e.g. "predict_proba(X)[:, 1]"
    classes: list | None = None
    # Inputs exactly at thresholds are only meaningful where the model compares the raw feature (no scaler
    # in front, whose float rounding decides ties differently).
    exact_thresholds: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return self.body.n_features


@dataclass
class ExportResult:
    path: Path
    model: str
    task: str
    n_features: int
    input_name: str
    input_shape: list
    outputs: list[dict]  # [{"name", "shape", "meaning"}]
    classes: list | None
    exact: str
    rounds: str
    check: dict  # {"samples", "max_abs_diff", "against"}
    notes: list[str] = field(default_factory=list)
    # The estimator's outputs in the graph's layout ([N, K] for inputs [N, F]); not part of `to_dict`.
    expected: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items() if k != "expected"}

    def describe(self) -> str:
        out = self.outputs[0]
        lines = [
            f"exported:  {self.model} -> {self.path}",
            f"input:     {self.input_name} {self.input_shape} (float32 features)",
            f"output:    {out['name']} {out['shape']}: {out['meaning']}",
            f"checked:   {self.check['samples']} inputs against {self.check['against']}: max abs difference "
            f"{self.check['max_abs_diff']:.3g}",
            f"exact:     {self.exact}",
            f"rounds:    {self.rounds}",
        ]
        lines += [f"note:      {n}" for n in self.notes]
        return "\n".join(lines)


def _supported() -> str:
    from . import lightgbm as lgb_mod
    from . import sklearn as sk_mod
    from . import xgboost as xgb_mod

    return ", ".join([*sk_mod.SUPPORTED, *xgb_mod.SUPPORTED, *lgb_mod.SUPPORTED])


def unsupported(obj, why: str = "") -> UnsupportedModelError:
    name = type(obj).__name__
    return UnsupportedModelError(f"{name} {why or 'is not supported by zkinfer export'}; supported: {_supported()}")


def load_model_file(path: str | os.PathLike):
    """The fitted model in a file the caller named: XGBoost .json/.ubj, LightGBM .txt, or a pickle."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"model file not found: {p}")
    if not p.is_file():
        raise UsageError(f"model file is not a file: {p}")
    suffix = p.suffix.lower()
    if suffix in XGBOOST_SUFFIXES:
        from .xgboost import load_booster

        return load_booster(p)
    if suffix in LIGHTGBM_SUFFIXES:
        from .lightgbm import load_booster

        return load_booster(p)
    if suffix in PICKLE_SUFFIXES:
        return _load_pickle(p)
    raise UsageError(f"{p}: unknown model file type {suffix or '(none)'}; give an XGBoost model "
                     f"({', '.join(XGBOOST_SUFFIXES)}), a LightGBM model ({', '.join(LIGHTGBM_SUFFIXES)}) or a "
                     f"pickle of a fitted estimator ({', '.join(PICKLE_SUFFIXES)})")


def _load_pickle(p: Path):
    """Unpickle the one file named (unpickling runs code from it: never done for a file not asked for)."""
    import pickle

    try:
        if p.suffix.lower() == ".joblib":
            import joblib

            return joblib.load(p)
        with open(p, "rb") as f:
            return pickle.load(f)
    except ModuleNotFoundError as e:
        raise UsageError(f"{p}: the pickle needs module {e.name!r}, which is not installed") from None
    except Exception as e:  # unpickling raises whatever the file's contents make it raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UsageError(f"{p} is not a pickle of a fitted model ({type(e).__name__}: {first})") from None


def plan_for(model) -> Plan:
    """The converter for this kind of model."""
    module = type(model).__module__.split(".")[0]
    if module == "xgboost":
        from .xgboost import plan

        return plan(model)
    if module == "lightgbm":
        from .lightgbm import plan

        return plan(model)
    if module == "sklearn":
        from .sklearn import plan

        return plan(model)
    raise unsupported(model)


def export_model(model_or_path, out_path: str | os.PathLike, *, n_features: int | None = None,
                 seed: int = 0) -> ExportResult:
    """Write `model_or_path` (a fitted model, or a file `load_model_file` reads) as ONNX to `out_path`.

    `n_features`, if given, must match the model's. Raises UnsupportedModelError (a UsageError) naming the
    estimator for anything it cannot export exactly."""
    import onnx

    model = load_model_file(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else model_or_path
    plan = plan_for(model)
    if n_features is not None and n_features != plan.n_features:
        raise UsageError(f"{plan.kind} takes {plan.n_features} features, not {n_features}")
    em = Emitter(counter_names([INPUT_NAME]))
    plan.body.emit(em, INPUT_NAME, plan.output_name)
    k = plan.body.n_outputs
    onnx_model = make_model(em, plan.n_features, [(plan.output_name, k)], "zkinfer_export",
                            doc=f"{plan.kind}: {plan.output_meaning}")
    check = _check(onnx_model, plan, seed)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, str(out))
    tree = hasattr(plan.body, "trees")
    return ExportResult(
        path=out, model=plan.kind, task=plan.task, n_features=plan.n_features, input_name=INPUT_NAME,
        input_shape=[BATCH_DIM, plan.n_features],
        outputs=[{"name": plan.output_name, "shape": [BATCH_DIM, k], "meaning": plan.output_meaning}],
        classes=plan.classes, exact=EXACT_TREES if tree else EXACT_LINEAR,
        rounds=_rounds(plan.body), check=check, notes=plan.notes, expected=plan.reference)


EXACT_TREES = ("every split decision, on the input as the circuit quantizes it (x' = round(x * 2^s) / 2^s: "
               "thresholds are moved onto that grid when the circuit is built), and which leaves are summed")
EXACT_LINEAR = "nothing beyond ezkl's fixed point: a linear model's products are rounded like any model's"


def _rounds(body) -> str:
    post = {"logistic": "; then the sigmoid, a lookup table", "softmax": "; then the softmax (exp lookups and a "
            "division)", "exp": "; then exp, a lookup table", "none": ""}[body.transform]
    if hasattr(body, "trees"):
        return (f"each leaf value and the base score, to the parameter scale p (at most {len(body.trees)} * "
                f"2^-(p+1) per output for {len(body.trees)} trees){post}")
    return f"weights and bias to the parameter scale, products rescaled to the output scale{post}"


def probe_inputs(plan: Plan, seed: int = 0) -> np.ndarray:
    """Inputs for the export check: random ones, and for trees each threshold, its float32 neighbours and
    points a little either side of it (with other features random)."""
    rng = np.random.default_rng(seed)
    F = plan.n_features
    body = plan.body
    if not hasattr(body, "trees"):
        return rng.normal(0.0, 3.0, (N_RANDOM_PROBES, F)).astype(np.float32)
    thresholds = [[] for _ in range(F)]
    for t in body.trees:
        inner = t.feature >= 0
        for f, r in zip(t.feature[inner], t.right_thresholds()[inner], strict=True):
            thresholds[int(f)].append(float(r))
    lo = np.array([min(v) if v else -1.0 for v in thresholds])
    hi = np.array([max(v) if v else 1.0 for v in thresholds])
    span = np.maximum(hi - lo, 1e-3)
    rows = [rng.uniform(lo - 0.2 * span, hi + 0.2 * span, (N_RANDOM_PROBES, F))]
    for f, values in enumerate(thresholds):
        for r in sorted(set(values)):
            near = np.array([r + d * (abs(r) + 1.0) for d in (-1e-3, -1e-5, 1e-5, 1e-3)])
            # Not at thresholds of tiny magnitude: LightGBM reads |x| <= 1e-35 as 0 (no circuit can tell them
            # apart from 0 either).
            exact = np.array([r, np.nextafter(np.float32(r), np.float32(np.inf))]) \
                if plan.exact_thresholds and abs(r) > TINY else []
            for v in (*near, *exact):
                row = rng.uniform(lo - 0.2 * span, hi + 0.2 * span, F)
                row[f] = v
                rows.append(row[None])
    return np.concatenate(rows).astype(np.float32)


def _check(onnx_model, plan: Plan, seed: int) -> dict:
    """The graph (onnxruntime) against the estimator on `probe_inputs`; UnsupportedModelError if they differ."""
    import onnxruntime as ort

    X = probe_inputs(plan, seed)
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = np.asarray(session.run(None, {INPUT_NAME: X})[0], dtype=np.float64)
    want = np.asarray(plan.reference(X), dtype=np.float64).reshape(got.shape)
    diff = np.abs(got - want)
    bad = diff > CHECK_ATOL + CHECK_RTOL * np.abs(want)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise UnsupportedModelError(
            f"{plan.kind}: the exported graph differs from the estimator's {plan.reference_name} on "
            f"{int(bad.any(axis=1).sum())} of {len(X)} check inputs (first: {got[i].tolist()} vs "
            f"{want[i].tolist()}); not exported")
    return {"samples": len(X), "max_abs_diff": float(diff.max()), "against": plan.reference_name}
