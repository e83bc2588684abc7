"""Classic ML in, without circuits: `zkinfer export` graphs equal the estimators (also at and beside every
threshold), the ai.onnx.ml rewrite keeps what onnxruntime computes from skl2onnx / onnxmltools graphs
(including its binary-classifier conventions), thresholds move onto the input grid exactly, and the
refusals are one line. Real circuits: tests/test_classic_circuits.py."""

import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from classic_models import (
    binary_target,
    data,
    fitted,
    ml_node_graph,
    multiclass_target,
    onnxmltools_graph,
    regression_target,
    skl2onnx_graph,
)
from onnx import TensorProto, helper, numpy_helper

from pipeline.errors import UnsupportedModelError, UsageError
from pipeline.export import export_model
from pipeline.reference import as_vector
from pipeline.rewrites import CALIBRATED_REWRITES, REWRITES, RewriteContext
from pipeline.rewrites.graph import Graph
from pipeline.rewrites.shapes import concrete_inputs

X = data()
Y = {"binary": binary_target(X), "multiclass": multiclass_target(X), "regression": regression_target(X)}


def sklearn_models():
    from sklearn import ensemble as en
    from sklearn import linear_model as lm
    from sklearn import svm, tree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

    small = {"max_depth": 3, "random_state": 0}
    return {
        "pipeline-logreg": (lambda: make_pipeline(StandardScaler(), lm.LogisticRegression()), "binary"),
        "logreg-multinomial": (lm.LogisticRegression, "multiclass"),
        "linear-regression": (lm.LinearRegression, "regression"),
        "ridge-minmax": (lambda: make_pipeline(MinMaxScaler(), lm.Ridge()), "regression"),
        "lasso": (lambda: lm.Lasso(alpha=0.01), "regression"),
        "linear-svc": (svm.LinearSVC, "binary"),
        "linear-svr": (svm.LinearSVR, "regression"),
        "decision-tree": (lambda: tree.DecisionTreeClassifier(**small), "multiclass"),
        "decision-tree-regressor": (lambda: tree.DecisionTreeRegressor(**small), "regression"),
        "random-forest": (lambda: en.RandomForestClassifier(n_estimators=3, **small), "binary"),
        "random-forest-robust": (lambda: make_pipeline(RobustScaler(), en.RandomForestClassifier(
            n_estimators=3, **small)), "multiclass"),
        "extra-trees-regressor": (lambda: make_pipeline(MaxAbsScaler(), en.ExtraTreesRegressor(
            n_estimators=3, **small)), "regression"),
        "gradient-boosting": (lambda: en.GradientBoostingClassifier(n_estimators=4, max_depth=2), "binary"),
        "gradient-boosting-multiclass": (lambda: en.GradientBoostingClassifier(n_estimators=3, max_depth=2),
                                         "multiclass"),
        "gradient-boosting-exponential": (lambda: en.GradientBoostingClassifier(n_estimators=3, max_depth=2,
                                                                                loss="exponential"), "binary"),
        "gradient-boosting-regressor": (lambda: en.GradientBoostingRegressor(n_estimators=4, max_depth=2),
                                        "regression"),
        "hist-gradient-boosting": (lambda: en.HistGradientBoostingClassifier(max_iter=4, max_depth=2), "binary"),
        "hist-gradient-boosting-multiclass": (lambda: en.HistGradientBoostingClassifier(max_iter=3, max_depth=2),
                                              "multiclass"),
        "hist-gradient-boosting-regressor": (lambda: en.HistGradientBoostingRegressor(max_iter=4, max_depth=2),
                                             "regression"),
    }


