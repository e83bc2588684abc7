"""TreeEnsembleRegressor and TreeEnsembleClassifier -> the GEMM tree tensors `zkinfer export` writes."""

from __future__ import annotations

import numpy as np

from ...export.builder import Emitter
from ...export.trees import Tree, TreeEnsemble
from ..graph import Graph
from .attributes import Refused, floats, post_transform
from .inputs import affine_source, fold_input, n_features
from .outputs import binary_outputs, class_labels, classifier_outputs, multiclass_outputs

MODES = {"BRANCH_LEQ": (False, False), "BRANCH_LT": (True, False), "BRANCH_GTE": (True, True),
         "BRANCH_GT": (False, True)}  # mode -> (strict, true branch is the right one)


def _trees(attrs: dict, prefix: str, n_columns: int, column_of) -> list[Tree]:
    """Trees from the ml-opset-1/3 attributes; `prefix` is "class" or "target" for the leaf weights."""
    tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
    features = np.asarray(attrs["nodes_featureids"], dtype=np.int64)
    values = floats(attrs, "nodes_values")
    modes = attrs["nodes_modes"]
    true_ids = np.asarray(attrs["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(attrs["nodes_falsenodeids"], dtype=np.int64)
    w_tree = np.asarray(attrs[f"{prefix}_treeids"], dtype=np.int64)
    w_node = np.asarray(attrs[f"{prefix}_nodeids"], dtype=np.int64)
    w_id = np.asarray(attrs[f"{prefix}_ids"], dtype=np.int64)
    weights = floats(attrs, f"{prefix}_weights")
    trees = []
    for tid in sorted(set(tree_ids.tolist())):
        rows = np.flatnonzero(tree_ids == tid)
        index = {int(node_ids[r]): r for r in rows}
        children = {int(c) for r in rows if modes[r] != "LEAF" for c in (true_ids[r], false_ids[r])}
        root = next(int(node_ids[r]) for r in rows if int(node_ids[r]) not in children)
        order, new = [root], {root: 0}
        leaf_value = {}
        for r in np.flatnonzero(w_tree == tid):
            v = leaf_value.setdefault(int(w_node[r]), np.zeros(n_columns))
            v[column_of(int(w_id[r]))] += weights[r]
        # Nodes renumbered breadth-first from the root (index 0), as `trees.Tree` wants them.
        rows_out = []  # (feature, threshold, left, right, strict) per node
        value = []
        i = 0
        while i < len(order):
            r = index[order[i]]
            mode = modes[r]
            value.append(leaf_value.get(order[i], np.zeros(n_columns)))
            if mode == "LEAF":
                rows_out.append((-1, 0.0, -1, -1, False))
            elif mode in MODES:
                is_strict, true_right = MODES[mode]
                kids = []
                for c in (false_ids[r], true_ids[r]) if true_right else (true_ids[r], false_ids[r]):
                    c = int(c)
                    if c not in new:
                        new[c] = len(order)
                        order.append(c)
                    kids.append(new[c])
                rows_out.append((int(features[r]), float(values[r]), kids[0], kids[1], is_strict))
            else:
                raise Refused(f"split mode {mode} (equality or set membership) is not a threshold")
            i += 1
        feature, threshold, left, right, strict = (list(col) for col in zip(*rows_out, strict=True))
        trees.append(Tree(feature, threshold, left, right, np.array(value), strict))
    return trees


def _width(graph: Graph, x: str, attrs: dict) -> int:
    """Features a tree ensemble reads: the input's width, or (undeclared) one past the largest feature id."""
    found = affine_source(graph, x)
    return (found and n_features(graph, found[0])) or n_features(graph, x) or \
        1 + max(int(f) for f in attrs["nodes_featureids"])


def tree_regressor(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    agg = attrs.get("aggregate_function", "SUM")
    if agg not in ("SUM", "AVERAGE"):
        raise Refused(f"aggregate_function {agg} is not supported (SUM and AVERAGE are)")
    K = int(attrs.get("n_targets", 1))
    trees = _trees(attrs, "target", K, lambda c: c)
    if agg == "AVERAGE":
        trees = [Tree(t.feature, t.threshold, t.left, t.right, t.value / len(trees), t.strict) for t in trees]
    base = floats(attrs, "base_values")
    x = node.input[0]
    n = _width(graph, x, attrs)
    body = TreeEnsemble(trees, n, base if base is not None and len(base) else np.zeros(K), post_transform(attrs))
    x, body = fold_input(graph, x, body)
    body.emit(em, x, node.output[0])
    return [f"{node.op_type} {node.name or node.output[0]!r} ({len(trees)} trees, {agg.lower()}) -> tree tensors"]


def tree_classifier(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    outputs = classifier_outputs(graph, node)
    labels = class_labels(attrs, node) if outputs[0] else [0, 1]
    class_ids = sorted(set(int(c) for c in attrs["class_ids"]))
    x = node.input[0]
    n = _width(graph, x, attrs)
    transform = post_transform(attrs)
    base = floats(attrs, "base_values")
    n_labels = max(len(labels), 1 + max(class_ids))
    if n_labels == 2:
        if class_ids != [0]:
            raise Refused("a binary classifier with weights for both classes (onnxruntime's own outputs for "
                          "it are inconsistent)")
        if transform == "softmax":
            raise Refused("SOFTMAX over a single binary score is not supported")
        weights = floats(attrs, "class_weights")
        positive = bool(np.all(weights >= 0))
        body = TreeEnsemble(_trees(attrs, "class", 1, lambda c: 0), n,
                            base[:1] if base is not None and len(base) else np.zeros(1))
        x, body = fold_input(graph, x, body)
        score = body.emit_raw(em, x)
        negative = "negate" if transform == "none" and not positive else "one_minus"
        binary_outputs(em, score, transform, negative, labels, 0.5 if positive else 0.0, outputs)
        kind = "binary"
    else:
        body = TreeEnsemble(_trees(attrs, "class", n_labels, lambda c: c), n,
                            base if base is not None and len(base) == n_labels else np.zeros(n_labels))
        x, body = fold_input(graph, x, body)
        multiclass_outputs(em, body.emit_raw(em, x), transform, labels, outputs)
        kind = f"{n_labels} classes"
    return [f"TreeEnsembleClassifier {node.name or node.output[0]!r} ({len(body.trees)} trees, {kind}) -> "
            "tree tensors"]
