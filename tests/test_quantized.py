"""Quantized models in: onnxruntime.quantization's static QDQ and QOperator forms (int8 and uint8 activations,
per-tensor and per-channel weights), dynamic quantization, and a PyTorch post-training-quantized MLP, rewritten
into float operators that compute the quantized arithmetic (`pipeline.rewrites.quantized`).

Fast tests run the rewritten graph in float32 (onnxruntime with its graph optimizations off, so it computes
the graph as written) against onnxruntime running the quantized graph; slow tests build real circuits, prove,
verify, and hold the proven outputs to onnxruntime's quantized execution. Plus the refusals."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from foreign_models import save, write_data
from onnx import TensorProto, helper, numpy_helper
from quantized_models import (
    data_for,
    float_model,
    output_step,
    quantize_dynamic,
    quantize_static,
    torch_ptq_mlp,
)

from pipeline.errors import UnsupportedModelError
from pipeline.export import inspect
from pipeline.prepare import prepare_model, resolve_dims
from pipeline.rewrites.graph import Graph
from pipeline.rewrites.quantized import MAX_SHIFT, SMALL_MULTIPLIER, multiplier

N_CHECKED = 400  # samples per model in the float comparisons


def _sessions(quantized, prepared):
    import onnxruntime as ort

    as_written = ort.SessionOptions()
    # onnxruntime's optimizer folds `Conv -> Mul(constant)` into scaled weights, turning the rewritten graph's
    # exact integer sums into float ones: the rewritten graph is judged as written
    as_written.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return (ort.InferenceSession(str(quantized), providers=["CPUExecutionProvider"]),
            ort.InferenceSession(str(prepared.path), as_written, providers=["CPUExecutionProvider"]))


def _prepare(path, tmp_path, X):
    sig = inspect(path)
    return prepare_model(path, sig, resolve_dims(sig, None), [[x.ravel().tolist()] for x in X[:8]],
                         tmp_path / f"{path.stem}.prepared.onnx")


def _compare(quantized, prepared, X):
    """Per sample: onnxruntime's outputs on the quantized graph, and the rewritten graph's on the same input
    (as the circuit is fed it, prescaled)."""
    theirs, ours = _sessions(quantized, prepared)
    ref, got = [], []
    for x in X:
        ref.append(theirs.run(None, {"x": x[None]})[0].astype(np.float64).ravel())
        fed = np.asarray(prepared.circuit_values([x.ravel().tolist()])[0], np.float32).reshape(x[None].shape)
        got.append(ours.run(None, {"x": fed})[0].astype(np.float64).ravel())
    return np.array(ref), np.array(got)


def _near_input_tie(quantized, X, within=1e-5):
    """Per sample: whether some input x has x / scale within `within` of a .5 boundary at the graph's first
    QuantizeLinear, where float32's x * (1/s) and onnxruntime's x / s may round apart."""
    graph = Graph(onnx.load(str(quantized)))
    first = next(n for n in graph.g.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    s = float(graph.constant(first.input[1]))
    frac = np.abs(np.mod(X.reshape(len(X), -1).astype(np.float64) / s, 1.0) - 0.5)
    return (frac < within).any(axis=1)


STATIC = [("mlp", "qdq", "int8", False), ("mlp", "qdq", "uint8", True), ("mlp", "qoperator", "uint8", False),
          ("mlp", "qoperator", "int8", True), ("cnn", "qdq", "int8", True), ("cnn", "qdq", "uint8", False),
          ("cnn", "qoperator", "uint8", True), ("cnn", "qoperator", "int8", False)]


@pytest.mark.parametrize("kind,fmt,activations,per_channel", STATIC,
                         ids=[f"{k}-{f}-{a}{'-per-channel' if p else ''}" for k, f, a, p in STATIC])
def test_static_quantization_rewritten_exactly(tmp_path, kind, fmt, activations, per_channel):
    """The rewritten graph computes onnxruntime's integer kernels bit for bit: equal outputs on every sample but
    those whose input lies within float32 rounding of a .5 boundary at the first QuantizeLinear."""
    calibration = data_for(kind, 32, seed=1)
    q = quantize_static(float_model(kind, tmp_path / "f.onnx"), tmp_path / "q.onnx", calibration, fmt, activations,
                        per_channel)
    prepared = _prepare(q, tmp_path, calibration)
    ops = {n.op_type for n in onnx.load(str(prepared.path)).graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "QLinearConv", "QGemm", "QLinearAdd"}
    assert prepared.rewrites[0]["rewrite"] == "quantized-arithmetic"
    X = data_for(kind, N_CHECKED, seed=2)
    ref, got = _compare(q, prepared, X)
    differ = (ref != got).any(axis=1)
    assert not (differ & ~_near_input_tie(q, X)).any(), f"{int(differ.sum())} samples differ"
    assert differ.sum() <= 2


def test_other_cnn_operators_match_the_integer_kernels(tmp_path):
    """LeakyRelu, AveragePool, MaxPool, Add and Mul of two activations, Concat: the QOperator form (onnxruntime's
    integer kernels) is matched exactly here. The QDQ form (equal scales around AveragePool) differs from
    onnxruntime by at most one output step, where onnxruntime's float32 average falls off an exact tie (next test)."""
    calibration = data_for("ops", 32, seed=1)
    f = float_model("ops", tmp_path / "f.onnx")
    qop = quantize_static(f, tmp_path / "qop.onnx", calibration, "qoperator", "uint8", True)
    qdq = quantize_static(f, tmp_path / "qdq.onnx", calibration, "qdq", "uint8", True)
    assert {"QLinearLeakyRelu", "QLinearAveragePool", "QLinearAdd", "QLinearMul", "QLinearConcat", "QGemm",
            "QLinearGlobalAveragePool", "QLinearSigmoid"} <= {n.op_type for n in onnx.load(str(qop)).graph.node}
    X = data_for("ops", N_CHECKED, seed=2)
    ref, got = _compare(qop, _prepare(qop, tmp_path, calibration), X)
    assert not ((ref != got).any(axis=1) & ~_near_input_tie(qop, X)).any()
    ref_qdq, got_qdq = _compare(qdq, _prepare(qdq, tmp_path, calibration), X)
    assert np.abs(ref_qdq - got_qdq).max() <= 1.01 * output_step(qdq)


