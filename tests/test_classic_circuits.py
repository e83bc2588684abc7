"""Classic ML models built into real circuits (real ezkl, dev SRS), proven, verified, and the proven outputs
compared with the estimator's own predict_proba / predict: a scikit-learn pipeline, a random forest,
gradient boosting and histogram gradient boosting, XGBoost from a .json file through the CLI, LightGBM
from a .txt file, and skl2onnx graphs (ai.onnx.ml operators) through `zkinfer circuit build` directly.
Plus the threshold rounding the grid rewrite removes, measured on a real circuit.

Inputs are multiples of 1/64 (tests/classic_models.py), exact at every scale calibration picks, so tree
circuits must match the estimator up to leaf-value rounding alone: at most T * 2^-(p+1) for T trees at
parameter scale p, before a sigmoid or softmax lookup.

Circuits built through the library are calibrated at one fixed scale (8), those built through the CLI with
the default calibration; all with small range-check tables (decomposition base 256, 4 legs: same
arithmetic, 2^10-row circuits), so that keys and proofs take seconds."""

import json
import subprocess
import sys

import numpy as np
import pytest
from classic_models import (
    binary_target,
    data,
    fitted,
    multiclass_target,
    regression_target,
    skl2onnx_graph,
    weak_binary_target,
)
from foreign_models import prove_and_verify, write_data

from pipeline.build import BuildOptions, build_circuit
from pipeline.compile import CalibrationAttempt, CircuitArgs
from pipeline.errors import FidelityError
from pipeline.export import export_model
from pipeline.export.builder import INPUT_NAME

pytestmark = pytest.mark.slow

# Small and quick: one calibration attempt at scale 8, 16 held-out samples for the gate.
LAYOUT = CircuitArgs(decomp_base=256, decomp_legs=4)
CLI_LAYOUT = ("--decomp-base", "256", "--decomp-legs", "4", "--max-attempts", "1")
OPTIONS = dict(ladder=(CalibrationAttempt(scales=(8,)),), max_attempts=1, max_validation=16, circuit_args=LAYOUT)
X = data(400, seed=0)
# Calibration, the gate's held-out inputs (compared on every build), and the one input proven per circuit.
X_CAL, X_VAL, X_TEST = X[:48], X[200:216], X[300:301]


def leaf_rounding_bound(manifest, n_trees: int) -> float:
    """What leaf values can lose at the circuit's parameter scale (plus one output step)."""
    p = manifest.circuit["param_scale"]
    return n_trees * 2.0 ** -(p + 1) + 2.0 ** -manifest.circuit["output_scales"][0]


def build(onnx_path, tmp_path, task=None, **options):
    result = build_circuit(onnx_path, write_data(tmp_path / "cal.json", X_CAL), tmp_path / "circuit",
                           BuildOptions(task=task, **{**OPTIONS, **options}), write_data(tmp_path / "val.json", X_VAL))
    return result.manifest


def proven(manifest, tmp_path, rows=X_TEST) -> np.ndarray:
    return np.array([prove_and_verify(manifest.dir, [x.tolist()], tmp_path) for x in rows])


@pytest.mark.long
def test_sklearn_pipeline_scaler_and_logistic_regression(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    est = fitted(lambda: make_pipeline(StandardScaler(), LogisticRegression()), X, weak_binary_target(X))
    result = export_model(est, tmp_path / "lr.onnx")
    m = build(result.path, tmp_path, task="classification")
    assert m.data["fidelity"]["label_agreement"] == 1.0
    np.testing.assert_allclose(proven(m, tmp_path), est.predict_proba(X_TEST)[:, 1:], atol=0.01)


def test_random_forest_decisions_are_exact(tmp_path):
    """Trained on continuous features (thresholds anywhere), proven on grid inputs: each threshold is moved
    onto the circuit's grid and every decision is the forest's, so only leaf rounding remains."""
    from sklearn.ensemble import RandomForestClassifier

    Xc = data(400, seed=5, grid=False)
    est = fitted(lambda: RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0), Xc,
                 multiclass_target(Xc))
    result = export_model(est, tmp_path / "rf.onnx")
    m = build(result.path, tmp_path, task="classification")
    assert [r["rewrite"] for r in m.data["prepare"]["after_calibration"]] == ["thresholds-on-input-grid"]
    bound = leaf_rounding_bound(m, 3)
    assert m.data["fidelity"]["max_abs_error"] <= bound  # no decision differs on the held-out grid inputs
    np.testing.assert_allclose(proven(m, tmp_path), est.predict_proba(X_TEST), atol=bound)


@pytest.mark.long
def test_gradient_boosting_and_hist_gradient_boosting(tmp_path):
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor

    gb = fitted(lambda: GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0), X, binary_target(X))
    (tmp_path / "gb").mkdir()
    m = build(export_model(gb, tmp_path / "gb.onnx").path, tmp_path / "gb", task="classification")
    assert m.data["fidelity"]["label_agreement"] == 1.0
    # the leaves' rounding, then a sigmoid lookup (slope <= 1/4) that rounds to its output scale
    np.testing.assert_allclose(proven(m, tmp_path), gb.predict_proba(X_TEST)[:, 1:], atol=0.005)

    hgb = fitted(lambda: HistGradientBoostingRegressor(max_iter=4, max_depth=2), X, regression_target(X))
    (tmp_path / "hgb").mkdir()
    m = build(export_model(hgb, tmp_path / "hgb.onnx").path, tmp_path / "hgb")
    bound = leaf_rounding_bound(m, 4)
    assert m.data["fidelity"]["max_abs_error"] <= bound
    np.testing.assert_allclose(proven(m, tmp_path)[:, 0], hgb.predict(X_TEST), atol=bound)


