"""Fixtures for the on-chain tests: tiny real circuits (bare ezkl, dev SRS), real proofs, a real anvil.

The circuits are built with ezkl directly, in the circuit-directory layout `pipeline.build` produces
(manifest.json, settings, compiled circuit, keys, kzg.srs, samples.jsonl), so pipeline.evm and
pipeline.chain see exactly what they will see from a real build. A small scale and decomposition base keep
every circuit at logrows 9-11: each builds and proves in well under a second.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from onchain_helpers import FIELD_MODULUS

from pipeline import EZKL_VERSION, __version__
from pipeline.artifacts import sha256_file, write_json_atomic

SCALE = 7
DECOMP_BASE, DECOMP_LEGS = 256, 4
SRS_LOGROWS = 12  # ezkl downsizes it to each circuit's logrows
# The inflation stand-in: later months weigh more (weights sum to 1 before quantization).
INFLATION_WEIGHTS = [0.1, 0.1, 0.2, 0.2, 0.2, 0.2]


def _affine_onnx(
    path: Path,
    weights: list[float],
    bias: float,
    sigmoid: bool,
    batch: int = 1,
    n_inputs: int = 1,
    relu_layer: bool = False,
) -> Path:
    """y = [sigmoid](x @ weights + bias) on [batch, n] rows, optionally behind an identity-weight ReLU layer
    (relu(x) = x on non-negative features: same outputs, a bigger circuit). With n_inputs > 1 the model
    takes that many separate [1, n] inputs (one tensor, hence one Poseidon hash, per subject)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = len(weights)
    w = numpy_helper.from_array(np.asarray(weights, dtype=np.float32).reshape(n, 1), "w")
    b = numpy_helper.from_array(np.asarray([bias], dtype=np.float32), "b")
    inits = [w, b]
    nodes = [
        helper.make_node("MatMul", ["h" if relu_layer else "x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        helper.make_node("Sigmoid" if sigmoid else "Identity", ["z"], ["y"]),
    ]
    if relu_layer:
        inits.append(numpy_helper.from_array(np.eye(n, dtype=np.float32), "eye"))
        nodes[:0] = [
            helper.make_node("MatMul", ["x", "eye"], ["xi"]),
            helper.make_node("Relu", ["xi"], ["h"]),
        ]
    if n_inputs > 1:
        nodes.insert(0, helper.make_node("Concat", [f"x{i}" for i in range(n_inputs)], ["x"], axis=0))
        inputs = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [1, n]) for i in range(n_inputs)]
    else:
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n])]
    rows = batch * n_inputs
    graph = helper.make_graph(
        nodes, "tiny", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, 1])], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@dataclass(frozen=True)
class TestCircuit:
    """A built circuit directory and how to prove with it."""

    dir: Path
    name: str
    input_shapes: list[list[int]]

    def prove(self, features: list[list[float]], out: Path) -> Path:
        """Prove one input (one flat list per input tensor); writes a zkinfer proof file."""
        import ezkl

        from pipeline import manifest as manifest_mod

        out.parent.mkdir(parents=True, exist_ok=True)
        data = out.with_suffix(".input.json")
        data.write_text(json.dumps({"input_data": features}))
        witness = out.with_suffix(".witness.json")
        ezkl.gen_witness(str(data), str(self.dir / "network.compiled"), str(witness))
        ezkl.prove(
            str(witness),
            str(self.dir / "network.compiled"),
            str(self.dir / "pk.key"),
            str(out),
            str(self.dir / "kzg.srs"),
        )
        proof = json.loads(out.read_text())
        m = manifest_mod.load(self.dir)
        felts = proof["instances"][0]
        n_out = m.circuit["instance_layout"]["outputs"]
        scale = m.circuit["output_scales"][0]
        proof["outputs"] = [[_felt_to_real(f, scale) for f in felts[len(felts) - n_out :]]]
        proof["calldata"] = {
            "proof": proof["hex_proof"],
            "instances": [f"0x{int.from_bytes(bytes.fromhex(f), 'little'):064x}" for f in felts],
        }
        proof["zkinfer"] = {"circuit": m.name, "manifest_sha256": m.sha256, "version": __version__}
        out.write_text(json.dumps(proof))
        return out


