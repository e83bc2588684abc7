"""Solidity compilation with the pinned solcjs, and Halo2 verifiers rendered by ezkl (no chain needed)."""

from __future__ import annotations

import json
import logging
import re
import shutil

import pytest
from eth_utils import keccak

from pipeline import evm
from pipeline.errors import UsageError

DEPLOYABLE = {"ModelRegistry", "RiskAdjustedLending", "AdaptiveCouponBond", "ReusableVerifierAdapter"}


def test_missing_toolchain_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv(evm.NODE_MODULES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match="make install"):
        evm.compile_solidity({"A.sol": "contract A {}"})


def test_compiler_errors_and_warnings_are_reported():
    with pytest.raises(evm.SolidityCompileError, match="ParserError"):
        evm.compile_solidity({"Bad.sol": "pragma solidity ^0.8.24; contract Bad { function f( }"})
    unlicensed = "pragma solidity ^0.8.24; contract NoLicence {}"
    assert evm.compile_solidity({"W.sol": unlicensed})["NoLicence"]["runtimeSize"] > 0
    with pytest.raises(evm.SolidityCompileError, match="SPDX"):
        evm.compile_solidity({"W.sol": unlicensed}, warnings_are_errors=True)


@pytest.mark.slow
def test_project_contracts_compile_warning_free_and_are_cached(tmp_path):
    src = tmp_path / "contracts" / "src"
    shutil.copytree(evm.CONTRACTS_SRC, src)
    out = tmp_path / "contracts" / "out"
    paths = evm.build_contracts(out, src)
    assert DEPLOYABLE <= set(paths)
    art = evm.load_artifact(paths["RiskAdjustedLending"])
    assert art["compiler"]["version"].startswith("0.8.37")
    assert art["compiler"]["settings"]["evmVersion"] == "cancun"
    assert art["bytecode"].startswith("0x") and art["runtimeSize"] < evm.EIP170_MAX_RUNTIME_BYTES
    assert {e["name"] for e in art["abi"] if e["type"] == "error"} >= {
        "PostingAlreadyConsumed",
        "PublisherRevoked",
        "FeatureCommitmentMismatch",
        "EnforcedPause",
    }

    stamp = paths["ModelRegistry"].stat().st_mtime_ns
    assert evm.build_contracts(out, src) == paths
    assert paths["ModelRegistry"].stat().st_mtime_ns == stamp  # nothing changed: nothing compiled

    gate = src / "RiskAdjustedLending.sol"
    gate.write_text(gate.read_text() + "\n// edited\n")
    evm.build_contracts(out, src)
    assert paths["ModelRegistry"].stat().st_mtime_ns != stamp


@pytest.mark.slow
def test_verifier_is_rendered_compiled_and_sized(circuits, caplog):
    c = circuits["credit"]
    vb = evm.build_verifier(c.dir)
    assert vb.sol_path == c.dir / "evm" / "Verifier.sol" and vb.sol_path.read_text().count(
        "contract Halo2Verifier"
    )
    art = evm.load_artifact(vb.artifact_path)
    assert art["contractName"] == "Halo2Verifier" and art["compiler"]["settings"]["optimizer"]["runs"] == 1
    assert 0 < vb.runtime_size == art["runtimeSize"] < evm.EIP170_MAX_RUNTIME_BYTES
    assert not vb.exceeds_eip170 and not art["exceedsEip170"]
    assert [i["name"] for i in art["abi"] if i["type"] == "function"] == ["verifyProof"]
    stamp = vb.artifact_path.stat().st_mtime_ns
    assert evm.build_verifier(c.dir) == vb and vb.artifact_path.stat().st_mtime_ns == stamp

    # Private features and weights add Poseidon columns: the verifier no longer fits Ethereum's limit.
    big = circuits["credit_hashed_k2"]
    with caplog.at_level(logging.WARNING, logger="pipeline.evm"):
        oversize = evm.build_verifier(big.dir)
    assert oversize.exceeds_eip170 and oversize.runtime_size > evm.EIP170_MAX_RUNTIME_BYTES
    assert "EIP-170" in caplog.text and "split-vk" in caplog.text and "reusable" in caplog.text


