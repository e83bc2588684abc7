"""Preparing foreign graphs for ezkl, without compiling: dimensions, rewrites that keep what the graph
computes, the reference that runs the user's model, and ezkl failures turned into one line."""

import json

import numpy as np
import onnx
import pytest
from foreign_models import (
    dollar_batchnorm_mlp,
    dollar_credit_mlp,
    dollar_data,
    float64_linear_classifier,
    int8_gemm_tree,
    int8_gemm_tree_predict,
    save,
    symbolic_dims_model,
)
from model_helpers import make_mlp_onnx
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from pipeline import reference as reference_mod
from pipeline.errors import UnsupportedModelError, UsageError
from pipeline.export import inspect
from pipeline.inputs import to_circuit_values
from pipeline.prepare import prepare_model, resolve_dims


def _prepare(path, tmp_path, samples, dims=None, batch=None, skip=()):
    sig = inspect(path)
    variables = resolve_dims(sig, batch, dims)
    return prepare_model(path, sig, variables, samples, tmp_path / "prepared.onnx", skip=skip)


def test_symbolic_dimensions_resolve_or_are_named(tmp_path):
    sig = inspect(symbolic_dims_model(tmp_path / "s.onnx"))
    assert resolve_dims(sig, None) == {"x_dim0": 1}  # skl2onnx-style unnamed batch axis
    assert resolve_dims(sig, 3) == {"x_dim0": 3}

    graph = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "seq"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "seq.onnx")
    seq = inspect(path)
    with pytest.raises(UsageError, match=r"symbolic dimension 'seq' \(axis 1\).*--dim seq=N"):
        resolve_dims(seq, None)
    assert resolve_dims(seq, 2, {"seq": 7}) == {"N": 2, "seq": 7}
    with pytest.raises(UsageError, match="--dim names nope, which no model input has"):
        resolve_dims(seq, None, {"nope": 1})


def test_output_shapes_made_concrete(tmp_path):
    """Tract-named and unnamed output dimensions become the values one evaluation shows."""
    prepared = _prepare(symbolic_dims_model(tmp_path / "s.onnx"), tmp_path, [[[0.1, 0.2, 0.3, 0.4]]])
    assert [t.shape for t in prepared.sig.inputs] == [(1, 4)]
    assert [t.shape for t in prepared.sig.outputs] == [(1, 3), (1,)]
    assert not prepared.sig.symbolic_dims and prepared.rewrites == []


def test_equal_rewrite_keeps_the_function(tmp_path):
    """hummingbird-style int8 GEMM tree: Equal replaced by comparisons, same outputs on every sample."""
    path, params = int8_gemm_tree(tmp_path / "t.onnx")
    X = np.random.default_rng(2).uniform(-1, 1, (64, 4)).astype(np.float32)
    prepared = _prepare(path, tmp_path, [[x.tolist()] for x in X[:4]])
    assert [r["rewrite"] for r in prepared.rewrites] == ["equal-as-comparisons"]
    ops = [n.op_type for n in onnx.load(str(prepared.path)).graph.node]
    assert "Equal" not in ops and {"Less", "Greater", "Or", "Not"} <= set(ops)
    ev = ReferenceEvaluator(onnx.load(str(prepared.path)))
    got = np.array([ev.run(None, {"x": x[None]})[0].ravel() for x in X])
    np.testing.assert_array_equal(got, int8_gemm_tree_predict(params, X))


