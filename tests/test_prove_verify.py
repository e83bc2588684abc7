"""End to end on the tiny circuit: build -> prove -> verify -> tampered proof rejected -> modified artifact detected."""

import json
import shutil

import pytest

from pipeline import manifest as manifest_mod
from pipeline.errors import ArtifactMismatchError, InputError, ProofError
from pipeline.felt import FIELD_MODULUS
from pipeline.prooffile import evm_calldata
from pipeline.prove import Prover
from pipeline.verify import verify_proof

pytestmark = pytest.mark.slow


def test_valid_proof_verifies_and_outputs_match_the_model(tiny_circuit, tiny_proof, tiny_model):
    import numpy as np
    import onnxruntime as ort

    proof = json.loads(tiny_proof.read_text())
    for field in ("instances", "proof", "hex_proof", "outputs", "calldata", "zkinfer"):
        assert field in proof
    assert "pretty_public_inputs" not in proof  # ezkl's copy of the instances: dropped, nothing checks it
    assert proof["outputs_public"] is True
    assert proof["zkinfer"]["circuit_id"] == manifest_mod.load(tiny_circuit).circuit_id
    assert len(proof["calldata"]["instances"]) == 9 and proof["calldata"]["proof"] == proof["hex_proof"]

    sample = json.loads((tiny_circuit / "samples.jsonl").read_text().splitlines()[0])["input_data"]
    sess = ort.InferenceSession(str(tiny_model["onnx"]))
    expected = sess.run(None, {"x": np.asarray(sample, dtype=np.float32).reshape(1, 8)})[0].ravel()[0]
    assert abs(proof["outputs"][0][0] - expected) < 0.01

    result = verify_proof(tiny_circuit, tiny_proof)
    assert result.valid, result.reason
    assert result.outputs == proof["outputs"]


def _rewrite(proof: dict) -> dict:
    """Keep the convenience copies consistent so the Halo2 check itself is what rejects a tampering."""
    proof["hex_proof"] = "0x" + bytes(proof["proof"]).hex()
    proof["calldata"] = evm_calldata(proof)
    proof.pop("outputs", None)
    return proof


def test_tampered_output_instance_is_rejected(tiny_circuit, tiny_proof, tmp_path):
    proof = json.loads(tiny_proof.read_text())
    out = int.from_bytes(bytes.fromhex(proof["instances"][0][-1]), "little")
    proof["instances"][0][-1] = ((out + 1) % FIELD_MODULUS).to_bytes(32, "little").hex()  # a slightly better score
    (tmp_path / "t.json").write_text(json.dumps(_rewrite(proof)))
    result = verify_proof(tiny_circuit, tmp_path / "t.json")
    assert not result.valid and "not satisfied" in result.reason


def test_tampered_proof_bytes_are_rejected(tiny_circuit, tiny_proof, tmp_path):
    proof = json.loads(tiny_proof.read_text())
    proof["proof"][200] ^= 0x01
    (tmp_path / "t.json").write_text(json.dumps(_rewrite(proof)))
    assert not verify_proof(tiny_circuit, tmp_path / "t.json").valid


def test_inconsistent_copies_are_rejected(tiny_circuit, tiny_proof, tmp_path):
    proof = json.loads(tiny_proof.read_text())
    proof["outputs"] = [[0.01]]  # a file claiming a better score than it proves
    (tmp_path / "o.json").write_text(json.dumps(proof))
    r = verify_proof(tiny_circuit, tmp_path / "o.json")
    assert not r.valid and "outputs field does not match" in r.reason
    proof = json.loads(tiny_proof.read_text())
    proof["hex_proof"] = proof["hex_proof"][:-2] + ("00" if proof["hex_proof"][-2:] != "00" else "01")
    (tmp_path / "h.json").write_text(json.dumps(proof))
    r = verify_proof(tiny_circuit, tmp_path / "h.json")
    assert not r.valid and "hex_proof does not match" in r.reason


def test_modified_artifact_is_detected_before_use(tiny_circuit, tiny_proof, tmp_path):
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_circuit, copy)
    vk = copy / "vk.key"
    data = bytearray(vk.read_bytes())
    data[100] ^= 0xFF
    vk.write_bytes(bytes(data))
    with pytest.raises(ArtifactMismatchError, match=r"artifact modified: .*vk.key"):
        verify_proof(copy, tiny_proof)
    (copy / "pk.key").unlink()
    with pytest.raises(ArtifactMismatchError, match=r"artifact missing: .*pk.key"):
        Prover(copy)


def test_bad_inputs_fail_before_proving(tiny_circuit):
    prover = Prover(tiny_circuit)
    with pytest.raises(InputError, match=r"expects shape \[1, 8\] \(8 values\)"):
        prover.prove([[0.1] * 7])
    with pytest.raises(ProofError, match="outside the calibrated range"):
        prover.prove([[-60.0] * 8])  # would hang ezkl's prover if it got that far
