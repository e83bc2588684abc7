"""credit_gbt: gradient-boosted trees for probability of default, compiled to tensor operations for ezkl.

Same borrowers and encoded features as `credit_risk` (its generator is reused). The model is a
scikit-learn `GradientBoostingClassifier`; its trees are rewritten as a fixed sequence of tensor ops
that tract and ezkl support (the "GEMM" formulation of tree inference), built directly with onnx.helper:

    x [B, F]
    -> Gather(node_feature)                [B, N]        the feature each internal node tests
    -> LessOrEqual(node_threshold), Cast   [B, N]        1.0 where the sample goes left (sklearn: x <= t)
    -> Reshape, MatMul(path)               [B, T, 1, L]  per tree: path[n, l] = +1 if leaf l lies under
                                                         node n's left child, -1 under its right child
    -> GreaterOrEqual(left_turns), Cast    [B, T, 1, L]  1.0 for the one leaf whose path matches
    -> Reshape, MatMul(leaf_value)         [B, 1]        sum of the reached leaves' values
    -> Add(init_score)                     [B, 1]        sklearn's decision_function
    -> Clip(+-LOGIT_BOUND), Sigmoid        [B, 1]        probability of default

Exact in the circuit: after the comparison every step is integer arithmetic on 0/1 values and small
integers, which ezkl's fixed point represents exactly. The comparison is exact too: circuit inputs are
multiples of 1/32 (credit_risk's encoding) and sklearn's thresholds are midpoints of training values, i.e.
multiples of 1/64, both represented exactly at any scale >= 6, and ezkl compares integer representations.
What rounds is the leaf values (2**-(param_scale + 1) per tree at worst) and the sigmoid's lookup.

Two ezkl-specific choices:
- A leaf is reached when its path score reaches its number of left turns (the score can never exceed
  it), tested with GreaterOrEqual, not Equal: ezkl 23 labels Equal's 0/1 output with its input's scale
  (HybridOp::Equals keeps in_scales[0] where the other comparisons give 0), so every reached leaf read
  as 2**-scale, the leaf sum vanished and every prediction collapsed to sigmoid(init_score), the training
  prior: the "0.57 instead of 0.92" seen with a naive conversion.
- The raw score is clipped to +-7.6 like credit_risk's logit (PD floor 0.05%, cap 99.95%), so that the
  sigmoid's lookup input is bounded for every input; predictions inside the floor and cap are exactly
  `predict_proba`'s, and outside they differ by less than 0.0005.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.export.torch import INPUT_NAME, ONNX_OPSET, OUTPUT_NAME
from pipeline.export.trees import TreeEnsemble, from_arrays
from pipeline.export.trees import f32_at_or_below as float32_at_or_below  # noqa: F401 (this model's API)
from pipeline.zoo import ModelSpec, import_model_file

borrowers = import_model_file(Path(__file__).resolve().parent.parent / "credit_risk" / "model.py")

N_TREES = 30
MAX_DEPTH = 3
LEARNING_RATE = 0.2

SPEC = ModelSpec(
    name="credit_gbt",
    description=f"gradient-boosted trees ({N_TREES} trees, depth {MAX_DEPTH}): probability of default",
    task="classification",
    feature_names=borrowers.FEATURE_NAMES,
    sample_shape=borrowers.SPEC.sample_shape,
    output_names=("probability_of_default",),
    output_units="probability in [0, 1]",
    input_range=borrowers.SPEC.input_range,
    input_encoding=borrowers.SPEC.input_encoding,
    # Same lending use as credit_risk, same requirement.
    tolerance=dict(borrowers.SPEC.tolerance),
    n_train=borrowers.SPEC.n_train,
    n_test=borrowers.SPEC.n_test,
    decision_threshold=0.5,
)


def generate_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return borrowers.generate_data(n, seed)


def train(X: np.ndarray, y: np.ndarray, seed: int):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(
        n_estimators=N_TREES, max_depth=MAX_DEPTH, learning_rate=LEARNING_RATE, random_state=seed
    ).fit(X, y)


def predict(gbc, X: np.ndarray) -> np.ndarray:
    """`predict_proba`'s probability of default, with credit_risk's PD floor and cap (see the module doc)."""
    raw_score = gbc.decision_function(np.asarray(X, dtype=np.float32))
    clipped = np.clip(raw_score, -borrowers.LOGIT_BOUND, borrowers.LOGIT_BOUND)
    return (1.0 / (1.0 + np.exp(-clipped))).reshape(-1, 1)


def evaluate(gbc, X: np.ndarray, y: np.ndarray) -> dict:
    return borrowers.classification_metrics(predict(gbc, X)[:, 0], y)


def tree_tensors(gbc) -> dict[str, np.ndarray]:
    """The fitted ensemble as padded tensors: T trees, M internal nodes and L leaves per tree at most.

    Built by the tree builder `zkinfer export` uses (`pipeline.export.trees`), which writes "goes right"
    paths, and turned into this model's "goes left" form: the path signs flip and a leaf's left turns are
    its depth minus its right turns. Padding nodes test feature 0 against 0 and lie on no path; padding
    leaves need an impossible number of left turns (M + 1) and carry value 0, so neither changes the output.
    """
    ensemble = TreeEnsemble([from_arrays(e.tree_.children_left, e.tree_.children_right, e.tree_.feature,
                                         e.tree_.threshold, gbc.learning_rate * e.tree_.value[:, 0, :1])
                             for e in gbc.estimators_[:, 0]], gbc.n_features_in_, [0.0])
    t = ensemble.tensors()
    M = t["path"].shape[1]
    right_turns = t["right_turns_less_half"] + np.float32(0.5)
    depth = np.abs(t["path"]).sum(axis=1, keepdims=True)
    return {
        "node_feature": t["node_feature"],
        "node_threshold": t["node_threshold"],
        "path": np.float32(0.0) - t["path"],  # (0 - x, not -x: no negative zeros in the file)
        "left_turns": np.where(right_turns > M, M + 1, depth - right_turns).astype(np.float32),
        "leaf_value": t["leaf_value"],
        "init_score": np.array([init_score(gbc)], dtype=np.float32),
    }


def raw_score_bounds(gbc) -> tuple[float, float]:
    """Bounds of the raw score over all inputs: the init score plus each tree's smallest/largest leaf."""
    leaf_values = [
        gbc.learning_rate * est.tree_.value[est.tree_.children_left == -1, 0, 0]
        for est in gbc.estimators_[:, 0]
    ]
    init = init_score(gbc)
    return init + sum(v.min() for v in leaf_values), init + sum(v.max() for v in leaf_values)


