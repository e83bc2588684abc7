"""Solidity compilation with the pinned solcjs, and Halo2 verifiers rendered by ezkl (no chain needed)."""

from __future__ import annotations

import json
import logging
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
        "RateStepTooLarge",
        "StatementAlreadyConsumed",
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
    assert "EIP-170" in caplog.text and "reusable" in caplog.text


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