def test_average_pool_differs_from_onnxruntime_only_at_exact_ties(tmp_path):
    """onnxruntime averages in float32, in the QDQ form (Dequantize -> AveragePool -> Quantize) and in its
    QLinearAveragePool kernel alike: where the exact average of four integers is n + 1/2 (with equal input and
    output scales, a quarter of them), float32 lands on either side. The rewrite gives the exact average rounded
    half to even, QuantizeLinear's rule; everywhere else it agrees with both."""
    s, z = np.array(0.0123, np.float32), np.array(3, np.uint8)
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}

    def model(pool_nodes, domains=()):
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]), *pool_nodes,
                 helper.make_node("DequantizeLinear", ["qp", "s", "z"], ["y"])]
        graph = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])],
                                  [numpy_helper.from_array(s, "s"), numpy_helper.from_array(z, "z")])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)] +
                                 [helper.make_opsetid(d, 1) for d in domains])

    qdq = save(model([helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
                      helper.make_node("AveragePool", ["d"], ["a"], **pool),
                      helper.make_node("QuantizeLinear", ["a", "s", "z"], ["qp"])]), tmp_path / "qdq.onnx")
    kernel_pool = helper.make_node("QLinearAveragePool", ["q", "s", "z", "s", "z"], ["qp"], domain="com.microsoft",
                                   **pool)
    kernel = save(model([kernel_pool], ("com.microsoft",)), tmp_path / "kernel.onnx")
    # inputs a quarter step off the quantization grid: QuantizeLinear rounds them alike in any float arithmetic
    X = ((np.random.default_rng(0).integers(0, 240, (40, 4, 8, 8)) + 0.25) * s).astype(np.float32)
    prepared = _prepare(qdq, tmp_path, X.reshape(40, 1, 4, 8, 8))
    theirs, ours = _sessions(qdq, prepared)
    their_kernel = _sessions(kernel, prepared)[0]
    apart = 0
    for x in X:
        fed = np.asarray(prepared.circuit_values([x.ravel().tolist()])[0], np.float32).reshape(1, 4, 8, 8)
        got = ours.run(None, {"x": fed})[0]
        q = np.clip(np.rint(x[None] / s) + 3, 0, 255) - 3
        exact = q.reshape(1, 4, 4, 2, 4, 2).mean(axis=(3, 5))
        assert np.array_equal(got, (np.rint(exact) * s).astype(np.float32))
        for reference in (theirs.run(None, {"x": x[None]})[0], their_kernel.run(None, {"x": x[None]})[0]):
            wrong = got != reference
            assert np.all(np.mod(exact[wrong], 1.0) == 0.5)
            apart += int(wrong.sum())
    assert apart > 0  # the case is real, not hypothetical


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_dynamic_quantization_rewritten(tmp_path, kind):
    """Dynamic quantization's data-dependent scale is computed in the graph; in float32 the rewritten graph
    rounds x * (255 / range) where onnxruntime rounds x / (range / 255), which part at .5 boundaries: measured
    here, most outputs agree to float32 rounding and none by more than a small fraction of the output."""
    q = quantize_dynamic(float_model(kind, tmp_path / "f.onnx"), tmp_path / "q.onnx")
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= {n.op_type for n in onnx.load(str(q)).graph.node}
    prepared = _prepare(q, tmp_path, data_for(kind, 8, seed=1))
    assert "DynamicQuantizeLinear" not in {n.op_type for n in onnx.load(str(prepared.path)).graph.node}
    ref, got = _compare(q, prepared, data_for(kind, N_CHECKED, seed=2))
    err = np.abs(ref - got).max(axis=1)
    assert (err < 1e-5).mean() > 0.9
    assert err.max() < 0.01 * (ref.max() - ref.min())


