"""The local node, keys, deployments, proof-file submission, gas measurement and the CLI, on real anvil."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from onchain_helpers import address, expect_revert

from pipeline import bench, chain, cli
from pipeline.errors import ChainError, UsageError

pytestmark = pytest.mark.slow

# anvil's well-known dev account #1 (mnemonic "test test ... junk"): funded on every anvil, never real.
DEV_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEV_ADDRESS_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_node_is_stopped_from_another_process(tmp_path):
    node = chain.chain_up(state=tmp_path)
    try:
        assert node.alive and chain.local_chain(tmp_path) == node
        assert chain.chain_up(state=tmp_path).pid == node.pid  # already running: reused
        assert chain.Chain(node.rpc_url).chain_id == chain.LOCAL_CHAIN_ID
    finally:
        code = f"from pipeline import chain; print(chain.chain_down(state={str(tmp_path)!r}).pid)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == node.pid and not node.alive
    assert chain.local_chain(tmp_path) is None and chain.chain_down(state=tmp_path) is None


def test_unreachable_rpc_names_the_url():
    url = f"http://127.0.0.1:{chain._free_port()}"
    with pytest.raises(ChainError, match=f"cannot reach the RPC endpoint {url}"):
        chain.Chain(url)


@pytest.mark.parametrize("age", [0, 2**32])
def test_feature_age_outside_the_gates_uint32_is_a_usage_error(age, tmp_path):
    """Checked before anything is read or sent (the gate keeps maxFeatureAge in a uint32)."""
    with pytest.raises(UsageError, match=f"--max-feature-age {age}: give 1 to {2**32 - 1} seconds"):
        chain.deploy(tmp_path / "no-circuit", "http://127.0.0.1:1", max_feature_age=age)


def test_keys_come_from_the_environment_and_are_never_echoed(anvil, monkeypatch):
    monkeypatch.setenv(chain.PRIVATE_KEY_ENV, DEV_KEY_1)
    assert chain.Chain(anvil.rpc_url).account == DEV_ADDRESS_1
    bad = "0x" + "ab" * 31
    monkeypatch.setenv(chain.PRIVATE_KEY_ENV, bad)
    with pytest.raises(UsageError) as caught:
        chain.Chain(anvil.rpc_url)
    assert bad[2:] not in str(caught.value) and "ab" * 8 not in str(caught.value)


def test_dev_srs_circuits_stay_on_the_dev_chain(circuits, tmp_path, monkeypatch):
    monkeypatch.delenv(chain.PRIVATE_KEY_ENV, raising=False)
    testnet = chain.chain_up(chain_id=1337, state=tmp_path / "state")
    try:
        ddir = tmp_path / "deployments"
        credit = circuits["credit"].dir
        with pytest.raises(UsageError, match="refusing to deploy credit to chain 1337.*insecure SRS .dev-generated"):
            chain.deploy(credit, testnet.rpc_url, deployments_dir=ddir)
        with pytest.raises(UsageError, match="set ZKINFER_PRIVATE_KEY"):  # no dev accounts off 31337
            chain.deploy(credit, testnet.rpc_url, deployments_dir=ddir, allow_insecure_srs=True)
        assert not (ddir / "1337.json").exists()
        monkeypatch.setenv(chain.PRIVATE_KEY_ENV, DEV_KEY_1)
        d = chain.deploy(credit, testnet.rpc_url, deployments_dir=ddir, allow_insecure_srs=True)
        book = json.loads((ddir / "1337.json").read_text())
        assert d.chain_id == 1337 and book["models"]["credit"]["insecureSrs"]
        assert book["contracts"]["ModelRegistry"]["args"] == [DEV_ADDRESS_1]
    finally:
        chain.chain_down(state=tmp_path / "state")


def test_a_dev_srs_given_as_srs_is_refused_off_the_dev_chain(circuits, build_stand_in, tmp_path, monkeypatch):
    """The dev SRS itself passed as `--srs` is not a ceremony SRS (its sha256 is not the pinned public file's):
    the manifest records it as insecure, and deploy to a chain with id 1 (anvil started as mainnet) refuses it
    unless --allow-insecure-srs, through the library and the CLI (one line, exit 2)."""
    from pipeline import manifest

    dev_srs = manifest.load(circuits["credit"].dir).artifact(manifest.SRS)  # the cached gen_srs output
    c = build_stand_in("credit_given_srs", [1.0, 0.5, -0.5, 0.25], srs_path=dev_srs)
    m = manifest.load(c.dir)
    assert m.insecure_srs and m.srs["origin"] == "user-supplied, unverified (insecure)"
    monkeypatch.setenv(chain.PRIVATE_KEY_ENV, DEV_KEY_1)
    mainnet = chain.chain_up(chain_id=1, state=tmp_path / "state")
    try:
        ddir = tmp_path / "deployments"
        assert chain.Chain(mainnet.rpc_url).chain_id == 1
        with pytest.raises(UsageError, match=r"refusing to deploy credit_given_srs to chain 1: .*unverified"):
            chain.deploy(c.dir, mainnet.rpc_url, deployments_dir=ddir)
        result = subprocess.run([sys.executable, "-m", "pipeline.cli", "deploy", str(c.dir), "--rpc",
                                 mainnet.rpc_url, "--deployments", str(ddir)], capture_output=True, text=True)
        assert result.returncode == 2 and "refusing to deploy credit_given_srs" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (ddir / "1.json").exists()
        d = chain.deploy(c.dir, mainnet.rpc_url, deployments_dir=ddir, allow_insecure_srs=True)
        book = json.loads((ddir / "1.json").read_text())
        assert d.chain_id == 1 and book["models"]["credit_given_srs"]["insecureSrs"]
    finally:
        chain.chain_down(state=tmp_path / "state")


def test_node_keeps_the_mainnet_code_size_limit(anvil, circuits, tmp_path):
    with pytest.raises(ChainError, match="CreateContractSizeLimit"):
        chain.deploy(
            circuits["credit_hashed_k2"].dir,
            anvil.rpc_url,
            reusable=False,
            deployments_dir=tmp_path / "deployments",
        )


def test_deploy_post_and_submit_proof_files(anvil, circuits, tmp_path):
    ddir = tmp_path / "deployments"
    d = chain.deploy(circuits["credit"].dir, anvil.rpc_url, "lending", deployments_dir=ddir)
    book = json.loads((ddir / "31337.json").read_text())
    assert book["schema"] == "zkinfer/deployments@1" and book["chainId"] == 31337
    assert set(book["contracts"]) == {"ModelRegistry", "credit/Halo2Verifier", "credit/RiskAdjustedLending"}
    for record in book["contracts"].values():
        assert (ddir.parent / record["artifact"]).is_file()
        assert record["transactionHash"].startswith("0x") and record["gasUsed"] > 0
    model = book["models"]["credit"]
    assert model["modelId"] == d.model_id and model["gate"] == "credit/RiskAdjustedLending"

    proof = circuits["credit"].prove([[0.0, 0.0, 0.0, 0.0]], tmp_path / "proof.json")
    borrower = address("quinn")
    with pytest.raises(UsageError, match="--subject"):
        chain.submit([proof], anvil.rpc_url, deployments_dir=ddir)
    [posting] = chain.post_features([proof], anvil.rpc_url, subjects=[borrower], deployments_dir=ddir)
    assert posting.commitment == chain.feature_commitment(circuits["credit"].dir, [0.0, 0.0, 0.0, 0.0])
    [s] = chain.submit([proof], anvil.rpc_url, subjects=[borrower], deployments_dir=ddir)
    assert s.effects[0]["borrower"] == borrower and s.effects[0]["newRateBps"] == 950
    expect_revert(
        lambda: chain.submit([proof], anvil.rpc_url, subjects=[borrower], deployments_dir=ddir),
        "PostingAlreadyConsumed",
        subject="0x" + bytes(12).hex() + borrower[2:].lower(),
        postedAt=posting.posted_at,
    )

    # A proof of another version of the circuit is refused before any gas is spent.
    other = json.loads(proof.read_text())
    other["zkinfer"]["circuit_id"] = "ab" * 32
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(UsageError, match="prove with the deployed circuit"):
        chain.submit([tmp_path / "other.json"], anvil.rpc_url, subjects=[borrower], deployments_dir=ddir)


def test_gas_of_verification_and_of_each_gated_action(anvil, circuits, tmp_path):
    lending = bench.measure_gas(
        circuits["credit"].dir, circuits["credit"].prove([[0.0] * 4], tmp_path / "credit.json"), anvil.rpc_url
    )
    bond = bench.measure_gas(
        circuits["inflation"].dir,
        circuits["inflation"].prove([[4.0] * 6], tmp_path / "inflation.json"),
        anvil.rpc_url,
        consumer="bond",
    )
    for g in (lending, bond):
        assert 200_000 < g["verify_proof"] < g["submit"] < g["verify_proof"] + 150_000
        assert g["deploy"]["deploy_verifier"] > 1_000_000 and g["post_features"] > 0
    assert lending["effects"][0]["event"] == "RateUpdated" and bond["effects"][0]["event"] == "CouponAdjusted"
    assert lending["verifier_mode"] == bond["verifier_mode"] == "standard"  # both fit EIP-170
    print(json.dumps({"lending": lending, "bond": bond}, indent=2))


def test_cli_end_to_end(circuits, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(chain.STATE_DIR_ENV, str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)

    def run(*argv) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as ex:
            cli.main(list(argv))
        out, err = capsys.readouterr()
        return ex.value.code, out, err

    code, out, err = run("contracts", "build", str(circuits["credit"].dir))
    assert code == 0 and "Halo2Verifier" in out and "fits EIP-170" in out
    assert run("chain", "up")[0] == 0
    try:
        code, out, _ = run("deploy", str(circuits["credit"].dir))
        assert (
            code == 0
            and json.loads(out)["modelId"] >= 1
            and (tmp_path / "deployments" / "31337.json").exists()
        )
        proof = str(circuits["credit"].prove([[0.0] * 4], tmp_path / "p.json"))
        borrower = address("rue")
        assert run("post-features", proof, "--subject", borrower)[0] == 0
        code, out, _ = run("submit", proof, "--subject", borrower)
        assert code == 0 and json.loads(out)[0]["effects"][0]["newRateBps"] == 950
        code, _, err = run("submit", proof, "--subject", borrower)
        assert code == 1 and err.startswith("error: ") and "PostingAlreadyConsumed(subject=0x" in err
        assert "Traceback" not in err
        # The publisher withdraws a posting before anyone acts on it; nothing is left to withdraw after.
        sid = address("sid")
        assert run("post-features", proof, "--subject", sid)[0] == 0
        code, out, _ = run("withdraw-features", "credit", "--subject", sid)
        assert code == 0 and json.loads(out)[0].startswith("0x")
        code, _, err = run("submit", proof, "--subject", sid)
        assert code == 1 and "NoFeaturesPosted(subject=0x" in err
        code, _, err = run("withdraw-features", "credit", "--subject", sid)
        assert code == 1 and "NoOpenPosting(subject=0x" in err and "Traceback" not in err
    finally:
        code, out, _ = run("chain", "down")
    assert code == 0 and "stopped anvil" in out
    code, _, err = run("submit", "p.json")
    assert code == 2 and "zkinfer chain up" in err


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return ex.value.code, out, err


def test_cli_verifier_modes(anvil, circuits, narrow_hashed, tmp_path, capsys):
    # auto: every verifier tried is listed, and which was picked.
    code, out, _ = run_cli(capsys, "contracts", "build", str(narrow_hashed.dir))
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert code == 0 and "over EIP-170's limit" in lines["Halo2Verifier"]
    assert "(fits EIP-170; split-vk picked)" in lines["Halo2VerifierSplitVk"]
    assert "vk_data.json" in lines["Halo2VerifierVkData"]

    credit = str(circuits["credit"].dir)
    code, out, _ = run_cli(capsys, "contracts", "build", credit, "--verifier", "split-vk")
    assert code == 0 and "Halo2VerifierSplitVk" in out and "Halo2VerifierVkData" in out
    code, out, _ = run_cli(capsys, "contracts", "build", credit, "--reusable")
    assert code == 0 and "Halo2VerifierReusable" in out and "VKA" in out

    # Contradictions and unknown modes are usage errors, before any chain is contacted.
    code, _, err = run_cli(capsys, "deploy", credit, "--verifier", "split-vk", "--reusable")
    assert (code, err) == (2, "error: --reusable contradicts --verifier split-vk: give one of them\n")
    code, _, err = run_cli(capsys, "deploy", credit, "--verifier", "split")
    assert code == 2 and "Invalid value for '--verifier'" in err and "Traceback" not in err

    ddir = tmp_path / "deployments"
    code, out, _ = run_cli(
        capsys, "deploy", credit, "--verifier", "split-vk", "--rpc", anvil.rpc_url, "--deployments", str(ddir)
    )
    d = json.loads(out)
    assert code == 0 and d["verifierMode"] == "split-vk" and d["vkData"].startswith("0x")
    assert d["gas"]["deploy_vk_data"] > 0
    book = json.loads((ddir / "31337.json").read_text())
    assert book["contracts"]["credit/Halo2VerifierSplitVk"]["args"] == [d["vkData"]]
