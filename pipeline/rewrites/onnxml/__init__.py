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

The rewrite's modules, each importing only those above it:

    attributes  a node's attributes (float lists, the post transform), `Refused`
    inputs      the graph input behind constant affine steps, folded into the model reading it
    outputs     classifier outputs: labels, binary and multiclass probabilities, ZipMap
    trees       TreeEnsembleRegressor, TreeEnsembleClassifier
    linear      LinearRegressor, LinearClassifier
    features    Scaler, Normalizer, ArrayFeatureExtractor, Binarizer, Imputer, FeatureVectorizer
"""

from __future__ import annotations

from onnx import helper

from ...errors import UnsupportedModelError
from ...export.builder import EXPORT_OPSET, Emitter
from ..base import Rewrite, RewriteContext
from ..graph import Graph
from .attributes import Refused, node_attrs
from .features import array_feature_extractor, binarizer, feature_vectorizer, imputer, normalizer, scaler
from .linear import linear_classifier, linear_regressor
from .outputs import zipmap
from .trees import tree_classifier, tree_regressor

ML_DOMAIN = "ai.onnx.ml"
EXPORT_HINT = "export the fitted model with `zkinfer export` instead"


HANDLERS = {
    "Scaler": scaler, "LinearRegressor": linear_regressor, "LinearClassifier": linear_classifier,
    "TreeEnsembleRegressor": tree_regressor, "TreeEnsembleClassifier": tree_classifier,
    "ZipMap": zipmap, "ArrayFeatureExtractor": array_feature_extractor, "Binarizer": binarizer,
    "Imputer": imputer, "FeatureVectorizer": feature_vectorizer,
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
        attrs = node_attrs(node)
        em = Emitter(graph.fresh)
        try:
            if node.op_type == "Normalizer":
                notes += normalizer(graph, node, em, attrs, stochastic)
            else:
                notes += HANDLERS[node.op_type](graph, node, em, attrs)
        except Refused as why:
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


__all__ = ["ONNXML_TO_STANDARD", "SUPPORTED"]