def test_pytorch_eager_ptq_export_rewritten_exactly(tmp_path):
    """torch.ao.quantization eager post-training quantization, exported by torch 2.13's TorchScript exporter:
    QuantizeLinear/DequantizeLinear with Constant scales, ConstantOfShape zero points, uint8 Casts."""
    X = data_for("mlp", 64, seed=1)
    q = torch_ptq_mlp(tmp_path / "torch.onnx", X)
    prepared = _prepare(q, tmp_path, X)
    ref, got = _compare(q, prepared, data_for("mlp", N_CHECKED, seed=2))
    differ = (ref != got).any(axis=1)
    assert not (differ & ~_near_input_tie(q, data_for("mlp", N_CHECKED, seed=2))).any()


def test_model_taking_quantized_input(tmp_path):
    """A graph whose input is already uint8 (DequantizeLinear -> MatMul -> QuantizeLinear -> DequantizeLinear):
    the circuit takes the same integers as float."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (8, 3)).astype(np.int8)
    inits = {"sx": np.array(0.02, np.float32), "zx": np.array(128, np.uint8), "w": w,
             "sw": np.array(0.01, np.float32), "zw": np.array(0, np.int8), "sy": np.array(0.05, np.float32),
             "zy": np.array(100, np.uint8)}
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["xf"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wf"]),
             helper.make_node("MatMul", ["xf", "wf"], ["h"]),
             helper.make_node("QuantizeLinear", ["h", "sy", "zy"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "sy", "zy"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "u8in.onnx")
    X = rng.integers(0, 256, (200, 8)).astype(np.float32)
    prepared = _prepare(path, tmp_path, X)
    assert prepared.sig.inputs[0].elem_type == "float"
    theirs, ours = _sessions(path, prepared)
    for x in X:
        np.testing.assert_array_equal(ours.run(None, {"x": x[None]})[0],
                                      theirs.run(None, {"x": x[None].astype(np.uint8)})[0])


def test_multipliers_are_integers_times_powers_of_two():
    """Every float32 of at least SMALL_MULTIPLIER is m * 2^-k exactly, with m a float32-exact integer and a
    shift ezkl's rescaling can divide by; smaller ones are within 2^-(MAX_SHIFT+1)."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(SMALL_MULTIPLIER, 300, 500), [1.0, 0.5, 3.0, 255.0, 2.0**-4]])
    for c in values.astype(np.float32):
        k, m = multiplier(c)
        assert 0 <= k <= MAX_SHIFT and float(m) == round(float(m)) and abs(m) < 2**24
        assert float(m) * 2.0**-k == float(c)
    assert multiplier(np.float32(255.0)) == (0, 255.0) and multiplier(np.float32(0.25))[0] == 2
    k, m = multiplier(np.float32(3e-6))
    assert k == MAX_SHIFT and abs(float(m) * 2.0**-k - 3e-6) <= 2.0 ** -(MAX_SHIFT + 1)


def test_prepared_model_asks_ezkl_for_integer_constants(tmp_path):
    calibration = data_for("mlp", 16, seed=1)
    q = quantize_static(float_model("mlp", tmp_path / "f.onnx"), tmp_path / "q.onnx", calibration)
    prepared = _prepare(q, tmp_path, calibration)
    assert prepared.run_args == {"rebase_frac_zero_constants": True, "scale_rebase_multiplier": 1}
    assert prepared.manifest_entry()["run_args"] == prepared.run_args
    # the input is fed at the quantizer's resolution: x * 2^j with 2^j about 1 / scale
    (j,) = set(prepared.input_prescale[0])
    assert j < 0