def boosting_models():
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "xgboost": (lambda: xgb.XGBClassifier(n_estimators=4, max_depth=2), "binary"),
        "xgboost-multiclass": (lambda: xgb.XGBClassifier(n_estimators=3, max_depth=2), "multiclass"),
        "xgboost-regressor": (lambda: xgb.XGBRegressor(n_estimators=4, max_depth=2), "regression"),
        "xgboost-poisson": (lambda: xgb.XGBRegressor(n_estimators=3, max_depth=2, objective="count:poisson"),
                            "counts"),
        "lightgbm": (lambda: lgb.LGBMClassifier(n_estimators=4, num_leaves=4, verbose=-1), "binary"),
        "lightgbm-multiclass": (lambda: lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1), "multiclass"),
        "lightgbm-regressor": (lambda: lgb.LGBMRegressor(n_estimators=4, num_leaves=4, verbose=-1), "regression"),
        "pipeline-xgboost": (lambda: make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=3, max_depth=2)),
                             "binary"),
        "lightgbm-rf": (lambda: lgb.LGBMClassifier(boosting_type="rf", n_estimators=4, num_leaves=4, bagging_freq=1,
                                                   bagging_fraction=0.8, verbose=-1), "binary"),
    }


def target(kind: str) -> np.ndarray:
    return np.exp(Y["regression"] / 2).round() if kind == "counts" else Y[kind]


def estimator_outputs(est, X_, task: str) -> np.ndarray:
    """What the exported graph must output, from the estimator's public API."""
    if hasattr(est, "predict_proba") and type(est).__name__ != "SGDClassifier":
        p = est.predict_proba(X_)
        return p[:, 1:] if p.shape[1] == 2 else p
    if task in ("binary", "multiclass"):
        return np.asarray(est.decision_function(X_)).reshape(len(X_), -1)
    return np.asarray(est.predict(X_)).reshape(len(X_), -1)


def near_thresholds(onnx_path, rng, exact: bool = True, n_random: int = 3) -> np.ndarray:
    """Inputs exactly at each of the exported graph's thresholds and one float32 step either side (`exact`),
    and 1e-4 either side (the other features random): where a wrong <= / < or a wrong rounding shows.

    A pipeline's scaler is folded into its tree's thresholds; at the folded threshold itself the
    estimator's own float rounding inside the scaler decides, so pipelines are not probed there."""
    model = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    feature = next((v for k, v in inits.items() if k.startswith("node_feature")), None)
    threshold = next((v for k, v in inits.items() if k.startswith("node_threshold")), None)
    if feature is None:
        return np.zeros((0, X.shape[1]), np.float32)
    rows = []
    for f, t in sorted(set(zip(feature.tolist(), threshold.tolist(), strict=True))):
        t32 = np.float32(t)
        at = (t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))) if exact else ()
        for v in (*at, t32 + 1e-4, t32 - 1e-4):
            row = rng.uniform(-2, 2, (n_random, X.shape[1])).astype(np.float32)
            row[:, f] = v
            rows.append(row)
    return np.concatenate(rows)


def run_onnx(path, X_) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(X_, dtype=np.float32)})[0]


@pytest.mark.parametrize("name", [*sklearn_models(), *boosting_models()])
def test_export_equals_the_estimator_everywhere_and_at_thresholds(name, tmp_path):
    make, kind = {**sklearn_models(), **boosting_models()}[name]
    est = fitted(make, X, target(kind))
    result = export_model(est, tmp_path / "m.onnx")
    rng = np.random.default_rng(7)
    exact = not result.model.startswith("scikit-learn Pipeline")
    samples = np.concatenate([data(300, seed=11, grid=False), near_thresholds(result.path, rng, exact)])
    got = run_onnx(result.path, samples)
    want = estimator_outputs(est, samples, kind)
    assert got.shape == want.shape == (len(samples), result.outputs[0]["shape"][1])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    # what the circuit compiler gets: standard operators only, never Equal
    ops = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert not ops & {"Equal", "TreeEnsembleClassifier", "TreeEnsembleRegressor", "LinearClassifier"}
    assert result.check["max_abs_diff"] <= 1e-4 and result.check["samples"] > 100
    assert result.task == ("regression" if kind in ("regression", "counts") else "classification")


