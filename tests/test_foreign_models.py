"""Models zkinfer did not write, built into real circuits, proven, verified, and checked against the model:
hummingbird tree ensembles (GEMM and tree traversal), a graph onnxruntime cannot load, float64 and int64
graph inputs, symbolic dimensions of every naming style, and raw dollar features. Plus the refusals."""

import json
import subprocess
import sys

import numpy as np
import pytest
from foreign_models import (
    dollar_credit_mlp,
    dollar_data,
    float64_linear_classifier,
    hummingbird_onnx,
    int8_gemm_tree,
    int8_gemm_tree_predict,
    int64_input_model,
    prove_and_verify,
    symbolic_dims_model,
    tree_data,
    write_data,
)

from pipeline import manifest as manifest_mod
from pipeline.build import FAILED_REPORT, BuildOptions, build_circuit
from pipeline.errors import FidelityError, ResourceLimitError

pytestmark = pytest.mark.slow

ONE_ATTEMPT = BuildOptions(max_attempts=1)


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    from sklearn.ensemble import RandomForestRegressor

    d = tmp_path_factory.mktemp("forest")
    X, y = tree_data()
    rf = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    return {"dir": d, "X": X, "model": rf, "gemm": hummingbird_onnx(rf, X, d / "gemm.onnx", "gemm"),
            "cal": write_data(d / "cal.json", X[:32]), "val": write_data(d / "val.json", X[200:232])}


def test_hummingbird_gemm_forest_was_wrong_and_is_right(forest, tmp_path):
    """Without the Equal rewrite, plain ezkl's lowering proves 2^-scale times the prediction; with it, the
    proven prediction is the forest's."""
    with pytest.raises(FidelityError) as e:
        build_circuit(forest["gemm"], forest["cal"], tmp_path / "plain",
                      BuildOptions(max_attempts=1, skip_rewrites=("equal-as-comparisons",)), forest["val"])
    worst = e.value.report["worst"]
    scale = e.value.report["attempts"][0]["input_scales"][0]
    assert worst["circuit"] == pytest.approx(worst["reference"] * 2.0 ** -scale, abs=2e-3)

    result = build_circuit(forest["gemm"], forest["cal"], tmp_path / "c", ONE_ATTEMPT, forest["val"])
    m = result.manifest
    assert [r["rewrite"] for r in m.data["prepare"]["rewrites"]] == ["equal-as-comparisons"]
    assert m.data["fidelity"]["reference"]["kind"] == "onnxruntime"
    x = forest["X"][210]
    proven = prove_and_verify(m.dir, [x.tolist()], tmp_path)
    assert proven[0] == pytest.approx(forest["model"].predict(x[None])[0], abs=0.01)


def test_hummingbird_tree_traversal_with_tract_named_dims(tmp_path):
    """hummingbird's tree traversal: Gather/Where chains whose output shape onnx leaves symbolic."""
    from sklearn.tree import DecisionTreeClassifier

    X, y = tree_data(seed=1)
    labels = (y > 0).astype(int)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, labels)
    path = hummingbird_onnx(tree, X, tmp_path / "trav.onnx", "tree_trav")
    result = build_circuit(path, write_data(tmp_path / "cal.json", X[:32]), tmp_path / "c",
                           BuildOptions(max_attempts=1, task="classification"),
                           write_data(tmp_path / "val.json", X[200:232]))
    c = result.manifest.circuit
    assert all(isinstance(d, int) for s in c["output_shapes"] for d in s)
    x = X[220]
    proven = prove_and_verify(result.manifest.dir, [x.tolist()], tmp_path)
    # outputs: the label, then the class probabilities
    assert proven[0] == tree.predict(x[None])[0]
    np.testing.assert_allclose(proven[1:], tree.predict_proba(x[None])[0], atol=0.01)


