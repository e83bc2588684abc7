"""The split-vk verifier on a real anvil with real proofs: it accepts what the standard verifier accepts, and
only with the data contract holding the exact verifying key it was generated with."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from onchain_helpers import address, load

from pipeline import chain, evm
from pipeline.errors import ChainError, UsageError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def split(anvil, circuits, tmp_path_factory):
    """credit's standard and split-vk verifiers, its key's data contract, and credit_b's (another key)."""
    c = chain.Chain(anvil.rpc_url)
    builds = {n: evm.build_verifier(circuits[n].dir, mode="split-vk") for n in ("credit", "credit_b")}
    data = {n: evm.load_vk_data(vb.vk_data_path) for n, vb in builds.items()}
    vk_data = {n: c.deploy_code(bytes.fromhex(d["initcode"][2:]), evm.VK_DATA_CONTRACT) for n, d in data.items()}
    proof = load(circuits["credit"].prove([[0.5, -1.0, 0.25, 2.0]], tmp_path_factory.mktemp("split") / "p.json"))
    standard = evm.build_verifier(circuits["credit"].dir)
    return SimpleNamespace(
        chain=c,
        build=builds["credit"],
        data=data,
        vk_data=vk_data,
        proof=proof,
        artifact=evm.load_artifact(builds["credit"].artifact_path),
        standard=c.deploy(evm.load_artifact(standard.artifact_path), []),
        standard_abi=evm.load_artifact(standard.artifact_path)["abi"],
    )


def verifier(split, vk_data_address: str):
    d = split.chain.deploy(split.artifact, [vk_data_address])
    return split.chain.contract(d.address, split.artifact["abi"])


def verify(split, contract, instances=None):
    calldata = split.proof["calldata"]
    instances = [int(x, 16) for x in calldata["instances"]] if instances is None else instances
    return contract.functions.verifyProof(bytes.fromhex(calldata["proof"][2:]), instances)


def rejects(split, contract, instances=None) -> None:
    """The verifier reverts (without data: ezkl's verifier just says no)."""
    with pytest.raises(ChainError, match=r"verifying failed: .*execution reverted"):
        split.chain.call(verify(split, contract, instances), "verifying")


def test_data_contract_code_is_a_stop_byte_then_the_key(split):
    data = split.data["credit"]
    code = split.chain.code(split.vk_data["credit"].address)
    assert code == bytes.fromhex(data["deployedBytecode"][2:]) and code[0] == 0 and len(code) == data["vkBytes"] + 1
    # Calling it runs STOP: nothing happens, nothing is returned.
    assert split.chain.w3.eth.call({"to": split.vk_data["credit"].address, "data": "0x12345678"}) == b""


def test_accepts_a_valid_proof_and_rejects_tampered_instances(split):
    v = verifier(split, split.vk_data["credit"].address)
    assert split.chain.call(verify(split, v), "verifying") is True
    instances = [int(x, 16) for x in split.proof["calldata"]["instances"]]
    tampered = instances[:-1] + [instances[-1] + 1]  # the proven PD, one unit up
    rejects(split, v, tampered)


def flipped_key_data(split, word: int) -> str:
    """A data contract holding credit's key with one bit of word `word` flipped; returns its address."""
    vk = bytearray(bytes.fromhex(split.data["credit"]["deployedBytecode"][4:]))
    vk[32 * word + 31] ^= 0x01
    return split.chain.deploy_code(evm.vk_data_initcode(bytes(vk)), evm.VK_DATA_CONTRACT).address


def test_rejects_a_valid_proof_with_any_other_data_contract(split):
    rejects(split, verifier(split, split.vk_data["credit_b"].address))  # another circuit's key
    rejects(split, verifier(split, flipped_key_data(split, 4)))  # one bit of omega flipped
    rejects(split, verifier(split, address("nobody")))  # no code: extcodecopy copies zeros


def test_the_keccak_check_is_what_pins_the_key(split):
    """Word 0 of the key (its digest) is read only before the key is copied in: a data contract with that
    word changed passes the verification's arithmetic, and only the keccak check refuses it."""
    check = f"if iszero(eq(keccak256({split.data['credit']['vkMptr']:#06x}"
    source = split.build.sol_path.read_text()
    unchecked_src = "\n".join(line for line in source.split("\n") if check not in line)
    assert unchecked_src != source
    unchecked = evm.compile_solidity({"Unchecked.sol": unchecked_src}, evm.VERIFIER_SETTINGS)
    unchecked = unchecked[evm.SPLIT_VK_VERIFIER_CONTRACT]

    digest_flipped = flipped_key_data(split, 0)
    d = split.chain.deploy(unchecked, [digest_flipped])
    assert split.chain.call(verify(split, split.chain.contract(d.address, unchecked["abi"])), "verifying") is True
    rejects(split, verifier(split, digest_flipped))


def test_costs_a_few_thousand_gas_more_than_the_standard_verifier(split, circuits):
    v = verifier(split, split.vk_data["credit"].address)
    standard = split.chain.contract(split.standard.address, split.standard_abi)
    gas = {"standard": verify(split, standard).estimate_gas(), "split-vk": verify(split, v).estimate_gas()}
    sizes = {"standard": len(split.chain.code(split.standard.address)), "split-vk": len(split.chain.code(v.address))}
    print(json.dumps({"verifyProof_gas": gas, "runtime_bytes": sizes, "vk_bytes": split.data["credit"]["vkBytes"]}))
    assert 0 < gas["split-vk"] - gas["standard"] < 6_000
    assert sizes["split-vk"] == split.build.runtime_size < sizes["standard"] - 1_500


def test_deploy_refuses_a_key_file_edited_after_the_build(anvil, circuits, tmp_path):
    vb = evm.build_verifier(circuits["credit"].dir, mode="split-vk")
    original = vb.vk_data_path.read_text()
    data = json.loads(original)
    vk = bytearray(bytes.fromhex(data["deployedBytecode"][4:]))
    vk[-1] ^= 0x01
    data.update(deployedBytecode="0x00" + vk.hex(), initcode="0x" + evm.vk_data_initcode(bytes(vk)).hex())
    try:
        vb.vk_data_path.write_text(json.dumps(data))
        with pytest.raises(UsageError, match="does not hold the verifying key .* checks"):
            chain.deploy(
                circuits["credit"].dir, anvil.rpc_url, verifier_mode="split-vk", deployments_dir=tmp_path / "d"
            )
    finally:
        vb.vk_data_path.write_text(original)
