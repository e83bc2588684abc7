"""Tree ensembles as tensor operations ezkl computes exactly: the one tree builder zkinfer has.

Every exporter (scikit-learn, XGBoost, LightGBM) and the `ai.onnx.ml` rewrite turn their trees into a
`TreeEnsemble` and call `emit`, which writes the "GEMM" formulation of tree inference (what
models/credit_gbt does by hand, generalized to regression, binary and multiclass, sums and averages):

    x [B, F]
    -> Gather(node_feature)                 [B, T*M]      the feature each internal node tests
    -> Greater(node_threshold), Cast        [B, T*M]      1.0 where the sample goes right
    -> Reshape, MatMul(path)                [B, T, 1, L]  per tree: path[n, l] = +1 if leaf l lies under
                                                          node n's right child, -1 under its left child
    -> Greater(right_turns - 1/2), Cast     [B, T, 1, L]  1.0 for the one leaf whose path matches
    -> Reshape, MatMul(leaf_value)          [B, K]        sum of the reached leaves' values per output
    -> Add(base)                            [B, K]        raw scores; then the output transform

T trees padded to M internal nodes and L leaves each. A leaf's path score reaches its number of right turns
only when every decision on its path agrees, and never exceeds it, so "score > turns - 1/2" finds it with a
comparison (ezkl gives `Equal` its input's scale; `Greater` gives 0/1 at scale 0).

What is exact in the circuit: every decision is an integer comparison of the input's fixed-point value
with the threshold (and `pipeline.rewrites.grid` puts each threshold on the input's grid once calibration
has chosen the scale, so the decision is exactly the model's on the quantized input); after it, all
arithmetic is on 0/1 values and small integers. What rounds: each leaf value and the base score, at the
parameter scale (at most 2^-(p+1) each, so T * 2^-(p+1) for a sum of T leaves), and the sigmoid, softmax
or exp lookup after the sum.

Thresholds: models compare float32 (scikit-learn trees, XGBoost) or float64 (LightGBM, histogram gradient
boosting) features with float32 or float64 thresholds, as "x <= t" or "x < t". Here every decision becomes
"go right when x > t32" with t32 a float32 chosen so that, for every float32 x, the answer is the model's
(`right_threshold`). The exported graph takes float32 features.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .builder import Affine, Emitter, ScoreModel

# Thresholds beyond this magnitude are clipped: no input the circuit can hold reaches them (a feature's
# fixed-point value must stay well inside ezkl's range), and clipping keeps their quantization finite.
THRESHOLD_LIMIT = float(2 ** 20)


def f32_at_or_below(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= each value: for every float32 x, x <= t exactly when x <= result."""
    t = np.asarray(t, dtype=np.float64)
    t32 = t.astype(np.float32)
    above = t32.astype(np.float64) > t
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def f32_below(t: np.ndarray) -> np.ndarray:
    """The largest float32 < each value: for every float32 x, x >= t exactly when x > result."""
    t = np.asarray(t, dtype=np.float64)
    t32 = f32_at_or_below(t)
    equal = t32.astype(np.float64) == t
    t32[equal] = np.nextafter(t32[equal], np.float32(-np.inf))
    return t32


def right_threshold(threshold: np.ndarray, strict: np.ndarray) -> np.ndarray:
    """float32 r with "go right iff x > r" equal, on float32 x, to "go left iff x <= t" (strict False) or
    "go left iff x < t" (strict True)."""
    t = np.clip(np.asarray(threshold, dtype=np.float64), -THRESHOLD_LIMIT, THRESHOLD_LIMIT)
    return np.where(np.asarray(strict, dtype=bool), f32_below(t), f32_at_or_below(t)).astype(np.float32)