def zkinfer(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True)


def test_xgboost_json_file_through_the_cli(tmp_path):
    import xgboost as xgb

    est = fitted(lambda: xgb.XGBClassifier(n_estimators=4, max_depth=2), X, binary_target(X))
    est.save_model(tmp_path / "model.json")
    r = zkinfer("export", tmp_path / "model.json", "--out", tmp_path / "model.onnx")
    assert r.returncode == 0, r.stderr
    r = zkinfer("circuit", "build", tmp_path / "model.onnx", "--data", write_data(tmp_path / "cal.json", X_CAL),
                "--validation", write_data(tmp_path / "val.json", X_VAL), "--out", tmp_path / "circuit",
                "--task", "classification", *CLI_LAYOUT)
    assert r.returncode == 0, r.stderr
    assert "label agreement 1.0000" in r.stdout
    from pipeline.manifest import load

    np.testing.assert_allclose(proven(load(tmp_path / "circuit"), tmp_path), est.predict_proba(X_TEST)[:, 1:],
                               atol=0.005)


@pytest.mark.long
def test_lightgbm_txt_file(tmp_path):
    import lightgbm as lgb

    est = fitted(lambda: lgb.LGBMRegressor(n_estimators=4, num_leaves=4, min_child_samples=5, verbose=-1), X,
                 regression_target(X))
    est.booster_.save_model(tmp_path / "model.txt")
    result = export_model(tmp_path / "model.txt", tmp_path / "model.onnx")
    m = build(result.path, tmp_path)
    bound = leaf_rounding_bound(m, 4)
    assert m.data["fidelity"]["max_abs_error"] <= bound
    np.testing.assert_allclose(proven(m, tmp_path)[:, 0], est.predict(X_TEST), atol=bound)


@pytest.mark.parametrize("kind", [pytest.param("logistic-regression", marks=pytest.mark.long), "random-forest"])
def test_skl2onnx_graph_builds_directly(kind, tmp_path):
    """skl2onnx's graph as users write it (label + ZipMap'd probabilities, ai.onnx.ml operators), given to
    `zkinfer circuit build` as is: the proof's outputs are the label and both class probabilities."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    make = {"logistic-regression": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
            "random-forest": lambda: RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0)}[kind]
    est = fitted(make, X, weak_binary_target(X) if kind == "logistic-regression" else binary_target(X))
    path = skl2onnx_graph(est, X, tmp_path / "model.onnx")
    r = zkinfer("circuit", "build", path, "--data", write_data(tmp_path / "cal.json", X_CAL), "--validation",
                write_data(tmp_path / "val.json", X_VAL), "--out", tmp_path / "circuit", *CLI_LAYOUT)
    assert r.returncode == 0, r.stderr
    assert "rewrite onnxml-to-standard" in r.stderr
    from pipeline.manifest import load

    m = load(tmp_path / "circuit")
    assert m.data["fidelity"]["reference"]["kind"] == "onnxruntime"
    out = proven(m, tmp_path)
    np.testing.assert_array_equal(out[:, 0], est.predict(X_TEST))
    np.testing.assert_allclose(out[:, 1:], est.predict_proba(X_TEST), atol=0.01)


def test_threshold_rounding_was_wrong_and_is_exact(tmp_path):
    """A stump at t = 0.30001 and an input exactly on the circuit's grid at scale 8: 77/256 > t. ezkl's own
    rounding of t (to 77/256) sent it left; on the grid (76/256) it goes right, as the model says."""
    import onnx

    from pipeline.export.builder import Emitter, counter_names, make_model
    from pipeline.export.trees import Tree, TreeEnsemble

    stump = TreeEnsemble([Tree(feature=[0, -1, -1], threshold=[0.30001, 0, 0], left=[1, -1, -1], right=[2, -1, -1],
                               value=[[0.0], [-1.0], [1.0]])], 1, [0.0])
    em = Emitter(counter_names([INPUT_NAME]))
    stump.emit(em, INPUT_NAME, "y")
    path = tmp_path / "stump.onnx"
    onnx.save(make_model(em, 1, [("y", 1)], "stump"), str(path))
    cal = write_data(tmp_path / "cal.json", np.linspace(-1, 1, 33))
    val = write_data(tmp_path / "val.json", np.arange(74, 81) / 256)
    scale8 = dict(ladder=(CalibrationAttempt(scales=(8,)),), max_attempts=1, circuit_args=LAYOUT)
    with pytest.raises(FidelityError) as e:
        build_circuit(path, cal, tmp_path / "plain", BuildOptions(skip_rewrites=("thresholds-on-input-grid",),
                                                                  **scale8), val)
    worst = e.value.report["worst"]
    assert (worst["circuit"], worst["reference"]) == (-1.0, 1.0)
    m = build_circuit(path, cal, tmp_path / "grid", BuildOptions(**scale8), val).manifest
    assert m.data["fidelity"]["max_abs_error"] == 0.0
    x = 77 / 256
    assert prove_and_verify(m.dir, [[x]], tmp_path).tolist() == [1.0]
    assert json.loads((m.dir / "manifest.json").read_text())["circuit"]["input_scales"] == [8]
