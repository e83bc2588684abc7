"""Fitted scikit-learn estimators and pipelines -> `classic.Plan` (a TreeEnsemble or a LinearModel).

A Pipeline may start with scalers (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, or
"passthrough"); they are per-feature affine maps, folded into the final estimator: into a linear model's
weights, or into a tree's thresholds (t -> (t - b) / a), so the circuit compares the raw feature.
"""

from __future__ import annotations

import numpy as np

from .builder import Affine, LinearModel
from .classic import Plan, unsupported
from .trees import TreeEnsemble, from_arrays

SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")
LINEAR_REGRESSORS = ("LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
                     "LinearSVR", "SGDRegressor", "HuberRegressor", "BayesianRidge", "ARDRegression")
PROBABILISTIC_LINEAR = ("LogisticRegression", "LogisticRegressionCV")
MARGIN_LINEAR = ("LinearSVC", "RidgeClassifier", "RidgeClassifierCV", "SGDClassifier", "Perceptron")
SINGLE_TREES = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor")
FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor")
BOOSTING = ("GradientBoostingClassifier", "GradientBoostingRegressor", "HistGradientBoostingClassifier",
            "HistGradientBoostingRegressor")
SUPPORTED = ("Pipeline", *SCALERS, *LINEAR_REGRESSORS, *PROBABILISTIC_LINEAR, *MARGIN_LINEAR, *SINGLE_TREES,
             *FORESTS, *BOOSTING)


def _name(est) -> str:
    return type(est).__name__


def _fitted(est) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
    except NotFittedError:
        raise unsupported(est, "is not fitted (call fit first)") from None


def scaler_affine(step, n: int) -> Affine:
    name = _name(step)
    if name == "StandardScaler":
        a = 1.0 / step.scale_ if step.scale_ is not None else np.ones(n)
        b = -(step.mean_ if step.mean_ is not None else np.zeros(n)) * a
        return Affine(a, b)
    if name == "MinMaxScaler":
        if step.clip:
            raise unsupported(step, "with clip=True is not supported (clipping is not a linear map)")
        return Affine(np.asarray(step.scale_, dtype=np.float64), np.asarray(step.min_, dtype=np.float64))
    if name == "MaxAbsScaler":
        return Affine(1.0 / step.scale_, np.zeros(n))
    if name == "RobustScaler":
        a = 1.0 / step.scale_ if step.scale_ is not None else np.ones(n)
        b = -(step.center_ if step.center_ is not None else np.zeros(n)) * a
        return Affine(a, b)
    raise unsupported(step, "is not supported as a pipeline step (scalers only before the estimator)")


def plan(est) -> Plan:
    _fitted(est)
    steps = [s for _, s in est.steps] if _name(est) == "Pipeline" else [est]
    steps = [s for s in steps if s is not None and not (isinstance(s, str) and s == "passthrough")]
    if not steps:
        raise unsupported(est, "has no estimator")
    final, prefix = steps[-1], steps[:-1]
    n = int(getattr(est, "n_features_in_", None) or final.n_features_in_)
    affine = Affine.identity(n)
    for step in prefix:
        s = scaler_affine(step, n)
        affine = affine.then(s.a, s.b)
    if _name(final) in SCALERS:
        raise unsupported(final, "is a scaler: export the pipeline with its estimator")
    if type(final).__module__.split(".")[0] in ("xgboost", "lightgbm"):
        # An XGBoost / LightGBM estimator at the end of a scikit-learn pipeline: its own converter, and as
        # reference what it predicts from the pipeline's scaled features.
        from .classic import plan_for

        p = plan_for(final)
        inner = p.reference
        p.reference = (lambda X: inner(est[:-1].transform(X))) if prefix else inner
    else:
        p = _plan_final(final, n)
        reference = p.reference
        p.reference = lambda X: reference(est, X)
    p.body = p.body.on_affine_input(affine)
    p.exact_thresholds = affine.is_identity
    if prefix:
        p.kind = f"scikit-learn Pipeline({', '.join(_name(s) for s in steps)})"
        p.notes.append(f"scalers folded into the {'thresholds' if hasattr(p.body, 'trees') else 'weights'}: "
                       "the circuit reads the raw features")
    return p