@pytest.mark.slow
def test_reusable_verifier_and_its_verifying_key_artifact(circuits):
    builds = [evm.build_verifier(circuits[n].dir, reusable=True) for n in ("credit_hashed_k2", "credit")]
    big, small = builds
    assert big.contract_name == "Halo2VerifierReusable" and not big.exceeds_eip170
    # One reusable verifier serves every circuit: only the VKA differs.
    assert (
        evm.load_artifact(big.artifact_path)["deployedBytecode"]
        == evm.load_artifact(small.artifact_path)["deployedBytecode"]
    )
    vka = json.loads(big.vka_path.read_text())
    words = [bytes.fromhex(w[2:]) for w in vka["words"]]
    assert all(len(w) == 32 for w in words)
    assert vka["digest"] == big.vka_digest == "0x" + keccak(b"".join(words)).hex()
    assert big.vka_digest != small.vka_digest


# ---------------------------------------------------------------------------------------------------------
# Split-VK: the verifying key in a data contract

# A verifier in the shape ezkl writes, cut down to what split-vk rewrites.
EZKL_SHAPED = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract Halo2Verifier {
    uint256 internal constant       VK_MPTR = 0x0100;

    function verifyProof(
        bytes calldata proof,
        uint256[] calldata instances
    ) public returns (bool) {
        assembly {
            // Load full vk into memory
            mstore(0x0100, 0xAA) // vk_digest
            mstore(0x0120, 0xBB) // num_instances
            mstore(0x0180, 0xCC) // (not contiguous: not part of the key)

            mstore(0x00, mload(0x0120))
            return(0, 0x20)
        }
    }
}
""".replace("AA", "11" * 32).replace("BB", "22" * 32).replace("CC", "33" * 32)


def test_split_vk_moves_the_key_out_and_checks_it():
    split = evm.split_vk_source(EZKL_SHAPED)
    assert split.vk == bytes.fromhex("11" * 32 + "22" * 32) and split.vk_mptr == 0x100
    assert split.vk_keccak == "0x" + keccak(split.vk).hex()
    src = split.source
    assert "contract Halo2VerifierSplitVk {" in src and "contract Halo2Verifier {" not in src
    assert "11" * 32 not in src and "22" * 32 not in src
    assert "mstore(0x0180, 0x" + "33" * 32 in src  # what is not the key stays as it was
    assert "extcodecopy(vkData, 0x0100, 1, 0x0040)" in src
    assert f"if iszero(eq(keccak256(0x0100, 0x0040), {split.vk_keccak})) {{ revert(0, 0) }}" in src
    assert re.search(r"constructor\(address vkData\) \{\s*VK_DATA = vkData;", src)
    assert re.search(r"public returns \(bool\) \{\n\s*address vkData = VK_DATA;\n\s*assembly \{", src)

    # The data contract: its code is 0x00 (STOP) then the key; init code copies and returns exactly that.
    init = evm.vk_data_initcode(split.vk)
    assert init[:3] == b"\x61\x00\x41" and init[12:] == b"\x00" + split.vk == evm.vk_data_runtime(split.vk)


@pytest.mark.parametrize(
    "edit, missing",
    [
        (lambda s: s.replace("// Load full vk into memory", "// load the key"), "0 lines with '// Load full vk"),
        (lambda s: s + "// Load full vk into memory\n", "2 lines with '// Load full vk"),
        (lambda s: s.replace("VK_MPTR = 0x0100", "VK_MPTR_X = 0x0100"), "constant VK_MPTR"),
        (lambda s: s.replace("VK_MPTR = 0x0100", "VK_MPTR = 0x0200"), "mstore(VK_MPTR + 32*j"),
        (lambda s: s.replace("mstore(0x0100, 0x11", "mstore(0x0100, 0x1"), "mstore(VK_MPTR + 32*j"),
        (lambda s: s.replace("contract Halo2Verifier {", "contract Other {"), "declarations `contract Halo2"),
        (lambda s: s.replace("public returns (bool)", "public view returns (bool)"), "verifyProof(...)"),
        (lambda s: s.replace("mstore(0x00,", "let vkData := 1 mstore(0x00,"), "identifier vkData"),
    ],
)
def test_split_vk_refuses_sources_of_another_shape(edit, missing):
    with pytest.raises(evm.SolidityCompileError, match="does not have the shape split-vk expects") as caught:
        evm.split_vk_source(edit(EZKL_SHAPED))
    assert missing in str(caught.value)


def test_verifier_modes_and_the_old_reusable_switch():
    assert evm.verifier_mode(None) is None and evm.verifier_mode("auto") is None
    assert evm.verifier_mode("split-vk") is evm.VerifierMode.SPLIT_VK
    assert evm.verifier_mode(None, reusable=True) is evm.VerifierMode.REUSABLE
    assert evm.verifier_mode("auto", reusable=False) is evm.VerifierMode.STANDARD
    assert evm.verifier_mode("reusable", reusable=True) is evm.VerifierMode.REUSABLE
    with pytest.raises(UsageError, match="--reusable contradicts --verifier split-vk"):
        evm.verifier_mode("split-vk", reusable=True)
    with pytest.raises(UsageError, match="unknown verifier mode 'split'"):
        evm.verifier_mode("split")


@pytest.mark.slow
def test_split_vk_verifier_is_built_smaller_with_its_key_apart(circuits):
    c = circuits["credit"]
    standard = evm.build_verifier(c.dir)
    vb = evm.build_verifier(c.dir, mode="split-vk")
    assert vb.mode is evm.VerifierMode.SPLIT_VK and vb.contract_name == "Halo2VerifierSplitVk"
    assert vb.sol_path == c.dir / "evm" / "VerifierSplitVk.sol" and vb.vk_data_path == c.dir / "evm" / "vk_data.json"
    data = json.loads(vb.vk_data_path.read_text())
    vk = bytes.fromhex(data["deployedBytecode"][4:])
    assert data["deployedBytecode"][:4] == "0x00" and len(vk) == data["vkBytes"] > 1000
    assert data["vkKeccak"] == vb.vk_data_keccak == "0x" + keccak(vk).hex()
    assert data["initcode"] == "0x" + evm.vk_data_initcode(vk).hex() and not data["exceedsEip170"]

    # The key's words are baked into the standard verifier, not into the split one, which checks them. (Its
    # first two, the key's digest and instance count, ezkl also stores earlier, for the transcript: they stay.)
    words = [vk[i : i + 32].hex() for i in range(0, len(vk), 32)]
    std_src, src = standard.sol_path.read_text(), vb.sol_path.read_text()
    assert all(f"0x{w})" in std_src for w in words)
    assert [w for w in words if f"0x{w})" in src] == words[:2]
    assert f"extcodecopy(vkData, {data['vkMptr']:#06x}, 1, {len(vk):#06x})" in src
    assert f"eq(keccak256({data['vkMptr']:#06x}, {len(vk):#06x}), {vb.vk_data_keccak})" in src

    art = evm.load_artifact(vb.artifact_path)
    assert art["vkDataKeccak"] == vb.vk_data_keccak and art["exceedsEip170"] is False
    assert [i["inputs"][0]["type"] for i in art["abi"] if i["type"] == "constructor"] == ["address"]
    assert [i["name"] for i in art["abi"] if i["type"] == "function"] == ["verifyProof"]
    print(f"credit: standard {standard.runtime_size} B, split-vk {vb.runtime_size} B, key {len(vk)} B")
    assert 0 < vb.runtime_size < standard.runtime_size - 25 * len(words)

    stamp = vb.artifact_path.stat().st_mtime_ns
    assert evm.build_verifier(c.dir, mode="split-vk") == vb and vb.artifact_path.stat().st_mtime_ns == stamp
    vb.vk_data_path.unlink()  # a missing key file is rebuilt with its verifier
    assert evm.build_verifier(c.dir, mode="split-vk") == vb and vb.vk_data_path.exists()


@pytest.mark.slow
def test_auto_picks_the_first_verifier_that_fits_eip170(circuits, narrow_hashed, caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.evm"):
        small = evm.choose_verifier(circuits["credit"].dir)
        narrow = evm.choose_verifier(narrow_hashed.dir)
        big = evm.choose_verifier(circuits["credit_hashed_k2"].dir)
    assert [b.mode for b in small.candidates] == [evm.VerifierMode.STANDARD] and "fits" in small.reason

    # One advice column: the standard verifier is just over the limit, the split-vk one fits.
    standard, split = narrow.candidates
    assert standard.exceeds_eip170 and not split.exceeds_eip170 and narrow.build is split
    assert standard.runtime_size > evm.EIP170_MAX_RUNTIME_BYTES > split.runtime_size

    # Two columns: even without its key the verifier is too big; ezkl's reusable one is not.
    assert [b.mode.value for b in big.candidates] == ["standard", "split-vk", "reusable"]
    assert big.candidates[1].exceeds_eip170 and not big.build.exceeds_eip170
    assert "split-vk verifier: the standard verifier's runtime code (" in caplog.text
    assert "reusable verifier:" in caplog.text
    print({n: [(b.mode.value, b.runtime_size) for b in ch.candidates]
           for n, ch in (("credit", small), ("credit_hashed_k2_c1", narrow), ("credit_hashed_k2", big))})
