"""`ai.onnx.ml` operators -> standard ONNX operators, so skl2onnx / onnxmltools graphs build into circuits.

ezkl (tract) reads no operator of the `ai.onnx.ml` domain: a LogisticRegression converted by skl2onnx
was refused with a message about an unknown batch dimension. This rewrite replaces each of them by the
operators `zkinfer export` writes for the same model (`pipeline.export.trees`, `pipeline.export.builder`:
one implementation), producing the same tensors under the same names, so the graph's outputs keep their
order and sizes:

    Scaler                    (x - offset) * scale; folded into a following tree's thresholds or linear
                              model's weights when it reads a graph input (as are the constant Sub/Mul/Add/
                              Div chains, after a no-op Cast, that skl2onnx writes for MinMaxScaler), so
                              trees compare raw features and their thresholds go on the input grid
    LinearRegressor           MatMul + Add
    LinearClassifier          MatMul + Add, the post transform, labels by ArgMax (or score > 0 for one score)
    TreeEnsembleRegressor     the GEMM tree formulation (sum or average), base values
    TreeEnsembleClassifier    the same, then onnxruntime's binary / multiclass conventions for the
                              probabilities and the label
    Normalizer                L1 after probabilities that already sum to 1: identity; else L1/L2 by ops
    ZipMap                    identity: the probabilities as a [N, K] tensor (the reference reads a ZipMap's
                              maps as their values in key order, which is this order)
    ArrayFeatureExtractor     Gather along the last axis (constant indices)
    Binarizer                 Cast(x > threshold)
    Imputer                   identity (circuit inputs are never NaN) when it replaces NaN
    FeatureVectorizer         Concat

Conventions are onnxruntime's (the fidelity gate's reference runs the original graph with it), checked
against it in tests, including its binary-classifier quirks: a single score s gives probabilities
[1 - s, s] (no transform, non-negative weights), [-s, s] (no transform, mixed weights) or
[sigmoid(-s), sigmoid(s)], and label 1 when s > 0.5 (non-negative weights) or s > 0 (mixed).

Refused, one line each naming the operator and node: any other `ai.onnx.ml` operator, and what has no
circuit equivalent: string class labels that the graph outputs (a circuit outputs numbers; fit on integer
labels, drop the label output, or use `zkinfer export`, which outputs probabilities), PROBIT and
SOFTMAX_ZERO transforms, equality and set-membership splits, MIN/MAX aggregation.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ..errors import UnsupportedModelError
from ..export.builder import EXPORT_OPSET, Affine, Emitter, LinearModel, emit_transform
from ..export.trees import Tree, TreeEnsemble
from .base import Rewrite, RewriteContext
from .graph import Graph

ML_DOMAIN = "ai.onnx.ml"
TRANSFORMS = {"NONE": "none", "LOGISTIC": "logistic", "SOFTMAX": "softmax"}
EXPORT_HINT = "export the fitted model with `zkinfer export` instead"


class _Refused(Exception):
    """Why one node cannot be rewritten (turned into an UnsupportedModelError naming it)."""


def _attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [x.decode() for x in v]
        elif a.type == a.TENSOR:
            v = numpy_helper.to_array(v)
        out[a.name] = v
    return out


def _floats(attrs: dict, name: str) -> np.ndarray | None:
    """A float list attribute, or its `_as_tensor` (double) twin."""
    if attrs.get(f"{name}_as_tensor") is not None:
        return np.asarray(attrs[f"{name}_as_tensor"], dtype=np.float64).reshape(-1)
    v = attrs.get(name)
    return None if v is None else np.asarray(v, dtype=np.float32).astype(np.float64).reshape(-1)


def _transform(attrs: dict) -> str:
    pt = attrs.get("post_transform", "NONE")
    if pt not in TRANSFORMS:
        raise _Refused(f"post_transform {pt} has no exact circuit form (NONE, LOGISTIC and SOFTMAX do)")
    return TRANSFORMS[pt]


# ---- reading the input: the graph input behind constant per-feature affine steps


def _affine_source(graph: Graph, name: str) -> tuple[str, Affine] | None:
    """(graph input, its per-feature map) when `name` holds a * input + b feature by feature, through
    Identity and Add/Sub/Mul/Div with constant operands; None otherwise."""
    steps = []
    while name not in graph.input_names:
        node = graph.producer(name)
        if node is None:
            return None
        if node.op_type == "Identity" or (node.op_type == "Cast" and _float_to_float(graph, node)):
            name = node.input[0]
            continue
        if node.op_type not in ("Add", "Sub", "Mul", "Div") or len(node.input) != 2:
            return None
        k = 1 if graph.constant(node.input[1]) is not None else 0
        c = graph.constant(node.input[k])
        if c is None or graph.constant(node.input[1 - k]) is not None:
            return None
        c = np.asarray(c, dtype=np.float64).reshape(-1)
        if node.op_type == "Div" and (k == 0 or np.any(c == 0)):
            return None  # c / x is not affine in x
        steps.append((node.op_type, k, c))
        name = node.input[1 - k]
    n = _n_features(graph, name)
    if n is None or any(c.size not in (1, n) for _, _, c in steps):
        return None
    aff = Affine.identity(n)
    for op, k, c in reversed(steps):  # from the input outwards
        a, b = {"Add": (1.0, c), "Sub": (1.0, -c) if k == 1 else (-1.0, c), "Mul": (c, 0.0),
                "Div": (1.0 / c, 0.0)}[op]
        aff = aff.then(a, b)
    return name, aff


def _float_to_float(graph: Graph, cast) -> bool:
    """A Cast that changes nothing (skl2onnx writes Cast(to=float) of float inputs before scalers)."""
    to = next((a.i for a in cast.attribute if a.name == "to"), None)
    return to == TensorProto.FLOAT and graph.elem_type(cast.input[0]) == TensorProto.FLOAT


def _n_features(graph: Graph, name: str) -> int | None:
    """The last dimension of a tensor, where the graph declares it (inputs have concrete shapes by now)."""
    for vi in (*graph.g.input, *graph.g.value_info, *graph.g.output):
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if dims and dims[-1].HasField("dim_value"):
                return int(dims[-1].dim_value)
    return None


def _width(graph: Graph, x: str, attrs: dict) -> int:
    """Features a tree ensemble reads: the input's width, or (undeclared) one past the largest feature id."""
    found = _affine_source(graph, x)
    return (found and _n_features(graph, found[0])) or _n_features(graph, x) or \
        1 + max(int(f) for f in attrs["nodes_featureids"])