def _felt_to_real(felt: str, scale: int) -> float:
    v = int.from_bytes(bytes.fromhex(felt), "little")
    return (v - FIELD_MODULUS if v > FIELD_MODULUS // 2 else v) / (1 << scale)


def build_circuit(
    root: Path,
    name: str,
    srs: Path,
    weights: list[float],
    bias: float = 0.0,
    *,
    sigmoid: bool = True,
    batch: int = 1,
    n_inputs: int = 1,
    inputs: str = "public",
    params: str = "fixed",
    relu_layer: bool = False,
) -> TestCircuit:
    import ezkl

    d = root / name
    d.mkdir(parents=True)
    n_in = len(weights)
    onnx_path = _affine_onnx(d / "network.onnx", weights, bias, sigmoid, batch, n_inputs, relu_layer)
    rng = np.random.default_rng(0)
    per_input = batch * n_in
    calibration = {"input_data": [rng.uniform(-2, 2, 32 * per_input).tolist() for _ in range(n_inputs)]}
    (d / "calibration.json").write_text(json.dumps(calibration))

    run_args = ezkl.PyRunArgs()
    run_args.input_visibility, run_args.output_visibility, run_args.param_visibility = (
        inputs,
        "public",
        params,
    )
    run_args.input_scale = run_args.param_scale = SCALE
    run_args.decomp_base, run_args.decomp_legs = DECOMP_BASE, DECOMP_LEGS
    ezkl.gen_settings(str(onnx_path), str(d / "settings.json"), py_run_args=run_args)
    ezkl.calibrate_settings(
        str(d / "calibration.json"), str(onnx_path), str(d / "settings.json"), "resources", scales=[SCALE]
    )
    ezkl.compile_circuit(str(onnx_path), str(d / "network.compiled"), str(d / "settings.json"))
    os.link(srs, d / "kzg.srs")
    ezkl.setup(str(d / "network.compiled"), str(d / "vk.key"), str(d / "pk.key"), str(d / "kzg.srs"))
    settings = json.loads((d / "settings.json").read_text())

    input_shapes = [[1, n_in]] * n_inputs if n_inputs > 1 else [[batch, n_in]]
    output_shapes = [[batch * n_inputs, 1]]
    n_inputs_flat = sum(math.prod(s) for s in input_shapes)
    layout = {
        "input_hashes": n_inputs if inputs == "hashed" else 0,
        "param_hashes": 1 if params == "hashed" else 0,
        "inputs": n_inputs_flat if inputs == "public" else 0,
        "outputs": sum(math.prod(s) for s in output_shapes),
        "output_hashes": 0,
        "order": ["input_hashes", "param_hashes", "inputs", "outputs", "output_hashes"],
    }
    first = [[float(v) for v in x[:per_input]] for x in calibration["input_data"]]
    (d / "samples.jsonl").write_text(json.dumps({"input_data": first}) + "\n")
    files = (
        "network.onnx",
        "settings.json",
        "network.compiled",
        "vk.key",
        "pk.key",
        "samples.jsonl",
        "kzg.srs",
    )
    write_json_atomic(
        d / "manifest.json",
        {
            "schema": "zkinfer/manifest@1",
            "name": name,
            "zkinfer_version": __version__,
            "ezkl_version": EZKL_VERSION,
            "build_key": f"test-{name}",
            "artifacts": {f: {"sha256": sha256_file(d / f), "bytes": (d / f).stat().st_size} for f in files},
            "circuit": {
                "logrows": settings["run_args"]["logrows"],
                "batch_size": batch,
                "visibility": {"input": inputs, "output": "public", "param": params},
                "input_shapes": input_shapes,
                "output_shapes": output_shapes,
                "input_scales": settings["model_input_scales"],
                "output_scales": settings["model_output_scales"],
                "param_scale": SCALE,
                "num_instances": sum(v for k, v in layout.items() if k != "order"),
                "instance_layout": layout,
            },
            "srs": {
                "origin": "dev-generated, insecure",
                "insecure": True,
                "logrows": SRS_LOGROWS,
                "sha256": sha256_file(srs),
            },
        },
    )
    return TestCircuit(dir=d, name=name, input_shapes=input_shapes)


@pytest.fixture(scope="session")
def dev_srs(tmp_path_factory) -> Path:
    import ezkl

    path = tmp_path_factory.mktemp("srs") / f"kzg{SRS_LOGROWS}.srs"
    ezkl.gen_srs(str(path), SRS_LOGROWS)
    return path


@pytest.fixture(scope="session")
def circuits(tmp_path_factory, dev_srs) -> dict[str, TestCircuit]:
    """The session's circuits, stand-ins for zoo models with the same interfaces and chosen weights, so
    tests pick inputs for the outputs they need. credit (credit_risk): 4 features -> PD = sigmoid(w.x);
    credit_b: the same layout, other weights; inflation (inflation_forecast): a 6-month window -> a
    weighted mean (percent, may be negative); credit_hashed_k2: two borrowers per proof with private
    features and weights (Poseidon hashes; its verifier exceeds EIP-170); credit_k2: two borrowers per
    proof, public features."""
    root = tmp_path_factory.mktemp("circuits")
    credit = [1.0, 0.5, -0.5, 0.25]
    return {
        "credit": build_circuit(root, "credit", dev_srs, credit),
        "credit_b": build_circuit(root, "credit_b", dev_srs, [-w for w in credit]),
        "inflation": build_circuit(root, "inflation", dev_srs, INFLATION_WEIGHTS, sigmoid=False),
        "credit_hashed_k2": build_circuit(
            root,
            "credit_hashed_k2",
            dev_srs,
            credit,
            n_inputs=2,
            inputs="hashed",
            params="hashed",
            relu_layer=True,
        ),
        "credit_k2": build_circuit(root, "credit_k2", dev_srs, credit, batch=2),
    }


@pytest.fixture(scope="session")
def anvil(tmp_path_factory):
    """A real anvil node for the session (pinned npm package, mainnet limits), stopped at the end."""
    from pipeline import chain

    state = tmp_path_factory.mktemp("anvil-state")
    node = chain.chain_up(state=state)
    yield node
    chain.chain_down(state=state)