def test_export_from_files_xgboost_json_ubj_lightgbm_txt_and_pickles(tmp_path):
    import joblib
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import RandomForestRegressor

    y = Y["binary"]
    xg = fitted(lambda: xgb.XGBClassifier(n_estimators=3, max_depth=2), X, y)
    lg = fitted(lambda: lgb.LGBMRegressor(n_estimators=3, num_leaves=4, verbose=-1), X, Y["regression"])
    rf = fitted(lambda: RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0), X, Y["regression"])
    xg.save_model(tmp_path / "m.json")
    xg.get_booster().save_model(tmp_path / "m.ubj")
    lg.booster_.save_model(tmp_path / "m.txt")
    (tmp_path / "rf.pkl").write_bytes(pickle.dumps(rf))
    joblib.dump(rf, tmp_path / "rf.joblib")
    samples = data(100, seed=3, grid=False)
    for file, want in (("m.json", xg.predict_proba(samples)[:, 1:]), ("m.ubj", xg.predict_proba(samples)[:, 1:]),
                       ("m.txt", lg.predict(samples)[:, None]), ("rf.pkl", rf.predict(samples)[:, None]),
                       ("rf.joblib", rf.predict(samples)[:, None])):
        result = export_model(tmp_path / file, tmp_path / f"{file}.onnx")
        np.testing.assert_allclose(run_onnx(result.path, samples), want, atol=1e-5, err_msg=file)


def test_export_result_describes_the_output(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    rf = fitted(lambda: RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0), X,
                np.array(["bad", "good"])[Y["binary"]])
    r = export_model(rf, tmp_path / "rf.onnx", n_features=4)
    assert r.classes == ["bad", "good"] and r.outputs[0]["meaning"] == "probability of class 'good'"
    assert r.input_shape == ["batch", 4] and r.outputs[0]["shape"] == ["batch", 1]
    text = r.describe()
    assert "RandomForestClassifier (2 trees" in text and "2 * 2^-(p+1)" in text and "split decision" in text
    json.dumps(r.to_dict())  # serializable without the estimator
    with pytest.raises(UsageError, match="takes 4 features, not 5"):
        export_model(rf, tmp_path / "x.onnx", n_features=5)


def zkinfer(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True)


def test_export_refusals_are_one_line(tmp_path):
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svc = fitted(SVC, X, Y["binary"])
    with pytest.raises(UnsupportedModelError, match=r"^SVC is not supported by zkinfer export; supported: .*"
                                                    r"RandomForestClassifier.*XGBClassifier.*LGBMRegressor"):
        export_model(svc, tmp_path / "svc.onnx")
    with pytest.raises(UnsupportedModelError, match="StandardScaler is a scaler"):
        export_model(fitted(StandardScaler, X, None), tmp_path / "s.onnx")

    (tmp_path / "svc.pkl").write_bytes(pickle.dumps(svc))
    (tmp_path / "junk.pkl").write_bytes(b"certainly not a pickle")
    (tmp_path / "model.csv").write_text("1,2\n")
    (tmp_path / "junk.json").write_text("{}")
    for args, message in (
        (["svc.pkl"], "error: SVC is not supported by zkinfer export; supported:"),
        (["missing.pkl"], "error: model file not found:"),
        (["junk.pkl"], "junk.pkl is not a pickle of a fitted model (UnpicklingError"),
        (["model.csv"], "unknown model file type .csv; give an XGBoost model (.json, .ubj)"),
        (["junk.json"], "junk.json is not an XGBoost model"),
    ):
        r = zkinfer("export", tmp_path / args[0], "--out", tmp_path / "out.onnx")
        assert r.returncode == 2 and message in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.onnx").exists()


def test_cli_export_writes_the_graph_and_says_what_it_is(tmp_path):
    from sklearn.ensemble import GradientBoostingClassifier

    gb = fitted(lambda: GradientBoostingClassifier(n_estimators=2, max_depth=2), X, Y["binary"])
    (tmp_path / "gb.pkl").write_bytes(pickle.dumps(gb))
    r = zkinfer("export", tmp_path / "gb.pkl", "--out", tmp_path / "gb.onnx")
    assert r.returncode == 0, r.stderr
    assert "GradientBoostingClassifier" in r.stdout and "probability of class 1" in r.stdout
    np.testing.assert_allclose(run_onnx(tmp_path / "gb.onnx", X[:50]), gb.predict_proba(X[:50])[:, 1:], atol=1e-5)
    assert "Loading a pickle runs code" in zkinfer("export", "--help").stdout


