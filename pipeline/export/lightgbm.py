"""LightGBM models (a Booster, a `.txt` model file, or the scikit-learn API) -> `classic.Plan`.

Read from `Booster.dump_model()`: nested nodes with split feature, float64 threshold (left when
x <= threshold), and leaf values with the shrinkage already applied. Tree i adds to output
i % num_tree_per_iteration. LightGBM has no separate base score (boost_from_average folds it into the
first trees), which the check against the model's raw score confirms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError
from .classic import Plan, unsupported
from .trees import Tree, TreeEnsemble

SUPPORTED = ("lightgbm.Booster", "LGBMClassifier", "LGBMRegressor")

IDENTITY_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile", "mape", "lambdarank",
                       "rank_xendcg")
EXP_OBJECTIVES = ("poisson", "gamma", "tweedie")


def load_booster(path: Path):
    import lightgbm

    try:
        return lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as e:
        first = (str(e).strip().splitlines() or ["?"])[0][:200]
        raise UsageError(f"{path} is not a LightGBM model: {first}") from None


def _booster(model):
    import lightgbm

    if isinstance(model, lightgbm.Booster):
        return model, None
    try:
        return model.booster_, model
    except Exception:  # LightGBM raises its own error type for an unfitted estimator
        raise unsupported(model, "is not fitted (call fit first)") from None


def _objective(model, objective: str, K: int) -> tuple[str, float]:
    """(output transform, factor on the raw score) for a LightGBM objective string."""
    name, *params = objective.split()
    sigmoid = next((float(p.split(":")[1]) for p in params if p.startswith("sigmoid:")), 1.0)
    if name == "binary":
        return "logistic", sigmoid
    if name in ("cross_entropy", "xentropy"):
        return "logistic", 1.0
    if name == "multiclass":
        return "softmax", 1.0
    if name == "multiclassova":
        return "logistic", sigmoid
    if name in IDENTITY_OBJECTIVES:
        return "none", 1.0
    if name in EXP_OBJECTIVES:
        return "exp", 1.0
    raise unsupported(model, f"with objective {name!r} is not supported")


def _tree(model, structure: dict, column: int, K: int) -> Tree:
    """Flatten one dumped tree (nested dicts) into arrays, root first."""
    feature, threshold, left, right, values = [], [], [], [], []
    stack = [(structure, None, False)]
    while stack:
        node, parent, is_right = stack.pop()
        i = len(feature)
        if parent is not None:
            (right if is_right else left)[parent] = i
        value = np.zeros(K)
        left.append(-1)
        right.append(-1)
        if "leaf_value" in node:
            if node.get("leaf_coeff"):
                raise unsupported(model, "with linear trees is not supported")
            value[column] = node["leaf_value"]
            feature.append(-1)
            threshold.append(0.0)
        else:
            if node.get("decision_type", "<=") != "<=":
                raise unsupported(model, "with categorical splits is not supported (category sets are not thresholds)")
            if node.get("missing_type") == "Zero":
                raise unsupported(model, "trained with zero_as_missing is not supported (it sends 0 the default way)")
            feature.append(int(node["split_feature"]))
            threshold.append(float(node["threshold"]))
            stack.append((node["right_child"], i, True))
            stack.append((node["left_child"], i, False))
        values.append(value)
    return Tree(feature=feature, threshold=threshold, left=left, right=right, value=np.array(values))


def plan(model) -> Plan:
    booster, estimator = _booster(model)
    dump = booster.dump_model()
    K = int(dump["num_tree_per_iteration"])
    n_features = int(dump["max_feature_idx"]) + 1
    transform, factor = _objective(model, dump["objective"], K)
    trees = [_tree(model, t["tree_structure"], i % K, K) for i, t in enumerate(dump["tree_info"])]
    if not trees:
        raise unsupported(model, "has no trees")
    ensemble = TreeEnsemble(trees, n_features, np.zeros(K), transform)
    _check_raw(booster, ensemble)
    if dump.get("average_output"):
        # Random-forest mode: the raw score is the trees' sum, what it predicts from is its average.
        ensemble = ensemble.scaled(K / len(trees))
    if factor != 1.0:
        ensemble = ensemble.scaled(factor)
    objective = dump["objective"].split()[0]
    kind = f"LightGBM {type(model).__name__ if estimator is not None else 'Booster'} ({objective}, {len(trees)} trees)"
    classes = None
    if estimator is not None and hasattr(estimator, "classes_"):
        classes = [c.item() if hasattr(c, "item") else c for c in estimator.classes_]
    if transform == "softmax" or (transform == "logistic" and K > 1):
        out, task = "probabilities", "classification"
        meaning = f"probability of each class, in the order {classes}" if classes else \
            f"probability of each of the {K} classes"
    elif objective == "binary":
        out, task = "probability", "classification"
        meaning = f"probability of class {classes[-1]!r}" if classes else "probability of class 1"
    else:
        out, task, meaning = "prediction", "regression", f"the model's prediction ({objective})"

    def reference(X):
        return np.asarray(booster.predict(np.asarray(X, dtype=np.float64)), dtype=np.float64).reshape(len(X), -1)

    notes = [f"the sigmoid parameter ({factor:g}) is folded into the leaf values"] if factor != 1.0 else []
    return Plan(kind, ensemble, task, out, meaning, reference, "Booster.predict", classes=classes, notes=notes)


def _check_raw(booster, ensemble: TreeEnsemble) -> None:
    """The trees as read must give LightGBM's own raw score (no hidden base score, no unread feature)."""
    from .classic import CHECK_ATOL, CHECK_RTOL, probe_inputs

    X = probe_inputs(Plan("", ensemble, "", "", "", None, ""))[:64]
    want = np.asarray(booster.predict(X.astype(np.float64), raw_score=True)).reshape(len(X), -1)
    got = ensemble.raw(X)
    if np.any(np.abs(got - want) > CHECK_ATOL + CHECK_RTOL * np.abs(want)):
        raise unsupported(booster, "could not be read: its raw score is not the sum of the trees' leaves")