def _fold_input(graph: Graph, x: str, body):
    """(the tensor to read, the body reading it): the graph input itself when `x` is an affine map of it
    that the body can absorb (trees: positive factors only), else `x` unchanged."""
    found = _affine_source(graph, x)
    if found is None or found[0] == x or len(found[1].a) != body.n_features:
        return x, body
    src, aff = found
    if isinstance(body, TreeEnsemble) and np.any(aff.a <= 0):
        return x, body
    return src, body.on_affine_input(aff)


# ---- trees


MODES = {"BRANCH_LEQ": (False, False), "BRANCH_LT": (True, False), "BRANCH_GTE": (True, True),
         "BRANCH_GT": (False, True)}  # mode -> (strict, true branch is the right one)


def _trees(attrs: dict, prefix: str, n_columns: int, column_of) -> list[Tree]:
    """Trees from the ml-opset-1/3 attributes; `prefix` is "class" or "target" for the leaf weights."""
    tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
    features = np.asarray(attrs["nodes_featureids"], dtype=np.int64)
    values = _floats(attrs, "nodes_values")
    modes = attrs["nodes_modes"]
    true_ids = np.asarray(attrs["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(attrs["nodes_falsenodeids"], dtype=np.int64)
    w_tree = np.asarray(attrs[f"{prefix}_treeids"], dtype=np.int64)
    w_node = np.asarray(attrs[f"{prefix}_nodeids"], dtype=np.int64)
    w_id = np.asarray(attrs[f"{prefix}_ids"], dtype=np.int64)
    weights = _floats(attrs, f"{prefix}_weights")
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
                raise _Refused(f"split mode {mode} (equality or set membership) is not a threshold")
            i += 1
        feature, threshold, left, right, strict = (list(col) for col in zip(*rows_out, strict=True))
        trees.append(Tree(feature, threshold, left, right, np.array(value), strict))
    return trees


def _tree_regressor(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    agg = attrs.get("aggregate_function", "SUM")
    if agg not in ("SUM", "AVERAGE"):
        raise _Refused(f"aggregate_function {agg} is not supported (SUM and AVERAGE are)")
    K = int(attrs.get("n_targets", 1))
    trees = _trees(attrs, "target", K, lambda c: c)
    if agg == "AVERAGE":
        trees = [Tree(t.feature, t.threshold, t.left, t.right, t.value / len(trees), t.strict) for t in trees]
    base = _floats(attrs, "base_values")
    x = node.input[0]
    n = _width(graph, x, attrs)
    body = TreeEnsemble(trees, n, base if base is not None and len(base) else np.zeros(K), _transform(attrs))
    x, body = _fold_input(graph, x, body)
    body.emit(em, x, node.output[0])
    return [f"{node.op_type} {node.name or node.output[0]!r} ({len(trees)} trees, {agg.lower()}) -> tree tensors"]


def _labels(attrs: dict, node) -> list[int]:
    if attrs.get("classlabels_strings"):
        raise _Refused("outputs string class labels (classlabels_strings) and a circuit outputs numbers only: "
                       "fit the model on integer labels or drop the label output")
    return [int(v) for v in attrs.get("classlabels_int64s", attrs.get("classlabels_ints", []))]


def _emit_label(em: Emitter, index_i64: str, labels: list[int], output: str) -> None:
    """The class label [N] from a class index [N] (int64)."""
    if labels == list(range(len(labels))):
        em.op("Identity", [index_i64], "label", output)
    else:
        em.op("Gather", [em.const(labels, "class_labels", np.int64), index_i64], "label", output, axis=0)


def _binary_outputs(em: Emitter, score: str, transform: str, negative: str, labels: list[int], threshold: float,
                    outputs) -> None:
    """One score s [N, 1] -> onnxruntime's binary outputs: label (s > threshold) and [p0, p1], with
    p1 = transform(s) and p0 = 1 - p1, or -s (`negative` "negate")."""
    label_out, scores_out = outputs
    if label_out:
        above = em.op("Greater", [score, em.const(np.float32(threshold), "label_threshold")], "above")
        index = em.op("Cast", [above], "above_i64", to=TensorProto.INT64)
        index = em.op("Reshape", [index, em.const([-1], "flat", np.int64)], "class_index")
        _emit_label(em, index, labels, label_out)
    if scores_out:
        p1 = {"none": lambda: score, "logistic": lambda: em.op("Sigmoid", [score], "p1")}[transform]()
        if negative == "negate":
            p0 = em.op("Neg", [p1], "p0")
        else:
            p0 = em.op("Sub", [em.const(np.float32(1.0), "one"), p1], "p0")
        em.op("Concat", [p0, p1], "binary_scores", scores_out, axis=1)


def _multiclass_outputs(em: Emitter, raw: str, transform: str, labels: list[int], outputs) -> None:
    label_out, scores_out = outputs
    if label_out:
        index = em.op("ArgMax", [raw], "class_index", axis=1, keepdims=0)
        _emit_label(em, index, labels, label_out)
    if scores_out:
        emit_transform(em, raw, transform, scores_out)


def _used(graph: Graph, name: str) -> bool:
    return bool(name) and (graph.is_graph_output(name) or bool(graph.consumers(name)))


def _classifier_outputs(graph: Graph, node) -> tuple[str | None, str | None]:
    return tuple(o if _used(graph, o) else None for o in (list(node.output) + ["", ""])[:2])


def _tree_classifier(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    outputs = _classifier_outputs(graph, node)
    labels = _labels(attrs, node) if outputs[0] else [0, 1]
    class_ids = sorted(set(int(c) for c in attrs["class_ids"]))
    x = node.input[0]
    n = _width(graph, x, attrs)
    transform = _transform(attrs)
    base = _floats(attrs, "base_values")
    n_labels = max(len(labels), 1 + max(class_ids))
    if n_labels == 2:
        if class_ids != [0]:
            raise _Refused("a binary classifier with weights for both classes (onnxruntime's own outputs for "
                           "it are inconsistent)")
        if transform == "softmax":
            raise _Refused("SOFTMAX over a single binary score is not supported")
        weights = _floats(attrs, "class_weights")
        positive = bool(np.all(weights >= 0))
        body = TreeEnsemble(_trees(attrs, "class", 1, lambda c: 0), n,
                            base[:1] if base is not None and len(base) else np.zeros(1))
        x, body = _fold_input(graph, x, body)
        score = body.emit_raw(em, x)
        negative = "negate" if transform == "none" and not positive else "one_minus"
        _binary_outputs(em, score, transform, negative, labels, 0.5 if positive else 0.0, outputs)
        kind = "binary"
    else:
        body = TreeEnsemble(_trees(attrs, "class", n_labels, lambda c: c), n,
                            base if base is not None and len(base) == n_labels else np.zeros(n_labels))
        x, body = _fold_input(graph, x, body)
        _multiclass_outputs(em, body.emit_raw(em, x), transform, labels, outputs)
        kind = f"{n_labels} classes"
    return [f"TreeEnsembleClassifier {node.name or node.output[0]!r} ({len(body.trees)} trees, {kind}) -> "
            "tree tensors"]


# ---- linear models, scalers and the rest


def _linear_body(graph: Graph, node, attrs: dict, n_targets_default: int | None = None):
    coef = np.asarray(attrs["coefficients"], dtype=np.float32).astype(np.float64)
    intercepts = _floats(attrs, "intercepts")
    k = int(attrs.get("targets", n_targets_default or (len(intercepts) if intercepts is not None else 1)))
    weights = coef.reshape(k, -1).T
    bias = intercepts if intercepts is not None and len(intercepts) else np.zeros(k)
    x = node.input[0]
    return _fold_input(graph, x, LinearModel(weights, bias))


def _linear_regressor(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    x, body = _linear_body(graph, node, attrs)
    body.transform = _transform(attrs)
    body.emit(em, x, node.output[0])
    return [f"LinearRegressor {node.name or node.output[0]!r} -> MatMul + Add"]


def _linear_classifier(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    outputs = _classifier_outputs(graph, node)
    labels = _labels(attrs, node) if outputs[0] else []
    intercepts = _floats(attrs, "intercepts")
    x, body = _linear_body(graph, node, attrs, len(intercepts))
    transform = _transform(attrs)
    raw = body.emit_raw(em, x)
    if body.n_outputs == 1:
        if len(labels) != 2 and outputs[0]:
            raise _Refused("one score needs exactly two class labels")
        if transform == "softmax":
            raise _Refused("SOFTMAX over a single score is not supported")
        _binary_outputs(em, raw, transform, "one_minus", labels or [0, 1], 0.0, outputs)
    else:
        _multiclass_outputs(em, raw, transform, labels, outputs)
    return [f"LinearClassifier {node.name or node.output[0]!r} ({body.n_outputs} scores) -> MatMul + Add"]


def _scaler(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    offset = np.asarray(attrs.get("offset", [0.0]), dtype=np.float32)
    scale = np.asarray(attrs.get("scale", [1.0]), dtype=np.float32)
    centered = em.op("Sub", [node.input[0], em.const(offset, "scaler_offset")], "scaler_centered")
    em.op("Mul", [centered, em.const(scale, "scaler_scale")], "scaler", node.output[0])
    return [f"Scaler {node.name or node.output[0]!r} -> (x - offset) * scale"]


def _normalizer(graph: Graph, node, em: Emitter, attrs: dict, stochastic: set) -> list[str]:
    norm = attrs.get("norm", "MAX")
    x = node.input[0]
    if norm == "L1" and x in stochastic:
        em.op("Identity", [x], "normalized", node.output[0])
        stochastic.add(node.output[0])
        return [f"Normalizer L1 {node.name or node.output[0]!r} -> identity (its input rows already sum to 1)"]
    if norm not in ("L1", "L2"):
        raise _Refused(f"norm {norm} is not supported (L1 and L2 are)")
    n = _n_features(graph, x)
    if not n:
        raise _Refused("the input's feature count is unknown")
    ones = em.const(np.ones((n, 1)), "ones")
    if norm == "L1":
        total = em.op("MatMul", [em.op("Abs", [x], "abs"), ones], "l1")
    else:
        total = em.op("Sqrt", [em.op("MatMul", [em.op("Mul", [x, x], "square"), ones], "sum_sq")], "l2")
    em.op("Mul", [x, em.op("Reciprocal", [total], "inverse_norm")], "normalized", node.output[0])
    return [f"Normalizer {norm} {node.name or node.output[0]!r} -> x / norm"]


def _zipmap(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    keys = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings") or []
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    if order == list(range(len(keys))):
        em.op("Identity", [node.input[0]], "zipmap", node.output[0])
    else:  # the reference reads each map's values in key order
        em.op("Gather", [node.input[0], em.const(order, "zipmap_order", np.int64)], "zipmap", node.output[0], axis=1)
    _as_float_tensor(graph, node.output[0])
    return [f"ZipMap {node.name or node.output[0]!r} -> the probabilities as a tensor"]


def _as_float_tensor(graph: Graph, name: str) -> None:
    for vi in graph.g.output:
        if vi.name == name:
            vi.type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, None))


def _array_feature_extractor(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    idx = graph.constant(node.input[1])
    if idx is None:
        raise _Refused("indices that are not constant")
    em.op("Gather", [node.input[0], em.const(np.asarray(idx).reshape(-1), "columns", np.int64)], "columns",
          node.output[0], axis=1)
    return [f"ArrayFeatureExtractor {node.name or node.output[0]!r} -> Gather"]


def _binarizer(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    above = em.op("Greater", [node.input[0], em.const(np.float32(attrs.get("threshold", 0.0)), "threshold")], "bin")
    em.op("Cast", [above], "binarized", node.output[0], to=TensorProto.FLOAT)
    return [f"Binarizer {node.name or node.output[0]!r} -> Cast(x > threshold)"]


def _imputer(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    replaced = attrs.get("replaced_value_float", float("nan"))
    if not np.isnan(replaced):
        raise _Refused(f"replacing {replaced} (not NaN) is not supported")
    em.op("Identity", [node.input[0]], "imputed", node.output[0])
    return [f"Imputer {node.name or node.output[0]!r} -> identity (circuit inputs are never NaN)"]


def _feature_vectorizer(graph: Graph, node, em: Emitter, attrs: dict) -> list[str]:
    em.op("Concat", list(node.input), "features", node.output[0], axis=1)
    return [f"FeatureVectorizer {node.name or node.output[0]!r} -> Concat"]


HANDLERS = {
    "Scaler": _scaler, "LinearRegressor": _linear_regressor, "LinearClassifier": _linear_classifier,
    "TreeEnsembleRegressor": _tree_regressor, "TreeEnsembleClassifier": _tree_classifier,
    "ZipMap": _zipmap, "ArrayFeatureExtractor": _array_feature_extractor, "Binarizer": _binarizer,
    "Imputer": _imputer, "FeatureVectorizer": _feature_vectorizer,
}
SUPPORTED = (*HANDLERS, "Normalizer")


def _rows_sum_to_one(node, attrs: dict) -> set[str]:
    """Outputs of classifiers whose probability rows sum to 1 (so an L1 Normalizer after them is identity)."""
    if node.op_type not in ("LinearClassifier", "TreeEnsembleClassifier") or len(node.output) < 2:
        return set()
    if attrs.get("post_transform", "NONE") == "SOFTMAX":
        return {node.output[1]}
    return set()


def _declare_shapes(graph: Graph) -> None:
    """Intermediate shapes from ONNX's shape inference (it knows the ai.onnx.ml schemas), for the feature
    counts the rewrite needs; `prepare` drops intermediate annotations afterwards."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(graph.model, strict_mode=False)
    except Exception:  # inference is a hint: without it, counts come from the inputs and attributes
        return
    known = {vi.name for vi in graph.g.value_info}
    graph.g.value_info.extend(vi for vi in inferred.graph.value_info if vi.name not in known)


def _apply(graph: Graph, ctx: RewriteContext) -> list[str]:
    ml = [n for n in graph.g.node if n.domain == ML_DOMAIN]
    if not ml:
        return []
    for node in ml:
        if node.op_type not in SUPPORTED:
            raise UnsupportedModelError(
                f"{ML_DOMAIN} operator {node.op_type} at node {node.name or node.output[0]!r} has no circuit "
                f"form (zkinfer rewrites {', '.join(SUPPORTED)}); {EXPORT_HINT}")
    _declare_shapes(graph)
    notes, stochastic = [], set()
    for node in ml:
        attrs = _attrs(node)
        em = Emitter(graph.fresh)
        try:
            if node.op_type == "Normalizer":
                notes += _normalizer(graph, node, em, attrs, stochastic)
            else:
                notes += HANDLERS[node.op_type](graph, node, em, attrs)
        except _Refused as why:
            raise UnsupportedModelError(f"{ML_DOMAIN} operator {node.op_type} at node "
                                        f"{node.name or node.output[0]!r}: {why}; {EXPORT_HINT}") from None
        stochastic |= _rows_sum_to_one(node, attrs)
        graph.g.initializer.extend(em.initializers)
        graph.replace_node(node, em.nodes)
    graph.remove_unused()
    keep = [o for o in graph.model.opset_import if o.domain != ML_DOMAIN]
    if not any(o.domain in ("", "ai.onnx") for o in keep):
        # onnxmltools' XGBoost graphs import only ai.onnx.ml; the standard operators now need their opset.
        keep.append(helper.make_opsetid("", EXPORT_OPSET))
    del graph.model.opset_import[:]
    graph.model.opset_import.extend(keep)
    return notes


ONNXML_TO_STANDARD = Rewrite(
    name="onnxml-to-standard",
    works_around="ezkl reads no ai.onnx.ml operator (skl2onnx and onnxmltools write them for every classic model)",
    apply=_apply,
)
