"""Fixtures for the on-chain tests: tiny real circuits, real proofs, a real anvil.

The circuits are stand-ins for the zoo models with chosen weights (so tests can pick inputs for the outputs
they need), built by zkinfer's own build and proven by its own prover. A small scale and decomposition base
keep every circuit at logrows 9-11: each builds and proves in about a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from onchain_helpers import LENDING_TERMS, MAX_AGE

SCALE = 7
DECOMP_BASE, DECOMP_LEGS = 256, 4
BOX = 4.0  # every test feature lies in [-BOX, BOX]
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
    stacked: tuple[int, int] = (1, 1),
) -> Path:
    """y = [sigmoid](x @ weights + bias) on [batch, n] rows, optionally behind an identity-weight ReLU layer
    (relu(x) = x on non-negative features: same outputs, a bigger circuit). With n_inputs > 1 the model
    takes that many separate [1, n] inputs (one tensor, hence one Poseidon hash, per subject).
    `stacked` = (input tensors, output tensors), each of `batch` rows: the features split by columns into
    that many [batch, n / c] inputs, and a second output 1 - y (sigmoid(-z)) beside y."""
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
    n_columns, n_outputs = stacked
    if n_inputs > 1:
        nodes.insert(0, helper.make_node("Concat", [f"x{i}" for i in range(n_inputs)], ["x"], axis=0))
        inputs = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [1, n]) for i in range(n_inputs)]
    elif n_columns > 1:
        nodes.insert(0, helper.make_node("Concat", [f"x{i}" for i in range(n_columns)], ["x"], axis=1))
        inputs = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [batch, n // n_columns])
                  for i in range(n_columns)]
    else:
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n])]
    rows = batch * n_inputs
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, 1])]
    if n_outputs > 1:
        nodes += [helper.make_node("Neg", ["z"], ["nz"]), helper.make_node("Sigmoid", ["nz"], ["y2"])]
        outputs.append(helper.make_tensor_value_info("y2", TensorProto.FLOAT, [rows, 1]))
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, inits)
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

    def prove(self, features: list[list[float]], out: Path, salts: list[str] | None = None) -> Path:
        """Prove one input (one flat list per input tensor) with zkinfer's prover; writes the proof file.
        Hashed inputs take one salt per slot: by default each slot's `salt_for` its features."""
        from onchain_helpers import salt_for

        from pipeline.prove import Prover

        out.parent.mkdir(parents=True, exist_ok=True)
        prover = Prover(self.dir)
        if prover.blinding and salts is None:
            salts = [salt_for(row[0]) for row in prover.slots.unpack(features)]
        prover.prove(features, out, salts=salts)
        return out


def build_circuit(
    root: Path,
    name: str,
    weights: list[float],
    bias: float = 0.0,
    *,
    sigmoid: bool = True,
    batch: int = 1,
    n_inputs: int = 1,
    inputs: str = "public",
    params: str = "fixed",
    relu_layer: bool = False,
    num_inner_cols: int | None = None,
    stacked: tuple[int, int] = (1, 1),
    srs_path: Path | None = None,
) -> TestCircuit:
    """Build a stand-in model with zkinfer's own build (fidelity gate, keys, manifest); see `_affine_onnx`.
    `srs_path`: an SRS file given as `--srs` (default: the cached dev SRS)."""
    from pipeline.build import BuildOptions
    from pipeline.build import build_circuit as zk_build
    from pipeline.compile import CalibrationAttempt, CircuitArgs, Visibility
    from pipeline.fidelity import Tolerance

    d = root / name
    src = root / f"{name}.src"
    src.mkdir(parents=True)
    n_in = len(weights)
    onnx_path = _affine_onnx(src / "network.onnx", weights, bias, sigmoid, batch, n_inputs, relu_layer, stacked)
    # Calibrate over the whole input box the tests use, [-BOX, BOX] per feature: random samples plus the two
    # corners that push the output furthest each way (the prover refuses inputs outside the calibrated range).
    rng = np.random.default_rng(0)
    corner = np.sign(weights) * BOX
    rows = np.vstack([corner, -corner, rng.uniform(-BOX, BOX, (30, n_in))])
    calibration = {"input_data": [np.tile(rows, (1, batch)).ravel().tolist() for _ in range(n_inputs)]}
    if stacked[0] > 1:  # each input holds its own columns of every row
        calibration["input_data"] = [np.tile(cols, (1, batch)).ravel().tolist()
                                     for cols in np.split(rows, stacked[0], axis=1)]
    (src / "calibration.json").write_text(json.dumps(calibration))
    options = BuildOptions(
        name=name,
        visibility=Visibility(input=inputs, output="public", param=params),
        batch_size=batch * n_inputs,
        ladder=(CalibrationAttempt(target="resources", scales=(SCALE,)),),
        # Scale 7 rounds weights and inputs to 1/128: over six features of up to 4 that adds up to ~0.06.
        # These stand-ins accept that; the zoo models declare (and meet) far tighter tolerances.
        tolerance=Tolerance(max_abs_error=0.1),
        circuit_args=CircuitArgs(
            decomp_base=DECOMP_BASE, decomp_legs=DECOMP_LEGS, num_inner_cols=num_inner_cols
        ),
        srs_path=srs_path,
    )
    zk_build(onnx_path, src / "calibration.json", d, options)
    input_shapes = [[1, n_in]] * n_inputs if n_inputs > 1 else [[batch, n_in]]
    return TestCircuit(dir=d, name=name, input_shapes=input_shapes)


