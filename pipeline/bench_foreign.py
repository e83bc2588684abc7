"""Benchmark section `models_in`: models zkinfer did not write, zkinfer against plain ezkl on the same ONNX.

For each kind of model the tests build (`tests/foreign_models.py`: hummingbird GEMM and tree-traversal
ensembles, a graph onnxruntime refuses, float64 and int64 inputs, symbolic dimensions, raw dollar
features), in one run: plain ezkl (`pipeline.plain_ezkl`: settings, calibrate "resources", compile,
setup, prove, verify) and `zkinfer circuit build` + prove + verify, the same calibration file and input.
Recorded: build and prove seconds of each and their ratio, zkinfer's fidelity, and whether plain ezkl's
proven outputs match the model (within the tolerance zkinfer's gate applied).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FOREIGN_MODELS = REPO / "tests" / "foreign_models.py"


def _kinds(helpers, d: Path) -> dict[str, Callable]:
    """kind -> a function making (onnx, calibration file, validation file or None, one input)."""
    def forest(strategy: str, classifier: bool = False):
        def make():
            from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

            X, y = helpers.tree_data()
            model = (GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y > 0)
                     if classifier else RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(X, y))
            name = f"{'gbt' if classifier else 'rf'}_{strategy}"
            onnx = helpers.hummingbird_onnx(model, X, d / f"{name}.onnx", strategy)
            return (onnx, helpers.write_data(d / f"{name}_cal.json", X[:32]),
                    helpers.write_data(d / f"{name}_val.json", X[200:232]), [X[210].tolist()])
        return make

    def simple(fn, data):
        def make():
            onnx = fn(d / f"{fn.__name__}.onnx")
            onnx = onnx[0] if isinstance(onnx, tuple) else onnx
            X = data()
            return (onnx, helpers.write_data(d / f"{fn.__name__}_cal.json", X[:32]),
                    helpers.write_data(d / f"{fn.__name__}_val.json", X[32:]), [X[40].tolist()])
        return make

    rng = np.random.default_rng(0)
    return {
        "hummingbird_gemm_random_forest": forest("gemm"),
        "hummingbird_gemm_gradient_boosting": forest("gemm", classifier=True),
        "hummingbird_tree_traversal_random_forest": forest("tree_trav"),
        "int8_gemm_tree_onnxruntime_refuses": simple(helpers.int8_gemm_tree,
                                                     lambda: rng.uniform(-1, 1, (48, 4))),
        "float64_input_classifier": simple(helpers.float64_linear_classifier, lambda: rng.normal(0, 1, (48, 6))),
        "int64_input": simple(helpers.int64_input_model, lambda: rng.integers(0, 20, (48, 5)).astype(float)),
        "symbolic_dims_two_outputs": simple(helpers.symbolic_dims_model, lambda: rng.uniform(-1, 1, (48, 4))),
        "raw_dollar_credit_mlp": simple(helpers.dollar_credit_mlp, lambda: helpers.dollar_data(48, 1)),
    }


def _reference_vector(onnx_path: Path, sample: list[list[float]]) -> np.ndarray:
    from .export import inspect
    from .prepare import resolve_dims
    from .reference import feeds, open_reference

    sig = inspect(onnx_path)
    f = feeds(sig, sample, resolve_dims(sig, None))
    return open_reference(onnx_path, sig, f).outputs(f)


def bench_models_in(circuits_dir: Path, models: list[str] | None = None, progress: Callable | None = None) -> list:
    from . import plain_ezkl
    from .build import BuildOptions, build_circuit
    from .errors import ZkinferError
    from .prove import Prover
    from .verify import verify_proof
    from .zoo import import_model_file

    helpers = import_model_file(FOREIGN_MODELS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="zkinfer-bench-models-in-") as tmp:
        d = Path(tmp)
        for kind, make in _kinds(helpers, d).items():
            if models and kind not in models:
                continue
            if progress:
                progress(f"[models_in] {kind}")
            onnx, cal, val, sample = make()
            ref = _reference_vector(onnx, sample)
            plain = plain_ezkl.run(onnx, cal, sample, d / f"{kind}_plain")
            row = {"kind": kind, "plain_ezkl": {k: v for k, v in plain.to_dict().items() if k != "outputs"}}
            t = time.perf_counter()
            try:
                built = build_circuit(onnx, cal, d / f"{kind}_zk", BuildOptions(), val, force=True)
            except ZkinferError as e:
                row["zkinfer"] = {"error": e.message}
                rows.append(row)
                continue
            build_s = time.perf_counter() - t
            m = built.manifest
            t = time.perf_counter()
            Prover(m.dir).prove(sample, d / f"{kind}.proof.json")
            prove_s = time.perf_counter() - t
            result = verify_proof(m.dir, d / f"{kind}.proof.json")
            proven = np.concatenate([np.asarray(o, dtype=float) for o in result.outputs])
            tol = m.data["fidelity"]["tolerance"]["max_abs_error"]
            row["zkinfer"] = {
                "build_s": round(build_s, 2), "prove_s": round(prove_s, 2), "verified": result.valid,
                "logrows": m.circuit["logrows"], "reference": m.data["fidelity"]["reference"]["kind"],
                "rewrites": [r["rewrite"] for r in m.data["prepare"]["rewrites"]],
                "fidelity_max_abs_error": m.data["fidelity"]["max_abs_error"], "tolerance": tol,
                "output_error": float(np.abs(proven - ref).max()),
            }
            if plain.outputs:
                got = np.concatenate([np.asarray(o, dtype=float) for o in plain.outputs])
                err = float(np.abs(got - ref).max()) if got.shape == ref.shape else None
                row["plain_ezkl"]["output_error"] = err
                row["plain_ezkl"]["correct"] = err is not None and err <= tol
            if plain.build_s:
                row["build_ratio"] = round(build_s / plain.build_s, 2)
            if plain.prove_s:
                row["prove_ratio"] = round(prove_s / plain.prove_s, 2)
            rows.append(row)
    return rows
