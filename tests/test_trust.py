"""What a circuit directory and a proof file can be trusted for: a reproducible identity, an authenticated
manifest, artifacts checked before use, an SRS that is what it says, proof files that claim nothing the
proof does not prove and leak no digest of private inputs."""

import json
import math
import shutil
import subprocess
import sys

import pytest
from model_helpers import make_mlp_onnx, write_input_file

from pipeline import manifest as manifest_mod
from pipeline import require_ezkl, srs
from pipeline.build import BuildOptions, build_circuit
from pipeline.compile import Visibility
from pipeline.errors import ArtifactMismatchError, UsageError
from pipeline.prove import Prover
from pipeline.verify import verify_proof

pytestmark = pytest.mark.slow


def zkinfer(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True)


def copy_circuit(src, dst):
    shutil.copytree(src, dst)
    manifest_mod.forget_verification_cache()
    return dst


def test_identity_is_content_only(tiny_model, tiny_circuit, tmp_path):
    """The same inputs rebuilt in another folder, or forced, give the same circuit id; timings and paths
    differ and do not count."""
    original = manifest_mod.load(tiny_circuit)
    moved = tmp_path / "elsewhere" / "model.onnx"
    moved.parent.mkdir()
    shutil.copyfile(tiny_model["onnx"], moved)
    again = build_circuit(moved, tiny_model["calibration"], tmp_path / "other",
                          BuildOptions(name="tiny", task="classification"), tiny_model["validation"], force=True)
    assert again.rebuilt and again.manifest.circuit_id == original.circuit_id
    assert again.manifest.data["timings_s"] != original.data["timings_s"]
    assert again.manifest.data["source"]["onnx"] != original.data["source"]["onnx"]
    assert again.manifest.sha256 != original.sha256  # the file differs; the identity does not
    other_options = build_circuit(moved, tiny_model["calibration"], tmp_path / "hashed",
                                  BuildOptions(visibility=Visibility(input="hashed"), max_attempts=1))
    assert other_options.manifest.circuit_id != original.circuit_id


def test_edited_manifest_is_refused_before_use(tiny_circuit, tmp_path):
    c = copy_circuit(tiny_circuit, tmp_path / "c")
    path = c / "manifest.json"
    data = json.loads(path.read_text())
    data["circuit"]["output_scales"] = [data["circuit"]["output_scales"][0] + 10]
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactMismatchError, match="manifest.json was modified: its content gives circuit id"):
        Prover(c)
    # Updating the recorded id as well leaves the manifest contradicting settings.json.
    data["circuit_id"] = manifest_mod.circuit_id(data, json.loads((c / "settings.json").read_text()))
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactMismatchError, match="disagrees with settings.json on output_scales"):
        manifest_mod.load(c)
    path.write_bytes(b"{\"schema\": \"\xff\xfe\"}")
    r = zkinfer("verify", c, tmp_path / "p.json")
    assert r.returncode == 2 and "is not UTF-8 text" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", ["network.onnx", "source.onnx", "settings.json", "vk.key"])
def test_every_artifact_a_step_uses_is_checked(tiny_circuit, tiny_proof, tmp_path, name):
    c = copy_circuit(tiny_circuit, tmp_path / "c")
    target = c / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(UsageError, match=name):
        verify_proof(c, tiny_proof)


@pytest.mark.parametrize("edit, reason", [
    (lambda p: (p["outputs"][0].__setitem__(0, 0.5), p.__setitem__("outputs_public", False)), "outputs_public says"),
    (lambda p: (p["outputs"][0].__setitem__(0, 0.5), p.pop("outputs_public")), "outputs field does not match"),
    (lambda p: p["outputs"][0].__setitem__(0, math.nan), "outputs field does not match"),
    (lambda p: p.__setitem__("pretty_public_inputs", {"rescaled_outputs": [["0.5"]]}), "pretty_public_inputs"),
    (lambda p: (p["proof"].extend([0] * 32), p.__setitem__("hex_proof", p["hex_proof"] + "00" * 32),
                p["calldata"].__setitem__("proof", p["hex_proof"])), "trailing bytes"),
])
def test_verify_trusts_the_circuit_not_the_file(tiny_circuit, tiny_proof, tmp_path, edit, reason):
    proof = json.loads(tiny_proof.read_text())
    edit(proof)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(proof, allow_nan=True))
    result = verify_proof(tiny_circuit, path)
    assert not result.valid and reason in result.reason
    assert verify_proof(tiny_circuit, tiny_proof).valid


def test_private_inputs_and_outputs_leave_no_trace_in_proof_files(tmp_path):
    onnx_path = make_mlp_onnx(tmp_path / "m.onnx", n_in=4, hidden=4)
    import numpy as np

    cal = write_input_file(tmp_path / "cal.json", np.random.default_rng(0).uniform(-1, 1, (16, 4)))
    built = build_circuit(onnx_path, cal, tmp_path / "c",
                          BuildOptions(visibility=Visibility(input="hashed", output="private"), max_attempts=1))
    prover = Prover(built.manifest.dir)
    proof = prover.prove([[0.1, 0.2, 0.3, 0.4]], tmp_path / "p.json")
    assert "input_sha256" not in proof["zkinfer"] and "outputs" not in proof
    assert "pretty_public_inputs" not in proof and proof["outputs_public"] is False
    assert prover.last_outputs and len(prover.last_outputs[0]) == 1  # the prover still sees its own output
    assert verify_proof(built.manifest.dir, tmp_path / "p.json").valid
    proof["outputs"] = prover.last_outputs
    (tmp_path / "leaky.json").write_text(json.dumps(proof))
    result = verify_proof(built.manifest.dir, tmp_path / "leaky.json")
    assert not result.valid and "outputs the circuit keeps private" in result.reason

    from pipeline.jobs import run_batch

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"input_data": [[0.1, 0.2, 0.3, 0.4]]}) + "\n")
    first = run_batch(built.manifest.dir, rows, tmp_path / "run1")
    second = run_batch(built.manifest.dir, rows, tmp_path / "run2")
    files = [next((d / "proofs").glob("*.json")) for d in (tmp_path / "run1", tmp_path / "run2")]
    assert first.proved == second.proved == 1
    # Each store names the same private input under its own secret: no id confirms a guess.
    assert files[0].name != files[1].name


def test_srs_given_is_trusted_only_when_it_is_the_ceremony_file(tiny_model, tiny_circuit, tmp_path):
    """A dev SRS handed over with --srs stays insecure (so deploy refuses it off the local chain)."""
    dev = srs.dev_srs(manifest_mod.load(tiny_circuit).circuit["logrows"])
    built = build_circuit(tiny_model["onnx"], tiny_model["calibration"], tmp_path / "c",
                          BuildOptions(name="tiny", task="classification", srs_path=dev.path),
                          tiny_model["validation"])
    m = built.manifest
    assert m.insecure_srs and m.srs["origin"] == srs.UNVERIFIED_ORIGIN and m.srs["sha256"] == dev.sha256


def test_installed_ezkl_version_is_checked():
    require_ezkl()
    with pytest.raises(ArtifactMismatchError, match="needs ezkl 0.0.1, but this machine has ezkl 23.0.5"):
        require_ezkl("0.0.1", "circuit x")