def _classes(est) -> list:
    return [c.item() if hasattr(c, "item") else c for c in est.classes_]


def _class_outputs(est, n_classes: int) -> tuple[str, str, str]:
    """(output name, meaning, reference name) for a classifier with probabilities."""
    classes = _classes(est)
    if n_classes == 2:
        return "probability", f"probability of class {classes[1]!r}", "predict_proba(X)[:, 1]"
    return "probabilities", f"probability of each class, in the order {classes}", "predict_proba(X)"


def _proba(est, X, binary: bool):
    p = est.predict_proba(X)
    return p[:, 1:] if binary else p


def _plan_final(est, n: int) -> Plan:
    name = _name(est)
    if name in LINEAR_REGRESSORS:
        coef = np.atleast_2d(est.coef_)
        body = LinearModel(coef.T, np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64), coef.shape[0]))
        return Plan(f"scikit-learn {name}", body, "regression", "prediction", "the model's prediction",
                    lambda e, X: np.asarray(e.predict(X)).reshape(len(X), -1), "predict(X)")
    if name in PROBABILISTIC_LINEAR or name in MARGIN_LINEAR:
        return _linear_classifier(est, name)
    if name in SINGLE_TREES or name in FORESTS:
        return _forest(est, name)
    if name in ("GradientBoostingClassifier", "GradientBoostingRegressor"):
        return _gradient_boosting(est, name)
    if name in ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"):
        return _hist_gradient_boosting(est, name)
    raise unsupported(est)


def _linear_classifier(est, name: str) -> Plan:
    coef, classes = np.atleast_2d(est.coef_), _classes(est)
    intercept = np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64), coef.shape[0])
    binary = coef.shape[0] == 1
    if name in PROBABILISTIC_LINEAR:
        body = LinearModel(coef.T, intercept, "logistic" if binary else "softmax")
        out, meaning, ref_name = _class_outputs(est, 2 if binary else len(classes))
        return Plan(f"scikit-learn {name}", body, "classification", out, meaning,
                    lambda e, X: _proba(e, X, binary), ref_name, classes=classes)
    body = LinearModel(coef.T, intercept)
    meaning = (f"decision function (> 0: class {classes[1]!r}, else {classes[0]!r})" if binary else
               f"decision function per class (the largest wins), in the order {classes}")
    return Plan(f"scikit-learn {name}", body, "classification", "decision", meaning,
                lambda e, X: np.asarray(e.decision_function(X)).reshape(len(X), -1), "decision_function(X)",
                classes=classes, notes=[f"{name} has no probabilities: the output is its decision function"])