def test_graph_onnxruntime_refuses_is_checked_with_onnx_reference(tmp_path):
    path, params = int8_gemm_tree(tmp_path / "t.onnx")
    X = np.random.default_rng(3).uniform(-1, 1, (48, 4)).astype(np.float32)
    result = build_circuit(path, write_data(tmp_path / "cal.json", X[:32]), tmp_path / "c", ONE_ATTEMPT,
                           write_data(tmp_path / "val.json", X[32:]))
    ref = result.manifest.data["fidelity"]["reference"]
    assert ref["kind"] == "onnx.reference" and "onnxruntime cannot run this graph" in ref["why"]
    assert result.manifest.data["fidelity"]["max_abs_error"] == 0  # leaf values are exact at the param scale
    proven = prove_and_verify(result.manifest.dir, [X[40].tolist()], tmp_path)
    assert proven.tolist() == int8_gemm_tree_predict(params, X[40:41]).ravel().tolist()


def test_float64_and_int64_graph_inputs(tmp_path):
    import onnxruntime as ort

    rng = np.random.default_rng(4)
    f64 = float64_linear_classifier(tmp_path / "f64.onnx")
    X = rng.normal(0, 1, (40, 6))
    result = build_circuit(f64, write_data(tmp_path / "cal.json", X[:24]), tmp_path / "c64", ONE_ATTEMPT,
                           write_data(tmp_path / "val.json", X[24:]))
    assert result.manifest.data["fidelity"]["max_abs_error"] == 0  # labels, exactly
    sess = ort.InferenceSession(str(f64))
    x = X[30]
    assert prove_and_verify(result.manifest.dir, [x.tolist()], tmp_path).tolist() == \
        sess.run(None, {"x": x[None]})[0].astype(float).tolist()

    i64 = int64_input_model(tmp_path / "i64.onnx")
    counts = rng.integers(0, 20, (24, 5)).astype(float)
    result = build_circuit(i64, write_data(tmp_path / "cal_i.json", counts), tmp_path / "ci", ONE_ATTEMPT)
    expected = ort.InferenceSession(str(i64)).run(None, {"counts": counts[3:4].astype(np.int64)})[0].ravel()
    np.testing.assert_allclose(prove_and_verify(result.manifest.dir, [counts[3].tolist()], tmp_path), expected,
                               atol=0.01)


def test_symbolic_dimensions_of_every_style(tmp_path):
    """An unnamed batch axis (skl2onnx), tract-style output dims, two outputs: resolved before keys."""
    path = symbolic_dims_model(tmp_path / "s.onnx")
    X = np.random.default_rng(5).uniform(-1, 1, (32, 4))
    result = build_circuit(path, write_data(tmp_path / "cal.json", X), tmp_path / "c", ONE_ATTEMPT)
    c = result.manifest.circuit
    assert c["input_shapes"] == [[1, 4]] and c["output_shapes"] == [[1, 3], [1]]
    assert c["instance_layout"]["outputs"] == 4
    proven = prove_and_verify(result.manifest.dir, [X[0].tolist()], tmp_path)
    import onnxruntime as ort

    probs, score = ort.InferenceSession(str(path)).run(None, {"x": X[:1].astype(np.float32)})
    np.testing.assert_allclose(proven, np.concatenate([probs.ravel(), score.ravel()]), atol=0.02)


def test_raw_dollar_features_calibrate_and_prove(tmp_path):
    """Plain ezkl finds no calibration for raw dollars; prescaled, the circuit proves the model's PD."""
    import onnxruntime as ort

    path = dollar_credit_mlp(tmp_path / "d.onnx")
    cal, val = dollar_data(48, seed=1), dollar_data(24, seed=2)
    result = build_circuit(path, write_data(tmp_path / "cal.json", cal), tmp_path / "c", BuildOptions(max_attempts=2),
                           write_data(tmp_path / "val.json", val))
    m = result.manifest
    assert m.circuit["input_prescale"][0][0] > 10
    assert m.data["fidelity"]["max_abs_error"] <= 0.01
    x = val[5]
    expected = ort.InferenceSession(str(path)).run(None, {"x": x[None]})[0].ravel()
    # The prover takes raw dollars: the prescaling is the circuit's business.
    np.testing.assert_allclose(prove_and_verify(m.dir, [x.tolist()], tmp_path), expected, atol=0.01)
    # And so does the publisher: the commitment of raw features is the one the proof's inputs give.
    from pipeline import chain, layout
    from pipeline.felt import felt_to_uint256

    instances = [felt_to_uint256(f) for f in json.loads((tmp_path / "proof.json").read_text())["instances"][0]]
    [posted] = layout.slot_commitments(instances, layout.registry_layout(m).record())
    assert chain.feature_commitment(m.dir, x.tolist()) == "0x" + posted.hex()