@pytest.fixture(scope="session")
def circuits(tmp_path_factory) -> dict[str, TestCircuit]:
    """The session's circuits, stand-ins for zoo models with the same interfaces and chosen weights, so
    tests pick inputs for the outputs they need. credit (credit_risk): 4 features -> PD = sigmoid(w.x);
    credit_b: the same layout, other weights; inflation (inflation_forecast): a 6-month window -> a
    weighted mean (percent, may be negative); credit_hashed_k2: two borrowers per proof with private
    features and weights (Poseidon hashes; its verifier exceeds EIP-170); credit_k2: two borrowers per
    proof, public features."""
    root = tmp_path_factory.mktemp("circuits")
    credit = [1.0, 0.5, -0.5, 0.25]
    return {
        "credit": build_circuit(root, "credit", credit),
        "credit_b": build_circuit(root, "credit_b", [-w for w in credit]),
        "inflation": build_circuit(root, "inflation", INFLATION_WEIGHTS, sigmoid=False),
        "credit_hashed_k2": build_circuit(
            root,
            "credit_hashed_k2",
            credit,
            n_inputs=2,
            inputs="hashed",
            params="hashed",
            relu_layer=True,
        ),
        "credit_k2": build_circuit(root, "credit_k2", credit, batch=2),
    }


@pytest.fixture(scope="session")
def narrow_hashed(tmp_path_factory) -> TestCircuit:
    """credit_hashed_k2 with one advice column per operation instead of two: a taller, narrower circuit
    whose standard verifier is just over EIP-170 (25,227 bytes) while its split-vk verifier fits. Apart from
    `circuits` so that only the tests that need it build it."""
    return build_circuit(
        tmp_path_factory.mktemp("narrow"),
        "credit_hashed_k2_c1",
        [1.0, 0.5, -0.5, 0.25],
        n_inputs=2,
        inputs="hashed",
        params="hashed",
        relu_layer=True,
        num_inner_cols=1,
    )


@pytest.fixture(scope="session")
def one_hash_k2(tmp_path_factory) -> TestCircuit:
    """Two borrowers per proof in one [2, 4] input with hashed visibility: one Poseidon hash for both rows
    (what a plain `--batch 2 --input-visibility hashed` build of a one-input model gives)."""
    return build_circuit(
        tmp_path_factory.mktemp("one-hash"), "one_hash_k2", [1.0, 0.5, -0.5, 0.25], batch=2, inputs="hashed"
    )


@pytest.fixture
def build_stand_in(tmp_path_factory):
    """Builds one more stand-in on demand, `build_circuit(root, name, weights, **options)` in a folder of its
    own: for the circuits only one test needs (e.g. those deploy refuses)."""
    return lambda name, weights, **options: build_circuit(tmp_path_factory.mktemp(name), name, weights, **options)


@pytest.fixture(scope="session")
def anvil(tmp_path_factory):
    """A real anvil node for the session (pinned npm package, mainnet limits), stopped at the end."""
    from pipeline import chain

    state = tmp_path_factory.mktemp("anvil-state")
    node = chain.chain_up(state=state)
    yield node
    chain.chain_down(state=state)


@pytest.fixture(scope="module")
def env(anvil, circuits, tmp_path_factory):
    """Lending gates for `credit` (model A) and `credit_b` (model B, same layout), and a bond gate for
    `inflation`, all registered in one registry. One per test module (its own deployments and state)."""
    from pipeline import chain, evm

    ddir = tmp_path_factory.mktemp("lending") / "deployments"
    rpc = anvil.rpc_url
    a = chain.deploy(
        circuits["credit"].dir,
        rpc,
        "lending",
        deployments_dir=ddir,
        terms=LENDING_TERMS,
        max_feature_age=MAX_AGE,
    )
    b = chain.deploy(circuits["credit_b"].dir, rpc, "lending", deployments_dir=ddir, terms=LENDING_TERMS)
    i = chain.deploy(circuits["inflation"].dir, rpc, "bond", deployments_dir=ddir)
    c = chain.Chain(rpc)
    registry = c.contract(a.registry_address, evm.contract_artifact("ModelRegistry")["abi"])
    return SimpleNamespace(
        chain=c,
        w3=c.w3,
        ddir=ddir,
        a=a,
        b=b,
        i=i,
        registry=registry,
        gate=chain.open_gate(c, "credit", ddir),
        proofs=tmp_path_factory.mktemp("proofs"),
        circuits=circuits,
        proof_cache={},
    )