# ---- refusals

def _graph(nodes, inits, opset=17, domains=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=imports)


QDQ = {"s": np.array(0.05, np.float32), "z": np.array(0, np.int8)}


def _refusal(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    model.ir_version = 8
    onnx.save(model, str(path))
    with pytest.raises(UnsupportedModelError) as e:
        sig = inspect(path)
        prepare_model(path, sig, resolve_dims(sig, None), [[[0.1, 0.2, 0.3, 0.4]]], tmp_path / "p.onnx")
    assert "\n" not in e.value.message and str(path) in e.value.message
    return e.value.message


def test_unsupported_quantized_operators_are_refused_by_name(tmp_path):
    softmax = _graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                      helper.make_node("QLinearSoftmax", ["q", "s", "z", "s", "z"], ["qs"], domain="com.microsoft",
                                       name="probabilities", opset=13),
                      helper.make_node("DequantizeLinear", ["qs", "s", "z"], ["y"])], QDQ, domains=("com.microsoft",))
    msg = _refusal(tmp_path, softmax)
    assert "quantized operator com.microsoft.QLinearSoftmax at node 'probabilities' is not supported" in msg

    data_dependent = _graph([helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
                             helper.make_node("QuantizeLinear", ["x", "m", "z"], ["q"], name="q_by_max"),
                             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], QDQ)
    assert "QuantizeLinear at node 'q_by_max': its scale is not a constant" in _refusal(tmp_path, data_dependent)

    blocked = _graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                      helper.make_node("DequantizeLinear", ["q", "sb", "zb"], ["y"], axis=1, block_size=2,
                                       name="blocks")],
                     QDQ | {"sb": np.array([[0.1, 0.2]], np.float32), "zb": np.zeros((1, 2), np.int8)}, opset=21)
    assert "DequantizeLinear at node 'blocks': blocked quantization" in _refusal(tmp_path, blocked)

    old = _graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                  helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], QDQ, opset=10)
    assert "opset 10: re-export it with opset 13 or later" in _refusal(tmp_path, old)


def test_cli_refuses_an_unsupported_quantized_operator_in_one_line(tmp_path):
    model = _graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                    helper.make_node("QLinearSoftmax", ["q", "s", "z", "s", "z"], ["qs"], domain="com.microsoft",
                                     name="probabilities", opset=13),
                    helper.make_node("DequantizeLinear", ["qs", "s", "z"], ["y"])], QDQ, domains=("com.microsoft",))
    path = save(model, tmp_path / "softmax.onnx")
    data = write_data(tmp_path / "cal.json", np.random.default_rng(0).uniform(-1, 1, (4, 4)))
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "circuit", "build", str(path), "--data", str(data),
                        "--out", str(tmp_path / "c")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "QLinearSoftmax at node 'probabilities' is not supported" in r.stderr


# ---- real circuits

def _build(tmp_path_factory, name, quantized, X_cal, X_val):
    from pipeline.build import BuildOptions, build_circuit

    d = tmp_path_factory.mktemp(name)
    result = build_circuit(quantized, write_data(d / "cal.json", X_cal), d / "circuit", BuildOptions(max_attempts=1),
                           write_data(d / "val.json", X_val))
    m = result.manifest
    f = m.data["fidelity"]
    step, what = output_step(quantized), "output steps"
    if step is None:
        step, what = output_step(quantized, last=True), "steps of the last quantized tensor"
    # what the README quotes (`pytest tests/test_quantized.py -m slow -s`)
    print(f"\n[measured] {name}: {f['n_compared']} validation samples, max abs error {f['max_abs_error']:.3g}"
          + (f" = {f['max_abs_error'] / step:.3f} {what}" if step else "")
          + f", scales {m.circuit['input_scales']}/{m.circuit['param_scale']}, logrows {m.circuit['logrows']}, "
          f"build {m.data['timings_s']['total']:.0f} s")
    return {"result": result, "onnx": quantized, "val": X_val, "dir": m.dir}


def _prove(circuit, x, tmp_path):
    from pipeline.prove import Prover
    from pipeline.verify import verify_proof

    proof = tmp_path / "proof.json"
    Prover(circuit["dir"]).prove([x.ravel().tolist()], proof)
    verdict = verify_proof(circuit["dir"], proof)
    assert verdict.valid, verdict.reason
    return np.concatenate([np.asarray(t, dtype=float) for t in verdict.outputs])