# ---- the ai.onnx.ml rewrite: the rewritten graph computes what onnxruntime computes from the original


def rewritten(path, n_features: int = 4) -> onnx.ModelProto:
    model = onnx.load(str(path))
    concrete_inputs(model, {model.graph.input[0].name: (1, n_features)})
    notes = REWRITES[0](model, RewriteContext(samples=[], input_names=[model.graph.input[0].name]))
    assert notes and not [n for n in model.graph.node if n.domain == "ai.onnx.ml"]
    return model


def assert_same_outputs(original_path, model: onnx.ModelProto, samples: np.ndarray):
    """Each sample through both graphs (onnxruntime), outputs flattened and joined as the gate compares them."""
    a = ort.InferenceSession(str(original_path), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = a.get_inputs()[0].name
    for x in samples.astype(np.float32):
        want, got = as_vector(a.run(None, {name: x[None]})), as_vector(b.run(None, {name: x[None]}))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5, err_msg=str(x))


def skl2onnx_cases():
    from sklearn import ensemble as en
    from sklearn import linear_model as lm
    from sklearn import svm, tree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler

    return {
        "pipeline-logreg": (lambda: make_pipeline(StandardScaler(), lm.LogisticRegression()), "binary", True),
        "logreg-multinomial": (lm.LogisticRegression, "multiclass", True),
        "linear-regression": (lm.LinearRegression, "regression", True),
        "linear-svc": (svm.LinearSVC, "binary", True),
        "normalizer-logreg": (lambda: make_pipeline(MinMaxScaler(), Normalizer(), lm.LogisticRegression()), "binary",
                              True),
        "decision-tree": (lambda: tree.DecisionTreeClassifier(max_depth=3, random_state=0), "binary", True),
        "minmax-random-forest": (lambda: make_pipeline(MinMaxScaler(), en.RandomForestClassifier(
            n_estimators=3, max_depth=3, random_state=0)), "binary", True),
        "random-forest-multiclass": (lambda: en.RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0),
                                     "multiclass", False),
        "random-forest-regressor": (lambda: en.RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0),
                                    "regression", True),
        "gradient-boosting": (lambda: en.GradientBoostingClassifier(n_estimators=3, max_depth=2), "binary", True),
        "gradient-boosting-multiclass": (lambda: en.GradientBoostingClassifier(n_estimators=3, max_depth=2),
                                         "multiclass", True),
        "standard-gradient-boosting-regressor": (lambda: make_pipeline(StandardScaler(), en.GradientBoostingRegressor(
            n_estimators=3, max_depth=2)), "regression", True),
    }


@pytest.mark.parametrize("name", list(skl2onnx_cases()))
def test_skl2onnx_graphs_rewritten_compute_the_same(name, tmp_path):
    make, kind, zipmap = skl2onnx_cases()[name]
    path = skl2onnx_graph(fitted(make, X, Y[kind]), X, tmp_path / "m.onnx", zipmap=zipmap)
    model = rewritten(path)
    rng = np.random.default_rng(5)
    assert_same_outputs(path, model, np.concatenate([data(60, seed=9, grid=False), rng.normal(0, 2, (20, 4))]))


@pytest.mark.parametrize("name", ["xgboost", "xgboost-multiclass", "xgboost-regressor", "lightgbm",
                                  "lightgbm-multiclass", "lightgbm-regressor"])
def test_onnxmltools_graphs_rewritten_compute_the_same(name, tmp_path):
    make, kind = boosting_models()[name]
    path = onnxmltools_graph(fitted(make, X, target(kind)), 4, tmp_path / "m.onnx")
    assert_same_outputs(path, rewritten(path), data(80, seed=9, grid=False))