@dataclass
class Tree:
    """One binary tree, root at index 0. At internal node n the sample goes left when
    x[feature[n]] <= threshold[n] (or < when strict[n]), else right. Leaves have left == right == -1 and
    carry value[n] (one entry per raw-score column)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray  # [n_nodes, K]
    strict: np.ndarray | None = None

    def __post_init__(self):
        self.feature = np.asarray(self.feature, dtype=np.int64)
        self.threshold = np.asarray(self.threshold, dtype=np.float64)
        self.left = np.asarray(self.left, dtype=np.int64)
        self.right = np.asarray(self.right, dtype=np.int64)
        self.value = np.asarray(self.value, dtype=np.float64).reshape(len(self.left), -1)
        self.strict = (np.zeros(len(self.left), dtype=bool) if self.strict is None
                       else np.broadcast_to(np.asarray(self.strict, dtype=bool), self.left.shape).copy())

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0

    def right_thresholds(self) -> np.ndarray:
        return right_threshold(self.threshold, self.strict)

    def paths(self) -> dict[int, list[tuple[int, bool]]]:
        """leaf -> [(internal node, went right), ...] from the root down (only nodes reachable from it)."""
        out, stack = {}, [(0, [])]
        while stack:
            node, path = stack.pop()
            if self.left[node] < 0:
                out[node] = path
                continue
            stack.append((int(self.right[node]), path + [(node, True)]))
            stack.append((int(self.left[node]), path + [(node, False)]))
        return out

    def apply(self, X32: np.ndarray) -> np.ndarray:
        """The leaf each row reaches, by the same float32 rule the graph uses."""
        thr = self.right_thresholds()
        node = np.zeros(len(X32), dtype=np.int64)
        for _ in range(len(self.left)):
            inner = self.left[node] >= 0
            if not inner.any():
                break
            n = node[inner]
            go_right = X32[inner, self.feature[n]] > thr[n]
            node[inner] = np.where(go_right, self.right[n], self.left[n])
        return node


@dataclass
class TreeEnsemble(ScoreModel):
    """raw = base + sum over trees of the reached leaf's value; output = transform(raw).

    `transform` is one of `builder.TRANSFORMS`. Averaging ensembles (random forests) divide their leaf
    values by the number of trees when they are made; `scale` multiplies raw scores (e.g. LightGBM's
    sigmoid parameter) and is folded into the leaves too.
    """

    trees: list[Tree]
    n_features: int
    base: np.ndarray
    transform: str = "none"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.base = np.asarray(self.base, dtype=np.float64).reshape(-1)
        if not self.trees:
            raise ValueError("a tree ensemble needs at least one tree")
        k = {t.value.shape[1] for t in self.trees}
        if k != {len(self.base)}:
            raise ValueError(f"leaf values have {sorted(k)} columns but the base score has {len(self.base)}")

    @property
    def n_outputs(self) -> int:
        return len(self.base)

    def scaled(self, factor: float) -> TreeEnsemble:
        return replace(self, trees=[replace(t, value=t.value * factor) for t in self.trees], base=self.base * factor)

    def on_affine_input(self, affine: Affine) -> TreeEnsemble:
        """The same ensemble reading x where it read a * x + b (a > 0 per feature): thresholds move to
        (t - b) / a, the decisions stay the same (up to float rounding inside the original map)."""
        if affine.is_identity:
            return self
        if np.any(affine.a <= 0):
            raise ValueError("a feature map with a factor <= 0 cannot be folded into tree thresholds")
        trees = []
        for t in self.trees:
            f = np.where(t.feature >= 0, t.feature, 0)
            moved = np.where(t.feature >= 0, (t.threshold - affine.b[f]) / affine.a[f], t.threshold)
            trees.append(replace(t, threshold=moved))
        return replace(self, trees=trees)

    def raw(self, X) -> np.ndarray:
        X32 = np.asarray(X, dtype=np.float32).reshape(-1, self.n_features)
        out = np.tile(self.base, (len(X32), 1))
        for t in self.trees:
            out += t.value[t.apply(X32)]
        return out

    def tensors(self) -> dict[str, np.ndarray]:
        """The padded tensors of the module docstring."""
        paths = [t.paths() for t in self.trees]
        internal = [sorted({n for p in ps.values() for n, _ in p}) for ps in paths]
        leaves = [sorted(ps) for ps in paths]
        T, K = len(self.trees), self.n_outputs
        M = max(max(len(i) for i in internal), 1)
        L = max(len(lv) for lv in leaves)
        node_feature = np.zeros((T, M), dtype=np.int64)
        node_threshold = np.zeros((T, M), dtype=np.float32)
        path = np.zeros((T, M, L), dtype=np.float32)
        # Padding leaves need more right turns than any path has: never reached.
        right_turns = np.full((T, 1, L), M + 1, dtype=np.float32)
        leaf_value = np.zeros((T, L, K), dtype=np.float32)
        for i, tree in enumerate(self.trees):
            slot = {node: j for j, node in enumerate(internal[i])}
            thr = tree.right_thresholds()
            node_feature[i, : len(internal[i])] = tree.feature[internal[i]]
            node_threshold[i, : len(internal[i])] = thr[internal[i]]
            for j, leaf in enumerate(leaves[i]):
                turns = 0
                for node, went_right in paths[i][leaf]:
                    path[i, slot[node], j] = 1.0 if went_right else -1.0
                    turns += went_right
                right_turns[i, 0, j] = turns
                leaf_value[i, j] = tree.value[leaf]
        return {"node_feature": node_feature.reshape(-1), "node_threshold": node_threshold.reshape(-1),
                "path": path, "right_turns_less_half": right_turns - np.float32(0.5),
                "leaf_value": leaf_value.reshape(T * L, K), "base": self.base.astype(np.float32)}

    def emit_raw(self, em: Emitter, x: str) -> str:
        """Nodes computing the raw scores [B, K] from x [B, F]; returns the scores' name."""
        from onnx import TensorProto

        t = self.tensors()
        T, M, L = t["path"].shape
        tested = em.op("Gather", [x, em.const(t["node_feature"], "node_feature", np.int64)], "tested", axis=1)
        right = em.op("Greater", [tested, em.const(t["node_threshold"], "node_threshold")], "goes_right")
        right = em.op("Cast", [right], "goes_right_f", to=TensorProto.FLOAT)
        right = em.op("Reshape", [right, em.const([-1, T, 1, M], "by_tree_shape", np.int64)], "goes_right_by_tree")
        score = em.op("MatMul", [right, em.const(t["path"], "path")], "path_score")
        reached = em.op("Greater", [score, em.const(t["right_turns_less_half"], "right_turns_less_half")], "reached")
        reached = em.op("Cast", [reached], "reached_f", to=TensorProto.FLOAT)
        reached = em.op("Reshape", [reached, em.const([-1, T * L], "leaves_shape", np.int64)], "reached_flat")
        leaf_sum = em.op("MatMul", [reached, em.const(t["leaf_value"], "leaf_value")], "leaf_sum")
        return em.op("Add", [leaf_sum, em.const(t["base"], "base_score")], "raw_score")


def from_arrays(left, right, feature, threshold, value, strict=False) -> Tree:
    """A Tree from the usual array form (scikit-learn's `tree_`: -1 children at leaves)."""
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    leaf = left < 0
    return Tree(feature=np.where(leaf, -1, feature), threshold=np.where(leaf, 0.0, threshold),
                left=np.where(leaf, -1, left), right=np.where(leaf, -1, right), value=value, strict=strict)
