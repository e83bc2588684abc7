"""`zkinfer audit` on a real anvil: a fresh deployment audited from its published artifacts alone (copied into a
folder of their own, rebuilt in a scratch folder) passes; each artifact that differs, and a model id that points
at another model, fails naming the mismatch; the CLI's exit codes; `--events` decodes a gate's actions.

The circuits are built here (not the session's `circuits`): one fixed-weight model and its mirror image, and one
with hashed inputs and weights deployed with each verifier mode that has immutables (split-vk, reusable).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import build_circuit
from onchain_helpers import address

from pipeline import chain, cli
from pipeline.audit import audit, events, events_text

pytestmark = pytest.mark.slow

CREDIT = [1.0, 0.5, -0.5, 0.25]
PUBLISHED = ("network.onnx", "settings.json", "manifest.json", "kzg.srs")


def publish(circuit_dir: Path, dest: Path, files=PUBLISHED) -> Path:
    """What an owner publishes: a folder of its own holding copies (no keys, no compiled circuit)."""
    dest.mkdir(parents=True)
    for name in files:
        shutil.copyfile(circuit_dir / name, dest / name)
    return dest


def failed(report) -> set[str]:
    return {c.name for c in report.failures}


@pytest.fixture(scope="module")
def deployed(anvil, tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    credit = build_circuit(root, "credit", CREDIT)
    other = build_circuit(root, "credit_b", [-w for w in CREDIT])
    ddir = root / "deployments"
    d = chain.deploy(credit.dir, anvil.rpc_url, "lending", deployments_dir=ddir)
    d_other = chain.deploy(other.dir, anvil.rpc_url, "lending", deployments_dir=ddir)
    return SimpleNamespace(root=root, credit=credit, other=other, book=d.deployments_file, model_id=d.model_id,
                           other_id=d_other.model_id, rpc=anvil.rpc_url)


def test_a_fresh_deployment_passes(deployed, tmp_path):
    pub = publish(deployed.credit.dir, tmp_path / "published")
    r = audit(pub, deployed.rpc, deployments=deployed.book, scratch_dir=tmp_path)
    assert r.passed and r.exit_code == 0, r.text()
    assert r.model_id == deployed.model_id  # the deployments file's entry for the manifest's circuit
    for name in ("vk vs registry", "vk vs manifest", "manifest identity", "circuit id vs registry", "verifier code",
                 "circuit description", "weight commitment", "instance layout", "registry code", "model active",
                 "accepting gates"):
        assert r.check(name).ok, r.check(name).line()
    assert "byte for byte incl. solc metadata" in r.check("verifier code").detail
    assert "RiskAdjustedLending" in r.check("accepting gates").detail
    srs = r.check("srs ceremony")  # a dev SRS: a warning on 31337, not a failure
    assert not srs.ok and srs.severity == "warning" and "31337" in srs.detail
    assert "WARN  srs ceremony" in r.text() and r.text().endswith("1 warning(s))")
    assert not any(tmp_path.glob("zkinfer-audit-*"))  # the scratch folder is gone


def _other_network(d, pub):
    shutil.copyfile(d.other.dir / "network.onnx", pub / "network.onnx")


def _other_settings(d, pub):
    s = json.loads((pub / "settings.json").read_text())
    s["run_args"]["decomp_legs"] += 1  # a wider range check: another circuit, still compiles
    (pub / "settings.json").write_text(json.dumps(s))


def _edited_manifest(d, pub):
    m = json.loads((pub / "manifest.json").read_text())
    m["srs"]["origin"] = "ceremony"  # claims a ceremony SRS: the content no longer gives its id
    (pub / "manifest.json").write_text(json.dumps(m, indent=2))


def _self_consistent_lie(d, pub):
    """A manifest claiming another output scale, its circuit id recomputed to match: only the rebuilt circuit
    (and the registry's record) can tell."""
    from pipeline import manifest as manifest_mod

    m = json.loads((pub / "manifest.json").read_text())
    m["circuit"]["output_scales"] = [m["circuit"]["output_scales"][0] + 1]
    m["circuit_id"] = manifest_mod.circuit_id(m, json.loads((pub / "settings.json").read_text()))
    (pub / "manifest.json").write_text(json.dumps(m, indent=2))


def _other_srs(d, pub):
    import ezkl

    logrows = json.loads((pub / "settings.json").read_text())["run_args"]["logrows"]
    (pub / "kzg.srs").unlink()
    ezkl.gen_srs(str(pub / "kzg.srs"), logrows)  # another dev SRS of the same size: other keys


@pytest.mark.parametrize("change, expected", [
    (_other_network, {"network.onnx", "vk vs manifest", "vk vs registry", "manifest identity",
                      "circuit id vs registry", "verifier code"}),
    (_other_settings, {"settings.json", "vk vs manifest", "vk vs registry", "manifest identity",
                       "circuit id vs registry", "verifier code"}),
    (_edited_manifest, {"manifest identity", "circuit id vs registry"}),
    (_self_consistent_lie, {"circuit description", "circuit id vs registry", "instance layout"}),
    (_other_srs, {"srs file", "vk vs manifest", "vk vs registry", "manifest identity", "circuit id vs registry",
                  "verifier code"}),
], ids=["network.onnx", "settings.json", "manifest.json", "manifest-recomputed-id", "srs"])
def test_a_differing_artifact_fails_naming_it(deployed, tmp_path, change, expected):
    pub = publish(deployed.credit.dir, tmp_path / "published")
    change(deployed, pub)
    r = audit(pub, deployed.rpc, deployments=deployed.book, model_id=deployed.model_id)
    assert r.exit_code == 1
    assert failed(r) == expected, r.text()
    assert r.text().splitlines()[-1].startswith("result: FAIL")


def test_a_model_id_of_another_model_fails(deployed, tmp_path):
    pub = publish(deployed.credit.dir, tmp_path / "published")
    r = audit(pub, deployed.rpc, deployments=deployed.book, model_id=deployed.other_id)
    assert failed(r) == {"vk vs registry", "circuit id vs registry", "verifier code"}, r.text()
    assert "is not Halo2Verifier compiled here" in r.check("verifier code").detail
    r = audit(pub, deployed.rpc, deployments=deployed.book, model_id=999)
    assert failed(r) == {"registry record"} and "UnknownModel" in r.check("registry record").detail
    r = audit(pub, deployed.rpc, registry=address("no-registry-here"), model_id=deployed.model_id)
    assert failed(r) == {"registry code", "registry record"}, r.text()


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return ex.value.code, out, err


def test_cli_exit_codes(deployed, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # another folder than the one that built and deployed
    pub = publish(deployed.credit.dir, tmp_path / "published")
    rpc = ("--rpc", deployed.rpc)
    code, out, err = run_cli(capsys, "audit", pub, *rpc, "--deployments", deployed.book)
    assert code == 0 and "result: PASS" in out and "FAIL" not in out, out + err
    code, out, _ = run_cli(capsys, "audit", pub, *rpc, "--deployments", deployed.book.parent, "--model-id",
                           deployed.other_id)
    assert code == 1 and "FAIL  vk vs registry" in out and "result: FAIL" in out

    # Usage errors: one line, exit 2, no traceback.
    srs_only = publish(deployed.credit.dir, tmp_path / "srs-identity", PUBLISHED[:3])
    for argv, says in [
        ((tmp_path / "nowhere", *rpc, "--deployments", deployed.book), "artifacts folder not found"),
        ((pub, *rpc), "no registry"),
        ((pub, *rpc, "--deployments", tmp_path / "none.json"), "deployments file not found"),
        ((srs_only, *rpc, "--deployments", deployed.book), "give that file with --srs FILE"),
        ((pub, *rpc, "--registry", "0x1234", "--model-id", 1), "is not an address"),
        ((pub, *rpc, "--deployments", deployed.book, "--model-id", 0), "--model-id"),
        ((*rpc, "--deployments", deployed.book), "ARTIFACTS"),
    ]:
        code, _, err = run_cli(capsys, "audit", *argv)
        assert code == 2 and says in err and "Traceback" not in err, (argv, err)

    # Only the SRS's identity is published: the auditor brings the file, checked against the manifest's sha256.
    code, out, _ = run_cli(capsys, "audit", srs_only, *rpc, "--deployments", deployed.book, "--srs",
                           deployed.credit.dir / "kzg.srs")
    assert code == 0 and "PASS  srs file" in out
    # With a registry address and a model id alone (no deployments file).
    registry = json.loads(deployed.book.read_text())["contracts"]["ModelRegistry"]["address"]
    code, out, _ = run_cli(capsys, "audit", pub, *rpc, "--registry", registry, "--model-id", deployed.model_id)
    assert code == 0 and "result: PASS" in out


def test_events_list_each_action_with_decoded_outputs(deployed, tmp_path, capsys):
    features = [0.5, -1.0, 0.25, 2.0]
    proof = deployed.credit.prove([features], tmp_path / "proof.json")
    borrower = address("audited-borrower")
    ddir = deployed.book.parent
    chain.post_features([proof], deployed.rpc, subjects=[borrower], deployments_dir=ddir)
    [s] = chain.submit([proof], deployed.rpc, subjects=[borrower], deployments_dir=ddir)

    actions = events(deployed.rpc, deployments=deployed.book, model_id=deployed.model_id)
    [a] = [a for a in actions if a["transaction"] == s.transaction_hash]
    proven = json.loads(proof.read_text())["outputs"]
    assert np.allclose(a["outputs"], [proven[0]]) and a["outputs"][0][0] > 0.5  # PD = sigmoid(1.375)
    assert a["subjects"] == ["0x" + "00" * 12 + borrower[2:].lower()]
    assert a["statementKey"] == s.statement_key and a["modelId"] == deployed.model_id
    assert {"event": "RateUpdated", "borrower": borrower, "newRateBps": s.effects[0]["newRateBps"]} in a["effects"]
    assert events(deployed.rpc, deployments=deployed.book, model_id=deployed.other_id) == []

    code, out, _ = run_cli(capsys, "audit", "--events", "--rpc", deployed.rpc, "--deployments", deployed.book,
                           "--model-id", deployed.model_id)
    assert code == 0 and s.transaction_hash in out and "proven outputs" in out and "RateUpdated(" in out
    assert out.strip() == events_text(actions)


@pytest.fixture(scope="module")
def hashed(anvil, tmp_path_factory):
    """Hashed inputs and weights, two borrowers per proof, one advice column (so that its split-vk verifier fits
    EIP-170): deployed with a split-vk verifier and, apart, with ezkl's reusable verifier (both have immutables)."""
    root = tmp_path_factory.mktemp("audit-hashed")
    c = build_circuit(root, "credit_hashed", CREDIT, n_inputs=2, inputs="hashed", params="hashed", relu_layer=True,
                      num_inner_cols=1)
    books = {}
    for mode in ("split-vk", "reusable"):
        d = chain.deploy(c.dir, anvil.rpc_url, "lending", verifier_mode=mode, deployments_dir=root / mode)
        books[mode] = d.deployments_file
    return SimpleNamespace(circuit=c, books=books, rpc=anvil.rpc_url)


@pytest.mark.parametrize("mode", ["split-vk", "reusable"])
def test_verifiers_with_immutables_and_the_weight_commitment(hashed, tmp_path, mode):
    pub = publish(hashed.circuit.dir, tmp_path / "published")
    r = audit(pub, hashed.rpc, deployments=hashed.books[mode])
    assert r.passed, r.text()
    assert "immutable(s)" in r.check("verifier code").detail
    extra = {"split-vk": ["vk data contract"], "reusable": ["reusable verifier code", "vka"]}[mode]
    for name in extra:
        assert r.check(name).ok, r.check(name).line()
    assert "param hash(es) a witness of the rebuilt circuit carries" in r.check("weight commitment").detail


def test_other_weights_fail_the_weight_commitment(hashed, tmp_path):
    """With hashed weights the verifying key does not depend on their values: only the weight commitment (and
    the graph's hash) tell other weights apart."""
    import onnx
    from onnx import numpy_helper

    pub = publish(hashed.circuit.dir, tmp_path / "published")
    model = onnx.load(str(pub / "network.onnx"))
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size == len(CREDIT):
            init.CopyFrom(numpy_helper.from_array(a * -1.0, init.name))
    onnx.save(model, str(pub / "network.onnx"))
    r = audit(pub, hashed.rpc, deployments=hashed.books["split-vk"])
    assert failed(r) == {"network.onnx", "manifest identity", "circuit id vs registry", "weight commitment"}, r.text()
    assert r.check("vk vs registry").ok and r.check("verifier code").ok