def test_equal_on_booleans_becomes_not_xor(tmp_path):
    nodes = [helper.make_node("Less", ["a", "t"], ["p"]), helper.make_node("Greater", ["a", "u"], ["q"]),
             helper.make_node("Equal", ["p", "q"], ["e"]), helper.make_node("Cast", ["e"], ["y"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [onnx.numpy_helper.from_array(np.array([0.5], np.float32), "t"),
                               onnx.numpy_helper.from_array(np.array([-0.5], np.float32), "u")])
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "b.onnx")
    prepared = _prepare(path, tmp_path, [[[0.0, 1.0, -1.0]]])
    assert "not(a xor b)" in prepared.rewrites[0]["changes"][0]
    before, after = ReferenceEvaluator(onnx.load(str(path))), ReferenceEvaluator(onnx.load(str(prepared.path)))
    for a in np.random.default_rng(0).uniform(-1, 1, (20, 1, 3)).astype(np.float32):
        np.testing.assert_array_equal(before.run(None, {"a": a})[0], after.run(None, {"a": a})[0])


@pytest.mark.parametrize("make", [dollar_credit_mlp, dollar_batchnorm_mlp])
def test_prescale_is_exact_and_recorded(tmp_path, make):
    """Raw dollar features: the prepared graph on x / 2^m computes what the user's graph computes on x."""
    path = make(tmp_path / "d.onnx")
    X = dollar_data(64, seed=5)
    prepared = _prepare(path, tmp_path, [[x.tolist()] for x in X])
    assert [r["rewrite"] for r in prepared.rewrites] == ["prescale-raw-amounts"]
    m = prepared.input_prescale[0]
    assert m[0] >= 14 and m[1] >= 12 and m[3] == 0  # income and loan shrink; the [0, 1] utilization does not
    import onnxruntime as ort

    user = ort.InferenceSession(str(path))
    ours = ort.InferenceSession(str(prepared.path))
    for x in X[:16]:
        fed = np.asarray(to_circuit_values([x.tolist()], prepared.input_prescale)[0], dtype=np.float32)
        np.testing.assert_allclose(ours.run(None, {"x": fed[None]})[0], user.run(None, {"x": x[None]})[0],
                                   rtol=1e-5, atol=1e-6)


def test_prescale_leaves_small_inputs_and_unabsorbable_graphs_alone(tmp_path):
    small = _prepare(make_mlp_onnx(tmp_path / "m.onnx"), tmp_path, [[[0.5] * 8]])
    assert small.input_prescale is None and small.rewrites == []
    # Large inputs straight into a non-linear op: nothing can absorb a per-feature factor.
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("MatMul", ["h", "w"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
                              [onnx.numpy_helper.from_array(np.array([[1e-4], [2e-4]], np.float32), "w")])
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "r.onnx")
    assert _prepare(path, tmp_path, [[[5e4, 7e4]]]).input_prescale is None


def test_reference_runs_declared_types_then_falls_back(tmp_path):
    f64 = float64_linear_classifier(tmp_path / "f64.onnx")
    sig = inspect(f64)
    probe = reference_mod.feeds(sig, [[0.1] * 6], {"batch_size": 1})
    assert probe["x"].dtype == np.float64
    assert reference_mod.open_reference(f64, sig, probe).kind == "onnxruntime"

    tree, _ = int8_gemm_tree(tmp_path / "t.onnx")
    sig = inspect(tree)
    ref = reference_mod.open_reference(tree, sig, reference_mod.feeds(sig, [[0.0] * 4], {"N": 1}))
    assert ref.kind == "onnx.reference" and "tensor(int8)" in ref.why


def test_recorded_outputs_are_the_last_reference(tmp_path):
    """A graph neither runtime knows (a custom-domain op) is checked against the data file's output_data."""
    graph = helper.make_graph([helper.make_node("Scorer", ["x"], ["y"], domain="com.example")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    path = save(model, tmp_path / "custom.onnx")
    sig = inspect(path)
    probe = reference_mod.feeds(sig, [[1.0, 2.0]], {})
    ref = reference_mod.open_reference(path, sig, probe, output_data=[[0.25, 0.75]], n_given=2)
    assert ref.kind == "output_data" and ref.needs_given_samples
    assert ref.outputs(probe, 1).tolist() == [0.75]
    with pytest.raises(UnsupportedModelError, match=r"no reference can run this model.*onnxruntime: .*onnx.reference: "
                                                     r".*output_data"):
        reference_mod.open_reference(path, sig, probe)


def test_ezkl_panic_becomes_one_clear_line(tmp_path):
    """ezkl 23.0.5 panics (index out of bounds) on onnxruntime's dynamic quantization; the panic, a
    BaseException, comes back as an UnsupportedModelError naming the operator tract did not know."""
    from onnxruntime.quantization import quantize_dynamic

    from pipeline.compile import Visibility, generate_settings

    quantize_dynamic(str(make_mlp_onnx(tmp_path / "m.onnx")), str(tmp_path / "dyn.onnx"))
    sig = inspect(tmp_path / "dyn.onnx")
    with pytest.raises(UnsupportedModelError) as e:
        generate_settings(tmp_path / "dyn.onnx", tmp_path / "settings.json", Visibility(), sig)
    msg = e.value.message
    assert "ONNX operator DynamicQuantizeLinear at node" in msg and "ezkl panicked: index out of bounds" in msg
    assert "\n" not in msg and "Traceback" not in msg
    assert "panicked at" in (tmp_path / "build.log").read_text()  # the whole story is kept in the log


def test_calibration_data_is_prescaled_for_ezkl():
    assert to_circuit_values([[1024.0, 3.0, 1.0, 6.0]], [[10, 0]]) == [[1.0, 3.0, 1.0 / 1024, 6.0]]
    assert to_circuit_values([[1.0]], None) == [[1.0]]
    json.dumps(to_circuit_values([[2.0**40, 1.0]], [[40, 0]]))  # still plain floats