def test_scalers_fold_into_thresholds_so_trees_read_raw_features(tmp_path):
    """skl2onnx's StandardScaler (ai.onnx.ml Scaler) and MinMaxScaler (Cast, Mul, Add) before trees disappear:
    the comparisons read the graph input, which is what lets their thresholds go on the input grid."""
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    for scaler, est, y in ((StandardScaler, GradientBoostingRegressor(n_estimators=2, max_depth=2), Y["regression"]),
                           (MinMaxScaler, RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0),
                            Y["binary"])):
        path = skl2onnx_graph(fitted(lambda s=scaler, e=est: make_pipeline(s(), e), X, y), X,
                              tmp_path / f"{scaler.__name__}.onnx")
        model = rewritten(path)
        g = Graph(model)
        gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] == g.input_names[0]]
        assert gathers, "the tree reads the raw input"
        assert not [n for n in model.graph.node if n.op_type in ("Mul", "Scaler")]


def tree_node(op, pt, weights, base=None, modes=("BRANCH_LEQ",), **extra):
    """A two-tree ensemble over feature 0 with the given branch mode and leaf weights (class 0 / target 0)."""
    mode = modes[0]
    kw = dict(nodes_treeids=[0, 0, 0, 1, 1, 1], nodes_nodeids=[0, 1, 2, 0, 1, 2], nodes_featureids=[0, 0, 0, 1, 0, 0],
              nodes_values=[0.25, 0, 0, -0.5, 0, 0], nodes_modes=[mode, "LEAF", "LEAF", modes[-1], "LEAF", "LEAF"],
              nodes_truenodeids=[1, 0, 0, 1, 0, 0], nodes_falsenodeids=[2, 0, 0, 2, 0, 0], post_transform=pt, **extra)
    prefix = "class" if op == "TreeEnsembleClassifier" else "target"
    kw.update({f"{prefix}_treeids": [0, 0, 1, 1], f"{prefix}_nodeids": [1, 2, 1, 2],
               f"{prefix}_ids": [0, 0, 0, 0], f"{prefix}_weights": list(weights)})
    if op == "TreeEnsembleClassifier":
        kw["classlabels_int64s"] = [3, 7]
    if base is not None:
        kw["base_values"] = base
    outputs = ["label", "scores"] if op == "TreeEnsembleClassifier" else ["scores"]
    return helper.make_node(op, ["X"], outputs, domain="ai.onnx.ml", **kw)


@pytest.mark.parametrize("pt, weights, base, modes", [
    ("NONE", [0.2, 0.7, 0.1, 0.0], None, ("BRANCH_LEQ",)),  # weights >= 0: [1 - s, s], label s > 0.5
    ("NONE", [-0.2, 0.7, 0.1, 0.3], [0.05], ("BRANCH_LT",)),  # mixed weights: [-s, s], label s > 0
    ("LOGISTIC", [0.2, 0.7, 0.1, 0.0], [-0.4], ("BRANCH_GTE",)),  # sigmoid, label still s > 0.5
    ("LOGISTIC", [-1.2, 0.7, 0.4, -0.3], None, ("BRANCH_GT", "BRANCH_LEQ")),  # sigmoid, label s > 0
])
def test_binary_tree_classifier_follows_onnxruntime(pt, weights, base, modes, tmp_path):
    node = tree_node("TreeEnsembleClassifier", pt, weights, base, modes)
    path = ml_node_graph(tmp_path / "t.onnx", node, 2, [("label", TensorProto.INT64, [None]),
                                                         ("scores", TensorProto.FLOAT, [None, 2])])
    grid = np.array([[a, b] for a in (-1, 0.25, np.nextafter(np.float32(0.25), 1), 1) for b in (-1, -0.5, 0.3)])
    assert_same_outputs(path, rewritten(path, 2), grid)