def _tree_values(tree_, classifier: bool) -> np.ndarray:
    """Per node outputs: class fractions for a classifier tree, the prediction(s) for a regressor tree."""
    if classifier:
        if tree_.n_outputs != 1:
            raise ValueError("multi-output")
        v = tree_.value[:, 0, :]
        return v / np.maximum(v.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    return tree_.value[:, :, 0]


def _tree(tree_, values: np.ndarray):
    return from_arrays(tree_.children_left, tree_.children_right, tree_.feature, tree_.threshold, values)


def _forest(est, name: str) -> Plan:
    classifier = name.endswith("Classifier")
    members = [est] if name in SINGLE_TREES else list(est.estimators_)
    if getattr(est, "n_outputs_", 1) != 1 and classifier:
        raise unsupported(est, "with several outputs is not supported")
    values = [_tree_values(m.tree_, classifier) for m in members]
    binary = classifier and values[0].shape[1] == 2
    if binary:
        values = [v[:, 1:] for v in values]
    trees = [_tree(m.tree_, v / len(members)) for m, v in zip(members, values, strict=True)]
    body = TreeEnsemble(trees, est.n_features_in_, np.zeros(values[0].shape[1]))
    depth = max(m.tree_.max_depth for m in members)
    kind = f"scikit-learn {name} ({len(trees)} tree{'s' * (len(trees) > 1)}, depth <= {depth})"
    if classifier:
        out, meaning, ref_name = _class_outputs(est, 2 if binary else values[0].shape[1])
        return Plan(kind, body, "classification", out, meaning, lambda e, X: _proba(e, X, binary), ref_name,
                    classes=_classes(est))
    return Plan(kind, body, "regression", "prediction", "the model's prediction",
                lambda e, X: np.asarray(e.predict(X)).reshape(len(X), -1), "predict(X)")


def _constant_init(est, K: int) -> np.ndarray:
    """Gradient boosting's init raw score, from public outputs: raw(x) minus the trees' sum at x = 0."""
    init = est.init_
    if not (init == "zero" or type(init).__name__ in ("DummyClassifier", "DummyRegressor")):
        raise unsupported(est, f"with init={type(init).__name__} (not a constant) is not supported")
    X0 = np.zeros((1, est.n_features_in_), dtype=np.float32)
    raw = est._raw_predict(X0)[0]
    trees = np.array([[est.learning_rate * est.estimators_[i, k].predict(X0)[0] for k in range(K)]
                      for i in range(est.estimators_.shape[0])]).sum(axis=0)
    return raw - trees


def _gradient_boosting(est, name: str) -> Plan:
    K = est.estimators_.shape[1]
    trees = [_tree(est.estimators_[i, k].tree_,
                   np.eye(K)[k][None, :] * est.learning_rate * est.estimators_[i, k].tree_.value[:, 0, :1])
             for i in range(est.estimators_.shape[0]) for k in range(K)]
    kind = f"scikit-learn {name} ({est.estimators_.shape[0]} rounds, depth <= {est.max_depth})"
    base = _constant_init(est, K)
    if name == "GradientBoostingRegressor":
        body = TreeEnsemble(trees, est.n_features_in_, base)
        return Plan(kind, body, "regression", "prediction", "the model's prediction",
                    lambda e, X: np.asarray(e.predict(X)).reshape(len(X), -1), "predict(X)")
    binary = K == 1
    body = TreeEnsemble(trees, est.n_features_in_, base, "logistic" if binary else "softmax")
    if est.loss == "exponential":
        body = body.scaled(2.0)  # predict_proba = sigmoid(2 * raw) for the exponential loss
    out, meaning, ref_name = _class_outputs(est, 2 if binary else K)
    return Plan(kind, body, "classification", out, meaning, lambda e, X: _proba(e, X, binary), ref_name,
                classes=_classes(est))


HGB_LINKS = {"squared_error": "none", "absolute_error": "none", "quantile": "none", "gamma": "exp",
             "poisson": "exp"}


def _hist_gradient_boosting(est, name: str) -> Plan:
    if est.is_categorical_ is not None and np.any(est.is_categorical_):
        raise unsupported(est, "with categorical features is not supported (category sets are not thresholds)")
    K = est.n_trees_per_iteration_
    trees = []
    for iteration in est._predictors:
        for k, predictor in enumerate(iteration):
            nd = predictor.nodes
            leaf = nd["is_leaf"].astype(bool)
            values = np.zeros((len(nd), K))
            values[:, k] = np.where(leaf, nd["value"], 0.0)
            trees.append(from_arrays(np.where(leaf, -1, nd["left"].astype(np.int64)),
                                     np.where(leaf, -1, nd["right"].astype(np.int64)),
                                     nd["feature_idx"], nd["num_threshold"], values))
    base = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    kind = f"scikit-learn {name} ({len(est._predictors)} rounds, max depth {est.max_depth})"
    if name == "HistGradientBoostingRegressor":
        if est.loss not in HGB_LINKS:
            raise unsupported(est, f"with loss={est.loss!r} is not supported")
        body = TreeEnsemble(trees, est.n_features_in_, base, HGB_LINKS[est.loss])
        return Plan(kind, body, "regression", "prediction", "the model's prediction",
                    lambda e, X: np.asarray(e.predict(X)).reshape(len(X), -1), "predict(X)")
    binary = K == 1
    body = TreeEnsemble(trees, est.n_features_in_, base, "logistic" if binary else "softmax")
    out, meaning, ref_name = _class_outputs(est, 2 if binary else K)
    return Plan(kind, body, "classification", out, meaning, lambda e, X: _proba(e, X, binary), ref_name,
                classes=_classes(est))