def init_score(gbc) -> float:
    """The ensemble's constant raw score (log-odds of the prior), from public outputs only."""
    X0 = np.zeros((1, gbc.n_features_in_), dtype=np.float32)
    trees_sum = sum(est.predict(X0)[0] for est in gbc.estimators_[:, 0])
    return float(gbc.decision_function(X0)[0] - gbc.learning_rate * trees_sum)


def export_onnx(gbc, path, batch_size: int = 1, split_inputs: bool = False) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tensors = tree_tensors(gbc)
    n_trees, M, L = tensors["path"].shape
    n_features = SPEC.n_features
    initializers = [numpy_helper.from_array(value, name) for name, value in tensors.items()]
    initializers += [
        numpy_helper.from_array(np.array([batch_size, n_trees, 1, M], dtype=np.int64), "by_tree_shape"),
        numpy_helper.from_array(np.array([batch_size, n_trees * L], dtype=np.int64), "leaves_shape"),
        numpy_helper.from_array(np.array(-borrowers.LOGIT_BOUND, dtype=np.float32), "logit_min"),
        numpy_helper.from_array(np.array(borrowers.LOGIT_BOUND, dtype=np.float32), "logit_max"),
    ]
    nodes = []
    if split_inputs:
        input_names = [f"{INPUT_NAME}_{i}" for i in range(batch_size)]
        inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, n_features]) for n in input_names]
        nodes.append(helper.make_node("Concat", input_names, ["features"], axis=0))
    else:
        inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch_size, n_features])]
        nodes.append(helper.make_node("Identity", [INPUT_NAME], ["features"]))
    nodes += [
        helper.make_node("Gather", ["features", "node_feature"], ["tested_value"], axis=1),
        helper.make_node("LessOrEqual", ["tested_value", "node_threshold"], ["goes_left_bool"]),
        helper.make_node("Cast", ["goes_left_bool"], ["goes_left"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["goes_left", "by_tree_shape"], ["goes_left_by_tree"]),
        helper.make_node("MatMul", ["goes_left_by_tree", "path"], ["path_score"]),
        # path_score <= left_turns always, with equality only on the reached leaf: ">=" tests it, and
        # unlike Equal (see the module doc) ezkl gives its 0/1 output scale 0.
        helper.make_node("GreaterOrEqual", ["path_score", "left_turns"], ["reached_bool"]),
        helper.make_node("Cast", ["reached_bool"], ["reached"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["reached", "leaves_shape"], ["reached_flat"]),
        helper.make_node("MatMul", ["reached_flat", "leaf_value"], ["trees_sum"]),
        helper.make_node("Add", ["trees_sum", "init_score"], ["raw_score"]),
        helper.make_node("Clip", ["raw_score", "logit_min", "logit_max"], ["clipped_score"]),
        helper.make_node("Sigmoid", ["clipped_score"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(
        nodes,
        "credit_gbt",
        inputs,
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch_size, 1])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="zkinfer"
    )
    # IR version 8 is what opset 17 shipped with (and what the torch exporter writes); tract reads it.
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
