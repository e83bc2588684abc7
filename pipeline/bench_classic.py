"""Benchmark section `classic_in`: classic ML models in, with default build options, against the estimator.

For each kind (a scikit-learn pipeline, random forest, gradient boosting, histogram gradient boosting, an
XGBoost .json and a LightGBM .txt file through `zkinfer export`, and skl2onnx graphs with ai.onnx.ml
operators given to the build as they are), fitted on seeded data from `tests/classic_models.py` (6
features in [-2, 2], 2000 samples): `build_circuit` with the default ladder and layout, one proof, and
the circuit's outputs compared with the estimator's predict_proba on two held-out sets of 64 inputs:

    continuous   arbitrary floats: the circuit decides on x rounded to its grid, so an input within one
                 grid step of a threshold may take the other branch (the gate's own validation set)
    grid         multiples of 1/64, exact on the circuit's grid: every decision must be the estimator's,
                 so only leaf rounding and the sigmoid lookup remain

Recorded per kind: calibration attempts used, logrows, scales, rewrites, build and prove seconds, the
proven output's error, and for each set the max and mean absolute error against the estimator and the
label agreement (probability >= 0.5).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CLASSIC_MODELS = REPO / "tests" / "classic_models.py"
N_FEATURES = 6
N_HELD_OUT = 64


def _kinds(helpers, d: Path) -> dict[str, Callable]:
    """kind -> a function fitting the estimator and returning (estimator, ONNX path) for it."""
    from sklearn import ensemble as en
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .export import export_model

    X = helpers.data(2000, N_FEATURES, seed=0, grid=False)
    y = helpers.binary_target(X)

    def exported(make, name, save=None):
        def build():
            est = helpers.fitted(make, X, y)
            source = est
            if save:
                source = d / f"{name}{save[0]}"
                save[1](est, source)
            return est, export_model(source, d / f"{name}.onnx").path
        return build

    def skl2onnx(make, name):
        def build():
            est = helpers.fitted(make, X, y)
            return est, helpers.skl2onnx_graph(est, X, d / f"{name}.onnx")
        return build

    import lightgbm as lgb
    import xgboost as xgb

    return {
        "sklearn_pipeline_logistic_regression": exported(
            lambda: make_pipeline(StandardScaler(), LogisticRegression()), "lr"),
        "sklearn_random_forest": exported(
            lambda: en.RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0), "rf"),
        "sklearn_gradient_boosting": exported(
            lambda: en.GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0), "gb"),
        "sklearn_hist_gradient_boosting": exported(
            lambda: en.HistGradientBoostingClassifier(max_iter=20, max_depth=3, random_state=0), "hgb"),
        "xgboost_json_file": exported(lambda: xgb.XGBClassifier(n_estimators=20, max_depth=3), "xgb",
                                      (".json", lambda est, p: est.save_model(p))),
        "lightgbm_txt_file": exported(lambda: lgb.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1), "lgb",
                                      (".txt", lambda est, p: est.booster_.save_model(p))),
        "skl2onnx_logistic_regression": skl2onnx(lambda: make_pipeline(StandardScaler(), LogisticRegression()),
                                                 "lr_skl2onnx"),
        "skl2onnx_random_forest": skl2onnx(
            lambda: en.RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0), "rf_skl2onnx"),
    }


def _positive_probability(est, X) -> np.ndarray:
    return est.predict_proba(X)[:, 1]


def _circuit_probability(outputs: np.ndarray) -> np.ndarray:
    """The positive class's probability from a circuit's outputs: exported graphs output it alone;
    skl2onnx graphs output the label, then both probabilities."""
    return outputs[:, 0] if outputs.shape[1] == 1 else outputs[:, -1]


def _compare(manifest, samples: np.ndarray, want: np.ndarray, scratch: Path) -> dict:
    from . import manifest as manifest_mod
    from . import witness as witness_mod
    from .compile import CircuitSettings
    from .inputs import to_circuit_values

    settings = CircuitSettings.load(manifest.artifact(manifest_mod.SETTINGS))
    got = []
    for x in samples:
        values = to_circuit_values([x.tolist()], manifest.circuit["input_prescale"])
        w = witness_mod.generate(values, manifest.artifact(manifest_mod.COMPILED), scratch_dir=scratch)
        got.append(np.concatenate([np.asarray(t, dtype=float) for t in w.outputs(settings)]))
    p = _circuit_probability(np.array(got))
    err = np.abs(p - want)
    return {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
            "label_agreement": float(np.mean((p >= 0.5) == (want >= 0.5)))}


def bench_classic_in(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> list:
    from .build import BuildOptions, build_circuit
    from .errors import ZkinferError
    from .prove import Prover
    from .zoo import import_model_file

    helpers = import_model_file(CLASSIC_MODELS)
    continuous = helpers.data(N_HELD_OUT, N_FEATURES, seed=1, grid=False)
    grid = helpers.data(N_HELD_OUT, N_FEATURES, seed=2, grid=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-classic-in-") as tmp:
        d = Path(tmp)
        cal = helpers.data(64, N_FEATURES, seed=3, grid=False)
        cal_path = _write(d / "cal.json", cal)
        val_path = _write(d / "val.json", continuous)
        for kind, make in _kinds(helpers, d).items():
            if models and kind not in models:
                continue
            if progress:
                progress(f"[classic_in] {kind}")
            est, onnx = make()
            row = {"kind": kind}
            t = time.perf_counter()
            try:
                m = build_circuit(onnx, cal_path, d / kind, BuildOptions(), val_path, force=True).manifest
            except ZkinferError as e:
                rows.append({**row, "error": e.message})
                continue
            row.update(build_s=round(time.perf_counter() - t, 1), attempts=m.data["fidelity"]["attempts"],
                       logrows=m.circuit["logrows"],
                       input_scale=m.circuit["input_scales"][0], param_scale=m.circuit["param_scale"],
                       rewrites=[r["rewrite"] for r in m.data["prepare"]["rewrites"] +
                                 m.data["prepare"].get("after_calibration", [])])
            t = time.perf_counter()
            proof = Prover(m.dir).prove([grid[0].tolist()])
            row["prove_s"] = round(time.perf_counter() - t, 1)
            row["proven_error_vs_estimator"] = float(abs(
                _circuit_probability(np.array([np.concatenate(proof["outputs"])]))[0] -
                _positive_probability(est, grid[:1])[0]))
            row["continuous"] = _compare(m, continuous, _positive_probability(est, continuous), d)
            row["grid"] = _compare(m, grid, _positive_probability(est, grid), d)
            rows.append(row)
    return rows


def _write(path: Path, samples: np.ndarray) -> Path:
    import json

    path.write_text(json.dumps({"input_data": [np.asarray(samples, dtype=float).ravel().tolist()]}))
    return path
