"""Solidity-native checks (issue 13): forge's fuzz and invariant tests and slither, both offline through the
solc wrapper around the pinned solcjs (verifier_contracts/bin/solc)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest

from pipeline.evm import solidity_checks as sc
from pipeline.evm.toolchain import REPO_ROOT

WRAPPER = str(sc.SOLC_WRAPPER)
TESTS_DIR = REPO_ROOT / "verifier_contracts" / "test"


def _declared_tests() -> tuple[int, int]:
    """(test functions, invariant functions) declared in verifier_contracts/test/*.t.sol."""
    text = "\n".join(p.read_text() for p in TESTS_DIR.rglob("*.t.sol"))
    tests = len(re.findall(r"function (?:test|invariant)\w*\(", text))
    return tests, len(re.findall(r"function invariant\w*\(", text))


def test_wrapper_speaks_solc_version_and_refuses_other_modes():
    done = subprocess.run([WRAPPER, "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0
    assert re.search(r"^Version: 0\.8\.37\+commit\.\w+", done.stdout, re.M), done.stdout
    bad = subprocess.run([WRAPPER, "--combined-json", "abi", "x.sol"], capture_output=True, text=True,
                         timeout=120, check=False)
    assert bad.returncode == 2
    assert "unsupported option --combined-json" in bad.stderr and "Traceback" not in bad.stderr


def test_wrapper_compiles_standard_json_with_openzeppelin_imports(tmp_path):
    source = ('// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n'
              'import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";\n'
              'contract A is Ownable { constructor() Ownable(msg.sender) {} }\n')
    request = {"language": "Solidity", "sources": {"A.sol": {"content": source}},
               "settings": {"outputSelection": {"A.sol": {"A": ["evm.bytecode.object"]}}}}
    done = subprocess.run([WRAPPER, "--standard-json", "--base-path", str(tmp_path)], input=json.dumps(request),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert not [e for e in out.get("errors", []) if e["severity"] == "error"], out["errors"]
    assert len(out["contracts"]["A.sol"]["A"]["evm"]["bytecode"]["object"]) > 100


def test_foundry_config_is_offline_with_the_wrapper_and_a_fixed_seed():
    cfg = tomllib.loads((REPO_ROOT / "foundry.toml").read_text())["profile"]
    assert cfg["default"]["solc"] == "verifier_contracts/bin/solc"
    assert cfg["default"]["offline"] is True and cfg["default"]["auto_detect_solc"] is False
    for profile in ("default", "reliability"):
        assert cfg[profile]["fuzz"]["seed"], profile
    assert cfg["reliability"]["invariant"]["runs"] > cfg["default"]["invariant"]["runs"]


def test_parse_forge_json_counts_runs_and_failures():
    doc = {"t/A.t.sol:A": {"test_results": {
        "testFuzz_x(uint256)": {"status": "Success", "kind": {"Fuzz": {"runs": 64}}},
        "invariant_y()": {"status": "Failure", "reason": "broken", "kind": {"Invariant": {"runs": 3, "calls": 90}}},
        "test_z()": {"status": "Success", "kind": {"Unit": {"gas": 1}}}}}}
    s = sc.parse_forge_json(doc, "default")
    assert (s.tests, s.passed, s.fuzz_runs, s.invariant_runs, s.invariant_calls) == (3, 2, 64, 3, 90)
    assert s.failed == ["A.invariant_y(): broken"] and not s.ok
    assert sc.reliability_entry(s)["failures"] == 1


def test_record_reliability_replaces_only_its_entry(tmp_path):
    path = tmp_path / "reliability.json"
    path.write_text(json.dumps({"tests": [{"name": "crash_resume", "cases": 5, "failures": 0, "notes": ""},
                                          {"name": "solidity_invariants", "cases": 1, "failures": 9, "notes": ""}]}))
    sc.record_reliability(path, {"name": "solidity_invariants", "cases": 10, "failures": 0, "notes": "n"})
    tests = json.loads(path.read_text())["tests"]
    assert {t["name"]: t["cases"] for t in tests} == {"crash_resume": 5, "solidity_invariants": 10}


def test_triage_reports_new_and_stale():
    f = [sc.Finding("timestamp", "A.f()", "Low", ""), sc.Finding("reentrancy-eth", "A.g()", "High", "")]
    new, stale = sc.triage(f, {("timestamp", "A.f()"): "ok", ("assembly", "A.h()"): "ok"})
    assert [x.key for x in new] == [("reentrancy-eth", "A.g()")]
    assert stale == [("assembly", "A.h()")]


def test_every_triaged_finding_is_explained_in_the_readme():
    readme = (REPO_ROOT / "verifier_contracts" / "README.md").read_text()
    for detector, element in sc.load_triage():
        contract, _, function = element.split("(")[0].rpartition(".")
        assert f"`{detector}`" in readme and contract in readme and function in readme, (detector, element)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_forge_fuzz_and_invariant_tests_pass_offline():
    """`forge test` under the default profile (fixed seed, bounded runs): every declared test runs and passes."""
    s = sc.run_forge_tests("default")
    assert not s.failed, s.failed
    declared, invariants = _declared_tests()
    assert s.tests == declared, (s.tests, declared, s.names)
    cfg = tomllib.loads((REPO_ROOT / "foundry.toml").read_text())["profile"]["default"]
    assert s.invariant_tests == invariants
    assert s.invariant_runs == invariants * cfg["invariant"]["runs"]
    assert s.invariant_calls == invariants * cfg["invariant"]["runs"] * cfg["invariant"]["depth"]
    assert s.fuzz_runs == s.fuzz_tests * cfg["fuzz"]["runs"]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_slither_has_no_untriaged_findings():
    findings = sc.run_slither()
    assert findings, "slither reported nothing at all: did it analyse verifier_contracts/src?"
    new, stale = sc.triage(findings, sc.load_triage())
    assert not new, [f"{x.detector} {x.element}: {x.description}" for x in new]
    assert not stale, stale
