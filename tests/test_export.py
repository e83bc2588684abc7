import pytest
from model_helpers import make_mlp_onnx

from pipeline.errors import UnsupportedModelError, UsageError
from pipeline.export import inspect


def test_inspect_reads_signature(tmp_path):
    sig = inspect(make_mlp_onnx(tmp_path / "m.onnx", batch="batch_size"))
    assert [t.name for t in sig.inputs] == ["x"]  # initializers are not inputs
    assert sig.inputs[0].shape == ("batch_size", 8)
    assert sig.symbolic_dims == ("batch_size",)
    assert sig.inputs[0].concrete_shape({"batch_size": 4}) == (4, 8)
    assert sig.op_counts["MatMul"] == 2 and sig.opset == 17


def test_inspect_errors_name_the_file(tmp_path):
    with pytest.raises(UsageError, match="ONNX model not found: .*nope.onnx"):
        inspect(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UsageError, match="bad.onnx is not a valid ONNX model"):
        inspect(bad)


def test_unsupported_operator_is_named_with_its_node(tmp_path):
    """A real ezkl run on a model with an operator its ONNX front end does not implement (Det)."""
    import onnx
    from onnx import TensorProto, helper

    from pipeline.compile import Visibility, generate_settings

    graph = helper.make_graph(
        [helper.make_node("Det", ["x"], ["y"], name="risk_determinant")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    sig = inspect(path)
    with pytest.raises(UnsupportedModelError, match="ONNX operator Det at node 'risk_determinant' is not supported"):
        generate_settings(path, tmp_path / "settings.json", Visibility(), sig)
    assert not (tmp_path / "settings.json").exists()