def zkinfer(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_refusals_are_one_line_and_keep_the_previous_circuit(tmp_path, tiny_model):
    out = tmp_path / "c"
    ok = build_circuit(tiny_model["onnx"], tiny_model["calibration"], out, ONE_ATTEMPT)
    before = manifest_mod.load(out).circuit_id

    # More memory than the operator allows: stopped before mock-proving and keys, with the attempt recorded.
    r = zkinfer("circuit", "build", tiny_model["onnx"], "--data", tiny_model["validation"], "--out", out,
                "--max-attempts", "1", env={"ZKINFER_MEMORY_LIMIT": "64M"})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "would need ~" in r.stderr and "available" in r.stderr
    report = json.loads((out / FAILED_REPORT).read_text())
    assert report["attempts"][0]["estimate"]["peak_bytes"] > 64 << 20
    assert manifest_mod.load(out).circuit_id == before == ok.manifest.circuit_id

    with pytest.raises(ResourceLimitError):
        import os

        os.environ["ZKINFER_MEMORY_LIMIT"] = "1M"
        try:
            build_circuit(tiny_model["onnx"], tiny_model["validation"], out, ONE_ATTEMPT)
        finally:
            del os.environ["ZKINFER_MEMORY_LIMIT"]
    assert manifest_mod.load(out).circuit_id == before

    r = zkinfer("circuit", "build", tiny_model["onnx"], "--data", tiny_model["calibration"], "--out", out,
                "--dim", "seq")
    assert r.returncode == 2 and "--dim takes NAME=N" in r.stderr and "Traceback" not in r.stderr
    r = zkinfer("circuit", "build", tiny_model["onnx"], "--data", tiny_model["calibration"], "--out", out,
                "--no-rewrite", "nonsense")
    assert r.returncode == 2 and "unknown rewrite(s) nonsense" in r.stderr


def test_data_files_as_ezkl_reads_them(tmp_path):
    """Boolean values for boolean inputs, extra input lists (ezkl pairs lists with inputs in order), and a
    graph with no inputs at all: each builds, proves and verifies as with plain ezkl."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Or", ["a", "b"], ["o"]), helper.make_node("Not", ["o"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.BOOL, [1, 3]) for n in "ab"],
                              [helper.make_tensor_value_info("y", TensorProto.BOOL, [1, 3])])
    path = tmp_path / "bool.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    data = tmp_path / "bool.json"
    data.write_text(json.dumps({"input_data": [[False, True, False], [False, True, True], [True, True, True]]}))
    result = build_circuit(path, data, tmp_path / "b", ONE_ATTEMPT)
    assert prove_and_verify(result.manifest.dir, [[False, True, False], [False, False, True]], tmp_path).tolist() \
        == [1.0, 0.0, 0.0]

    const = helper.make_graph([helper.make_node("Constant", [], ["y"], value=onnx.numpy_helper.from_array(
        np.array([[0.0, 2.0, 4.0]], dtype=np.float32)))], "c", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    path = tmp_path / "const.onnx"
    onnx.save(helper.make_model(const, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    (tmp_path / "none.json").write_text(json.dumps({"input_data": [[]]}))
    result = build_circuit(path, tmp_path / "none.json", tmp_path / "c", ONE_ATTEMPT)
    assert prove_and_verify(result.manifest.dir, [], tmp_path).tolist() == [0.0, 2.0, 4.0]