def test_tree_regressor_average_and_linear_classifier_single_score(tmp_path):
    node = tree_node("TreeEnsembleRegressor", "NONE", [0.2, 0.7, -0.1, 0.4], [1.5], n_targets=1,
                     aggregate_function="AVERAGE")
    path = ml_node_graph(tmp_path / "r.onnx", node, 2, [("scores", TensorProto.FLOAT, [None, 1])])
    grid = np.random.default_rng(0).uniform(-1, 1, (30, 2))
    assert_same_outputs(path, rewritten(path, 2), grid)
    for pt in ("NONE", "LOGISTIC"):  # one score, two labels: onnxruntime's [1 - p, p] and label score > 0
        node = helper.make_node("LinearClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml",
                                coefficients=[0.5, -1.0], intercepts=[0.1], classlabels_ints=[0, 1], post_transform=pt)
        path = ml_node_graph(tmp_path / f"l{pt}.onnx", node, 2, [("label", TensorProto.INT64, [None]),
                                                                  ("scores", TensorProto.FLOAT, [None, 2])])
        assert_same_outputs(path, rewritten(path, 2), grid)


def test_zipmap_with_unsorted_keys_is_read_in_key_order(tmp_path):
    node = helper.make_node("LinearClassifier", ["X"], ["label", "probs"], domain="ai.onnx.ml",
                            coefficients=[1.0, -1.0, 0.5, 0.2, -0.3, 0.8], intercepts=[0.0, 0.1, -0.1],
                            classlabels_ints=[5, 2, 9], post_transform="SOFTMAX")
    zipmap = helper.make_node("ZipMap", ["probs"], ["zipped"], domain="ai.onnx.ml", classlabels_int64s=[5, 2, 9])
    graph = helper.make_graph([node, zipmap], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                               helper.make_value_info("zipped", helper.make_sequence_type_proto(
                                   helper.make_map_type_proto(TensorProto.INT64,
                                                              helper.make_tensor_type_proto(TensorProto.FLOAT, []))))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    path = tmp_path / "z.onnx"
    onnx.save(model, str(path))
    assert_same_outputs(path, rewritten(path, 2), np.random.default_rng(1).uniform(-2, 2, (20, 2)))


def test_unsupported_ml_operators_and_string_labels_are_refused_by_name(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    svc = skl2onnx_graph(fitted(SVC, X, Y["binary"]), X, tmp_path / "svc.onnx")
    node = next(n for n in onnx.load(str(svc)).graph.node if n.domain == "ai.onnx.ml")
    with pytest.raises(UnsupportedModelError, match=rf"^ai.onnx.ml operator SVMClassifier at node '{node.name}' has "
                                                    r"no circuit form .*; export the fitted model with `zkinfer "
                                                    r"export` instead$"):
        rewritten(svc)
    strings = skl2onnx_graph(fitted(LogisticRegression, X, np.array(["no", "yes"])[Y["binary"]]), X,
                             tmp_path / "s.onnx")
    with pytest.raises(UnsupportedModelError, match="LinearClassifier at node .* outputs string class labels"):
        rewritten(strings)


def test_circuit_build_refuses_unsupported_ml_operator_in_one_line(tmp_path):
    from sklearn.svm import SVR

    path = skl2onnx_graph(fitted(SVR, X, Y["regression"]), X, tmp_path / "svr.onnx")
    (tmp_path / "cal.json").write_text(json.dumps({"input_data": [X[:8].ravel().tolist()]}))
    r = zkinfer("circuit", "build", path, "--data", tmp_path / "cal.json", "--out", tmp_path / "c")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "ai.onnx.ml operator SVMRegressor at node" in r.stderr and "zkinfer export" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # without the rewrite, a ZipMap output has no shape to compile: one line too, not the evaluator's traceback
    from sklearn.linear_model import LogisticRegression

    lr = skl2onnx_graph(fitted(LogisticRegression, X, Y["binary"]), X, tmp_path / "lr.onnx")
    r = zkinfer("circuit", "build", lr, "--data", tmp_path / "cal.json", "--out", tmp_path / "c",
                "--no-rewrite", "onnxml-to-standard")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "shape of output(s) output_probability is not declared" in r.stderr and "ZipMap" in r.stderr


# ---- thresholds on the input grid (after calibration)


def test_thresholds_move_onto_the_input_grid_only_where_they_meet_an_input():
    """floor for x > t and x <= t, ceil for x < t and x >= t (either operand order); comparisons of computed
    values and prescaled inputs are left alone."""
    t = np.array([0.30001, -0.7, 1.0], dtype=np.float32)
    nodes = [helper.make_node("Gather", ["x", "idx"], ["picked"], axis=1),
             helper.make_node("Greater", ["picked", "t_gt"], ["a"]),
             helper.make_node("Less", ["picked", "t_lt"], ["b"]),
             helper.make_node("LessOrEqual", ["t_le_first", "picked"], ["c"]),
             helper.make_node("Sigmoid", ["picked"], ["s"]),
             helper.make_node("Greater", ["s", "t_computed"], ["d"])]
    inits = {"idx": np.array([0, 1, 2]), "t_gt": t, "t_lt": t, "t_le_first": t, "t_computed": t}
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info(o, TensorProto.BOOL, [1, 3]) for o in "abcd"],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    s = 8
    notes = CALIBRATED_REWRITES[0](model, RewriteContext(samples=[], input_names=["x"], input_scales={"x": s}))
    assert notes and f"at scale {s}" in notes[0]
    g = Graph(model)
    by_output = {n.output[0]: n for n in model.graph.node}

    def threshold(out, k):
        return g.constant(by_output[out].input[k]).astype(np.float64)

    scaled = t.astype(np.float64) * 2 ** s
    np.testing.assert_array_equal(threshold("a", 1), np.floor(scaled) / 2 ** s)
    np.testing.assert_array_equal(threshold("b", 1), np.ceil(scaled) / 2 ** s)
    np.testing.assert_array_equal(threshold("c", 0), np.ceil(scaled) / 2 ** s)  # t <= x  <=>  not (x < t)
    np.testing.assert_array_equal(threshold("d", 1), t)  # a sigmoid's output is not on the input grid
    # every decision on grid inputs is unchanged: the same model on the quantized input
    q = np.arange(-400, 400)[:, None] / 2 ** s
    for out, k in (("a", 1), ("b", 1), ("c", 0)):
        op = by_output[out].op_type
        cmp = {"Greater": np.greater, "Less": np.less, "LessOrEqual": np.less_equal}[op]
        args = (lambda th: (q, th)) if k == 1 else (lambda th: (th, q))
        np.testing.assert_array_equal(cmp(*args(threshold(out, k))), cmp(*args(t.astype(np.float64))))

    prescaled = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert not CALIBRATED_REWRITES[0](prescaled, RewriteContext(
        samples=[], input_names=["x"], input_scales={"x": s}, input_prescale={"x": np.array([3, 0, 0])}))


def test_exported_trees_keep_exact_decisions_on_quantized_inputs(tmp_path):
    """Exported thresholds put on a grid give, on that grid's inputs, exactly the estimator's predictions
    (what the circuit computes before leaf rounding), for every scale calibration could pick."""
    from sklearn.ensemble import RandomForestClassifier

    Xc = data(400, seed=2, grid=False)
    rf = fitted(lambda: RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0), Xc, binary_target(Xc))
    result = export_model(rf, tmp_path / "rf.onnx")
    for s in (7, 10, 13):
        model = onnx.load(str(result.path))
        assert CALIBRATED_REWRITES[0](model, RewriteContext(samples=[], input_names=["features"],
                                                            input_scales={"features": s}))
        snapped = tmp_path / f"rf{s}.onnx"
        onnx.save(model, str(snapped))
        xq = (np.round(data(300, seed=4, grid=False) * 2 ** s) / 2 ** s).astype(np.float32)
        np.testing.assert_allclose(run_onnx(snapped, xq), rf.predict_proba(xq)[:, 1:], atol=1e-6)


def test_provers_do_not_import_the_classic_libraries():
    code = ("import sys, pipeline.prove, pipeline.verify, pipeline.export; "
            "print([m for m in ('sklearn', 'xgboost', 'lightgbm', 'skl2onnx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


warnings.filterwarnings("ignore", category=UserWarning)
