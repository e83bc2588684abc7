"""The model zoo: seeded data, real training, ONNX exports that match their framework, ezkl input files.

Fast tests check the interface, the data generators and the tree conversion on a tiny ensemble; tests that
train the full models or build a circuit are marked slow (each model is trained once per session).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline import zoo
from pipeline.errors import UsageError

MODELS = ("credit_gbt", "credit_risk", "digits_cnn", "inflation_forecast")
N_COMPARE = 256


def test_zoo_lists_the_four_models():
    assert set(MODELS) <= set(zoo.list_models())


def test_unknown_model_is_a_usage_error_listing_known_models():
    with pytest.raises(UsageError, match="unknown zoo model 'nope'.*credit_risk"):
        zoo.load("nope")
    with pytest.raises(UsageError, match="unknown zoo model"):
        zoo.prepare("nope", "/nonexistent")


def test_models_dir_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv(zoo.MODELS_DIR_ENV, str(tmp_path))
    assert zoo.list_models() == []
    with pytest.raises(UsageError, match="none found"):
        zoo.load("credit_risk")


def test_importing_the_zoo_and_a_tree_model_does_not_need_torch():
    code = (
        "import sys\n"
        "class NoTorch:\n"  # an import hook making `import torch` fail, as on a prover without torch
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('torch is not installed')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from pipeline import zoo\n"
        "model = zoo.load('credit_gbt')\n"
        "X, y = model.module.generate_data(100, 0)\n"
        "model.module.train(X, y, 0)\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(zoo.__file__).parent.parent)


@pytest.mark.parametrize("name", MODELS)
def test_spec_declares_a_usable_tolerance(name):
    spec = zoo.load(name).spec
    assert spec.tolerance["max_abs_error"] > 0
    if spec.task == "classification":
        assert 0 < spec.tolerance["label_agreement"] <= 1
    assert len(spec.feature_names) == spec.n_features
    assert spec.input_range[0] < spec.input_range[1]


@pytest.mark.parametrize("name", MODELS)
def test_data_is_seeded_and_inside_the_declared_input_range(name):
    model = zoo.load(name)
    X, y = model.module.generate_data(300, seed=3)
    X_again, y_again = model.module.generate_data(300, seed=3)
    X_other, _ = model.module.generate_data(300, seed=4)
    assert X.dtype == np.float32 and X.shape == (300, *model.spec.sample_shape)
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    assert not np.array_equal(X, X_other)
    low, high = model.spec.input_range
    assert X.min() >= low and X.max() <= high


def test_credit_features_are_on_the_exact_1_32_grid():
    X, _ = zoo.load("credit_risk").module.generate_data(1000, seed=0)
    np.testing.assert_array_equal(X * 32, np.round(X * 32))


def test_split_data_holds_out_a_fixed_test_set():
    model = zoo.load("credit_gbt")
    data = zoo.split_data(model, seed=0)
    X_train, X_test = data["train"][0], data["test"][0]
    assert len(X_train) == model.spec.n_train and len(X_test) == model.spec.n_test
    assert not set(map(bytes, X_train[:2000])) & set(map(bytes, X_test))


def test_ezkl_input_layout_single_and_split():
    samples = np.arange(12, dtype=np.float32).reshape(6, 2)
    assert zoo.ezkl_input(samples, batch_size=3) == {"input_data": [list(map(float, range(12)))]}
    split = zoo.ezkl_input(samples, batch_size=3, split_inputs=True)["input_data"]
    # input i gets samples i, i + 3: each run of the graph sees samples (0, 1, 2), then (3, 4, 5)
    assert split == [[0.0, 1.0, 6.0, 7.0], [2.0, 3.0, 8.0, 9.0], [4.0, 5.0, 10.0, 11.0]]
    with pytest.raises(UsageError, match="whole batches"):
        zoo.ezkl_input(samples, batch_size=4)


def test_labels_from_outputs():
    risk = zoo.load("credit_risk").spec
    np.testing.assert_array_equal(zoo.labels_from_outputs(risk, np.array([[0.2], [0.5], [0.9]])), [0, 1, 1])
    digits = zoo.load("digits_cnn").spec
    logits = np.zeros((2, 10))
    logits[0, 3] = logits[1, 7] = 1.0
    np.testing.assert_array_equal(zoo.labels_from_outputs(digits, logits), [3, 7])


def test_float32_thresholds_keep_sklearn_comparisons():
    gbt = zoo.load("credit_gbt").module
    rng = np.random.default_rng(0)
    thresholds = rng.normal(size=2000)
    t32 = gbt.float32_at_or_below(thresholds)
    assert np.all(t32.astype(np.float64) <= thresholds)
    # float32 values straddling each threshold compare the same way against both
    for delta in (-1, 0, 1):
        x = np.nextafter(thresholds.astype(np.float32), np.float32(delta * np.inf)) if delta else t32
        np.testing.assert_array_equal(x.astype(np.float64) <= thresholds, x <= t32)


def test_tree_conversion_reproduces_predict_proba_on_a_small_ensemble(tmp_path):
    from sklearn.ensemble import GradientBoostingClassifier

    gbt = zoo.load("credit_gbt").module
    X, y = gbt.generate_data(1500, seed=0)
    ensemble = GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X[:1000], y[:1000])
    onnx_path = tmp_path / "gbt.onnx"
    gbt.export_onnx(ensemble, onnx_path, batch_size=1)
    ops = {node.op_type for node in onnx.load(str(onnx_path)).graph.node}
    # ezkl 23 gives Equal's 0/1 output its input's scale: the conversion must not use it
    assert "Equal" not in ops and {"LessOrEqual", "GreaterOrEqual"} <= ops
    outputs = zoo.onnxruntime_outputs(onnx_path, X[1000:])
    np.testing.assert_allclose(outputs[:, 0], ensemble.predict_proba(X[1000:])[:, 1], atol=1e-6)


# --- slow: trains the real models ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """name -> (ZooModel, trained model, held-out X), each trained once, on demand."""
    cache = {}

    def get(name):
        if name not in cache:
            model = zoo.load(name)
            data = zoo.split_data(model, seed=0)
            cache[name] = (model, model.module.train(*data["train"], 0), data["test"][0][:N_COMPARE])
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_onnx_matches_the_framework_model_on_held_out_data(name, trained, tmp_path):
    model, fitted, X_test = trained(name)
    onnx_path = tmp_path / "network.onnx"
    model.module.export_onnx(fitted, onnx_path)
    expected = model.module.predict(fitted, X_test)
    assert expected.shape == (len(X_test), model.spec.n_outputs)
    np.testing.assert_allclose(zoo.onnxruntime_outputs(onnx_path, X_test), expected, rtol=1e-5, atol=1e-5)
    if name == "credit_gbt":  # on realistic borrowers the PD floor and cap are inactive: exactly sklearn's
        np.testing.assert_allclose(expected[:, 0], fitted.predict_proba(X_test)[:, 1], rtol=0, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_batched_and_split_exports_have_static_shapes_and_the_same_outputs(name, trained, tmp_path):
    model, fitted, X_test = trained(name)
    sample_shape = list(model.spec.sample_shape)
    expected = model.module.predict(fitted, X_test[:8])
    for split in (False, True):
        onnx_path = tmp_path / f"split{split}.onnx"
        model.module.export_onnx(fitted, onnx_path, batch_size=4, split_inputs=split)
        graph = onnx.load(str(onnx_path)).graph
        input_shapes = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input]
        output_shapes = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output]
        assert input_shapes == ([[1, *sample_shape]] * 4 if split else [[4, *sample_shape]])
        assert output_shapes == [[4, model.spec.n_outputs]]
        outputs = zoo.onnxruntime_outputs(onnx_path, X_test[:8], split_inputs=split)
        np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


def _samples(input_json: Path, sample_shape) -> np.ndarray:
    lists = json.loads(input_json.read_text())["input_data"]
    per_input = [np.array(values, dtype=np.float32).reshape(-1, *sample_shape) for values in lists]
    # undo the split layout: input i holds samples i, i + batch, ...
    return np.stack(per_input, axis=1).reshape(-1, *sample_shape)


@pytest.mark.slow
@pytest.mark.parametrize("split", [False, True])
def test_prepare_writes_disjoint_calibration_and_validation_inputs(split, tmp_path):
    prepared = zoo.prepare(
        "credit_gbt", tmp_path, batch_size=3, split_inputs=split, n_calibration=10, n_validation=7
    )
    spec = prepared.spec
    assert (prepared.n_calibration, prepared.n_validation) == (12, 9)  # whole batches of 3
    assert len(json.loads(prepared.validation_path.read_text())["input_data"]) == (3 if split else 1)
    calibration = _samples(prepared.calibration_path, spec.sample_shape)
    validation = _samples(prepared.validation_path, spec.sample_shape)
    assert len(calibration) == 12 and len(validation) == 9
    X_test = zoo.split_data(zoo.load("credit_gbt"), seed=0)["test"][0]
    np.testing.assert_array_equal(validation, X_test[:9])
    assert not set(map(bytes, calibration)) & set(map(bytes, validation))
    # calibration starts with the samples of lowest and highest predicted risk, box corners included
    assert calibration.min() == spec.input_range[0] or calibration.max() == spec.input_range[1]
    record = json.loads(prepared.record_path.read_text())
    assert record["spec"]["tolerance"] == spec.tolerance and record["metrics"]["auc"] > 0.8
    assert record["input_shapes"] == ([[1, 8]] * 3 if split else [[3, 8]])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["credit_risk", "credit_gbt"])
def test_prepare_is_byte_deterministic(name, tmp_path):
    first = zoo.prepare(name, tmp_path / "a", seed=5)
    second = zoo.prepare(name, tmp_path / "b", seed=5)
    for attr in ("onnx_path", "calibration_path", "validation_path"):
        assert getattr(first, attr).read_bytes() == getattr(second, attr).read_bytes(), attr
    assert first.metrics == second.metrics


@pytest.mark.slow
def test_gbt_circuit_reproduces_onnxruntime(tmp_path):
    """The tree conversion is exact in ezkl's fixed point: only leaf-value and sigmoid rounding remain."""
    import ezkl

    prepared = zoo.prepare("credit_gbt", tmp_path, n_calibration=16, n_validation=8)
    onnx_path, settings, compiled = (
        str(prepared.onnx_path),
        tmp_path / "settings.json",
        tmp_path / "network.compiled",
    )
    run_args = ezkl.PyRunArgs()
    run_args.input_visibility = run_args.output_visibility = "public"
    run_args.param_visibility = "fixed"
    assert ezkl.gen_settings(onnx_path, str(settings), py_run_args=run_args)
    ezkl.calibrate_settings(str(prepared.calibration_path), onnx_path, str(settings), scales=[11])
    assert ezkl.compile_circuit(onnx_path, str(compiled), str(settings))
    run_args = json.loads(settings.read_text())["run_args"]
    # every input is provable: the sigmoid's lookup table (its input has the leaf values' scale) covers the
    # clipped raw score over the whole input space, thanks to the range-stressing calibration samples
    gbt = zoo.load("credit_gbt")
    ensemble = gbt.module.train(*zoo.split_data(gbt, seed=0)["train"], 0)
    bound = gbt.module.borrowers.LOGIT_BOUND
    low, high = np.clip(gbt.module.raw_score_bounds(ensemble), -bound, bound) * 2 ** run_args["param_scale"]
    assert run_args["lookup_range"][0] <= low and high <= run_args["lookup_range"][1]
    output_scale = json.loads(settings.read_text())["model_output_scales"][0]
    X_val = _samples(prepared.validation_path, prepared.spec.sample_shape)
    expected = zoo.onnxruntime_outputs(prepared.onnx_path, X_val)[:, 0]
    for x, p in zip(X_val, expected, strict=True):
        data = tmp_path / "input.json"
        data.write_text(json.dumps(zoo.ezkl_input(x[None])))
        witness = ezkl.gen_witness(str(data), str(compiled), str(tmp_path / "witness.json"))
        proven = ezkl.felt_to_float(witness["outputs"][0][0], output_scale)
        assert abs(proven - p) <= prepared.tolerance["max_abs_error"] / 4
