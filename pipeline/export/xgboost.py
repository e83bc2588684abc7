"""XGBoost models (a Booster, a model file, or the scikit-learn API) -> `classic.Plan` with a TreeEnsemble.

Read from XGBoost's own JSON model (`Booster.save_raw("json")`): per tree the split feature, the float32
split condition ("yes", left, when x < condition), children, and at leaves the leaf value. Tree i adds to
output `tree_info[i]` (the class, for multiclass models). The base margin is read off the model's own
margin output (margin minus the trees' sum), which covers every way XGBoost versions store base_score.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .classic import Plan, unsupported
from .trees import Tree, TreeEnsemble

SUPPORTED = ("xgboost.Booster", "XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor")

# objective -> output transform of the margin
OBJECTIVES = {
    "binary:logistic": "logistic", "reg:logistic": "logistic", "binary:logitraw": "none",
    "multi:softprob": "softmax", "multi:softmax": "softmax",
    "reg:squarederror": "none", "reg:squaredlogerror": "none", "reg:pseudohubererror": "none",
    "reg:absoluteerror": "none", "reg:quantileerror": "none",
    "count:poisson": "exp", "reg:gamma": "exp", "reg:tweedie": "exp",
    "rank:pairwise": "none", "rank:ndcg": "none", "rank:map": "none",
}
# A base margin is accepted when it is the same, to this precision, at every check input.
BASE_TOLERANCE = 1e-4


def load_booster(path: Path):
    import xgboost

    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as e:
        first = (str(e).strip().splitlines() or ["?"])[0]
        first = re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", first)[:200]  # XGBoost's "[time] file:line: " prefix
        raise UsageError(f"{path} is not an XGBoost model: {first}") from None
    return booster


def _booster(model):
    import xgboost

    if isinstance(model, xgboost.Booster):
        return model, None
    try:
        booster = model.get_booster()
    except Exception:  # XGBoost raises its own NotFittedError type for an unfitted estimator
        raise unsupported(model, "is not fitted (call fit first)") from None
    try:
        best = model.best_iteration  # set by early stopping, and then what the estimator's predict uses
    except AttributeError:
        best = None
    if best is not None:
        booster = booster[: best + 1]
    return booster, model


def plan(model) -> Plan:
    import xgboost

    booster, estimator = _booster(model)
    learner = json.loads(booster.save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    gb = learner["gradient_booster"]
    if gb["name"] != "gbtree":
        raise unsupported(model, f"with booster {gb['name']!r} is not supported (gbtree only)")
    if objective not in OBJECTIVES:
        raise unsupported(model, f"with objective {objective!r} is not supported")
    params = learner["learner_model_param"]
    if int(params.get("num_target", 1)) > 1:
        raise unsupported(model, "with several targets is not supported")
    n_features = int(params["num_feature"])
    K = max(int(params.get("num_class", 0)), 1)
    m = gb["model"]
    trees = []
    for tree, group in zip(m["trees"], m["tree_info"], strict=True):
        if int(tree["tree_param"].get("size_leaf_vector", 1)) > 1:
            raise unsupported(model, "with vector leaves (multi-output trees) is not supported")
        if any(int(s) != 0 for s in tree["split_type"]):
            raise unsupported(model, "with categorical splits is not supported (category sets are not thresholds)")
        left = np.asarray(tree["left_children"], dtype=np.int64)
        # XGBoost keeps split conditions as float32; the JSON's decimals round-trip to them, not beyond.
        condition = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
        values = np.zeros((len(left), K))
        values[:, group] = np.where(left < 0, condition, 0.0)
        trees.append(Tree(feature=np.where(left < 0, -1, tree["split_indices"]),
                          threshold=np.where(left < 0, 0.0, condition), left=left,
                          right=np.asarray(tree["right_children"]), value=values, strict=True))
    transform = OBJECTIVES[objective]
    ensemble = TreeEnsemble(trees, n_features, np.zeros(K), transform)
    ensemble.base = _base_margin(booster, ensemble)

    def margin(X):
        return booster.predict(xgboost.DMatrix(X), output_margin=True).reshape(len(X), -1)

    kind = f"XGBoost {type(model).__name__ if estimator is not None else 'Booster'} ({objective}, " \
           f"{len(trees)} trees)"
    classes = None
    if transform == "logistic" and objective.startswith("binary"):
        out, meaning, task = "probability", "probability of class 1", "classification"
    elif transform == "softmax":
        out, meaning, task = "probabilities", f"probability of each of the {K} classes", "classification"
    elif objective == "binary:logitraw":
        out, meaning, task = "margin", "raw margin (> 0: class 1)", "classification"
    else:
        out, meaning, task = "prediction", f"the model's prediction ({objective})", "regression"
    if estimator is not None and hasattr(estimator, "classes_"):
        classes = [c.item() if hasattr(c, "item") else c for c in estimator.classes_]
        if transform == "logistic":
            meaning = f"probability of class {classes[-1]!r}"
        elif transform == "softmax":
            meaning = f"probability of each class, in the order {classes}"

    def reference(X):
        if objective == "multi:softmax" or transform == "none":
            from .builder import apply_transform

            return apply_transform(margin(X), transform)  # predict gives labels (softmax) or the margin
        return booster.predict(xgboost.DMatrix(X)).reshape(len(X), -1)

    ref_name = "Booster.predict(output_margin=True)" if objective == "multi:softmax" or transform == "none" \
        else "Booster.predict"
    return Plan(kind, ensemble, task, out, meaning, reference, ref_name, classes=classes)


def _base_margin(booster, ensemble: TreeEnsemble) -> np.ndarray:
    """The model's margin minus the trees' sum: constant for every input, or the model is not what we read."""
    import xgboost

    from .classic import probe_inputs

    X = probe_inputs(Plan("", ensemble, "", "", "", None, ""))[:64]
    margin = booster.predict(xgboost.DMatrix(X), output_margin=True).reshape(len(X), -1)
    base = margin - ensemble.raw(X)
    if np.ptp(base, axis=0).max() > BASE_TOLERANCE:
        raise unsupported(booster, "could not be read: its margin is not a constant plus the trees' leaves")
    return base.mean(axis=0)