def _onnxruntime(path, x):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x[None]})[0].ravel()


@pytest.fixture(scope="module")
def static_mlp(tmp_path_factory):
    d = tmp_path_factory.mktemp("static_mlp")
    X = data_for("mlp", 80, seed=3)
    q = quantize_static(float_model("mlp", d / "f.onnx"), d / "mlp_qdq_int8.onnx", X[:16], "qdq", "int8")
    return _build(tmp_path_factory, "mlp_qdq_int8", q, X[:16], X[16:])


@pytest.fixture(scope="module")
def qoperator_cnn(tmp_path_factory):
    d = tmp_path_factory.mktemp("qoperator_cnn")
    X = data_for("cnn", 48, seed=3)
    q = quantize_static(float_model("small_cnn", d / "f.onnx"), d / "cnn_qop_uint8.onnx", X[:16], "qoperator",
                        "uint8", True)
    return _build(tmp_path_factory, "cnn_qoperator_uint8_per_channel", q, X[:16], X[16:])


@pytest.mark.slow
@pytest.mark.parametrize("which", ["static_mlp", pytest.param("qoperator_cnn", marks=pytest.mark.long)])
def test_static_quantized_circuit_proves_onnxruntimes_integers(which, request, tmp_path):
    """Static QDQ int8 MLP and QOperator uint8 per-channel CNN (QLinearConv, QLinearGlobalAveragePool, QGemm):
    the gate, against onnxruntime on the quantized graph, finds every validation output within one output
    quantization step (the stretch goal; in fact within the circuit's own output grid); the proven and
    verified outputs are onnxruntime's."""
    circuit = request.getfixturevalue(which)
    m = circuit["result"].manifest
    fidelity = m.data["fidelity"]
    assert fidelity["reference"]["kind"] == "onnxruntime" and fidelity["passed"]
    step = output_step(circuit["onnx"])
    grid = 2.0 ** -m.circuit["output_scales"][0]
    # onnxruntime's integers: what is left is the dequantized output's rounding to the grid (two rescales)
    assert fidelity["max_abs_error"] <= 0.75 * grid < step
    assert m.data["prepare"]["run_args"]["rebase_frac_zero_constants"] is True
    x = circuit["val"][5]
    np.testing.assert_allclose(_prove(circuit, x, tmp_path), _onnxruntime(circuit["onnx"], x), rtol=0, atol=grid)


@pytest.mark.slow
@pytest.mark.long
def test_dynamic_quantized_circuit(tmp_path_factory, tmp_path):
    """Dynamic quantization: the scale is computed from each input in the circuit."""
    d = tmp_path_factory.mktemp("dynamic")
    X = data_for("mlp", 80, seed=3)
    q = quantize_dynamic(float_model("mlp", d / "f.onnx"), d / "mlp_dynamic.onnx")
    circuit = _build(tmp_path_factory, "mlp_dynamic", q, X[:16], X[16:])
    fidelity = circuit["result"].manifest.data["fidelity"]
    assert fidelity["passed"] and fidelity["max_abs_error"] < 0.01
    x = X[20]
    np.testing.assert_allclose(_prove(circuit, x, tmp_path), _onnxruntime(q, x), rtol=0, atol=0.01)


@pytest.mark.slow
@pytest.mark.long
def test_pytorch_quantized_circuit(tmp_path_factory, tmp_path):
    """PyTorch eager PTQ: quantized Linear-ReLU-Linear, then a float sigmoid on the dequantized logit. The
    circuit's integers are onnxruntime's but where a value lies closer to a .5 boundary than the circuit's
    grid resolves (measured here: one input of one sample, x / s 2.3e-5 from the boundary); such a flip reaches
    the output through the sigmoid (slope <= 1/4) as a fraction of the last tensor's step."""
    d = tmp_path_factory.mktemp("torch")
    X = data_for("mlp", 80, seed=3)
    q = torch_ptq_mlp(d / "torch_ptq.onnx", X[:16])
    circuit = _build(tmp_path_factory, "torch_eager_ptq_mlp", q, X[:16], X[16:])
    m = circuit["result"].manifest
    step = output_step(q, last=True)
    assert m.data["fidelity"]["passed"] and m.data["fidelity"]["max_abs_error"] <= step
    x = X[30]
    np.testing.assert_allclose(_prove(circuit, x, tmp_path), _onnxruntime(q, x), rtol=0, atol=step)
    json.dumps(m.data["prepare"])  # the manifest records the rewrite and its run arguments
