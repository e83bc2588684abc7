"""Solidity-native checks of verifier_contracts/src, offline: forge's fuzz and invariant tests, and slither.

    python -m pipeline.evm.solidity_checks forge [--profile default|reliability] [--record bench/reliability.json]
    python -m pipeline.evm.solidity_checks slither

Both compile with the pinned solcjs through `verifier_contracts/bin/solc`, a solc-compatible front end
(`--version`, `--standard-json`) that foundry.toml names as forge's compiler (`solc = ...`, `offline = true`):
forge never downloads a compiler. slither compiles through forge (crytic-compile's foundry platform, profile
`slither`, its own build directory). Its findings must each be in `verifier_contracts/slither-triage.json`,
explained in verifier_contracts/README.md; anything else fails the check.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import write_json_atomic
from ..errors import UsageError, ZkinferError
from .toolchain import REPO_ROOT, node_modules, npm_binary

SOLC_WRAPPER = REPO_ROOT / "verifier_contracts" / "bin" / "solc"
TRIAGE_FILE = REPO_ROOT / "verifier_contracts" / "slither-triage.json"
RELIABILITY_NAME = "solidity_invariants"
FORGE_TIMEOUT_S = 1800
SLITHER_TIMEOUT_S = 900


class SolidityCheckFailed(ZkinferError):
    """forge reported failing tests, or slither an untriaged finding."""

    exit_code = 1


def _env(profile: str) -> dict[str, str]:
    if shutil.which("node") is None:
        raise UsageError("node (Node.js) is not on PATH: the solc wrapper runs solcjs with it")
    env = dict(os.environ)
    env["FOUNDRY_PROFILE"] = profile
    # forge for crytic-compile (slither), node for the wrapper.
    env["PATH"] = f"{node_modules() / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


# ------------------------------------------------------------------------------------------------- forge


@dataclass
class ForgeSummary:
    profile: str
    tests: int = 0
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    fuzz_tests: int = 0
    fuzz_runs: int = 0
    invariant_tests: int = 0
    invariant_runs: int = 0
    invariant_calls: int = 0
    names: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and self.tests > 0

    def line(self) -> str:
        return (f"forge ({self.profile}): {self.passed}/{self.tests} tests passed; {self.fuzz_tests} fuzz tests "
                f"x {self.fuzz_runs // max(self.fuzz_tests, 1)} runs; {self.invariant_tests} invariants, "
                f"{self.invariant_runs} runs, {self.invariant_calls} handler calls")


def parse_forge_json(doc: dict, profile: str) -> ForgeSummary:
    """Counts from `forge test --json`: tests, failures, fuzz runs, invariant runs and calls."""
    s = ForgeSummary(profile)
    for suite, result in sorted(doc.items()):
        contract = suite.rsplit(":", 1)[-1]
        for name, t in sorted(result.get("test_results", {}).items()):
            s.tests += 1
            s.names.append(f"{contract}.{name}")
            if t.get("status") == "Success":
                s.passed += 1
            else:
                reason = t.get("reason") or t.get("status")
                s.failed.append(f"{contract}.{name}: {reason}")
            kind = t.get("kind") or {}
            if "Fuzz" in kind:
                s.fuzz_tests += 1
                s.fuzz_runs += int(kind["Fuzz"].get("runs", 0))
            elif "Invariant" in kind:
                s.invariant_tests += 1
                s.invariant_runs += int(kind["Invariant"].get("runs", 0))
                s.invariant_calls += int(kind["Invariant"].get("calls", 0))
    return s


def run_forge_tests(profile: str = "default", match_contract: str | None = None,
                    timeout_s: int = FORGE_TIMEOUT_S) -> ForgeSummary:
    """`forge test --json` under a foundry.toml profile (fixed seed; `default` is small, `reliability` big)."""
    profiles = sorted(tomllib.loads((REPO_ROOT / "foundry.toml").read_text()).get("profile", {}))
    if profile not in profiles:
        raise UsageError(f"no forge profile {profile!r} in foundry.toml (have: {', '.join(profiles)})")
    cmd = [str(npm_binary("forge")), "test", "--json", "--root", str(REPO_ROOT)]
    if match_contract:
        cmd += ["--match-contract", match_contract]
    try:
        done = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(profile), capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise SolidityCheckFailed(f"forge test took more than {timeout_s} s") from None
    start = done.stdout.find("{")
    try:
        doc = json.loads(done.stdout[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise SolidityCheckFailed(f"forge test failed (exit {done.returncode}) before running tests: {last}")
    summary = parse_forge_json(doc, profile)
    if done.returncode != 0 and not summary.failed:
        summary.failed.append(f"forge exited {done.returncode}")
    return summary


def reliability_entry(s: ForgeSummary) -> dict:
    cases = s.fuzz_runs + s.invariant_calls
    return {
        "name": RELIABILITY_NAME,
        "cases": cases,
        "failures": len(s.failed),
        "notes": (f"forge profile {s.profile!r} (fixed seed, foundry.toml): {s.tests} tests, {s.passed} passed; "
                  f"{s.fuzz_tests} fuzz tests with {s.fuzz_runs} runs in all; {s.invariant_tests} handler-based "
                  f"invariants (a posting acts at most once whatever the model; no action without an accepted active "
                  f"model and a fresh matching posting; withdrawn, revoked or stale postings never act; rate step "
                  f"and bounds; paused nothing moves; only owners configure; renounce reverts; outcomes match a "
                  f"reference model; bond adjusts from the period's starting coupon) over {s.invariant_runs} "
                  f"runs and {s.invariant_calls} handler calls; cases = fuzz runs + invariant calls. Verifier: a "
                  f"mock bound to the instances (the real ezkl verifier is the on-chain tests')."
                  + (f" Failed: {'; '.join(s.failed)[:500]}" if s.failed else "")),
    }


def record_reliability(path: Path, entry: dict) -> Path:
    """Replaces the entry of the same name in `path` ({"tests": [...]}), keeping every other, atomically (and
    under an advisory lock, `path`.lock, so concurrent writers of other entries lose nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _merge_entry(path, entry)


def _merge_entry(path: Path, entry: dict) -> Path:
    tests: list = []
    if path.exists():
        try:
            doc = json.loads(path.read_text())
            tests = [t for t in doc.get("tests", []) if isinstance(t, dict) and t.get("name") != entry["name"]]
        except (OSError, ValueError, AttributeError):
            raise UsageError(f"{path} is not a reliability report ({{\"tests\": [...]}}): fix or remove it") from None
    tests.append(entry)
    return write_json_atomic(path, {"tests": tests})


# ----------------------------------------------------------------------------------------------- slither


@dataclass(frozen=True)
class Finding:
    detector: str
    element: str  # Contract.signature of the finding's first element (or the contract, or the element's name)
    impact: str
    description: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.detector, self.element)


def _element_id(e: dict) -> str:
    fields = e.get("type_specific_fields") or {}
    parent = (fields.get("parent") or {}).get("name")
    if e.get("type") == "function" and parent:
        return f"{parent}.{fields.get('signature', e.get('name'))}"
    if e.get("type") == "contract":
        return e.get("name", "?")
    return f"{parent}.{e.get('name')}" if parent else str(e.get("name"))


def parse_slither_json(doc: dict) -> list[Finding]:
    if not doc.get("success", False):
        raise SolidityCheckFailed(f"slither failed: {doc.get('error') or 'no error message'}")
    out = []
    for r in (doc.get("results") or {}).get("detectors", []):
        elements = r.get("elements") or [{}]
        out.append(Finding(r.get("check", "?"), _element_id(elements[0]), r.get("impact", "?"),
                           (r.get("description") or "").strip().splitlines()[0] if r.get("description") else ""))
    return out


def slither_binary() -> str:
    here = Path(sys.executable).parent / "slither"
    found = str(here) if here.exists() else shutil.which("slither")
    if not found:
        raise UsageError("slither is not installed: `make install` (the dev extra has slither-analyzer)")
    return found


def run_slither(timeout_s: int = SLITHER_TIMEOUT_S) -> list[Finding]:
    """slither over verifier_contracts/src (through forge; dependencies, tests and generated verifiers,
    which live in each circuit's evm/ directory, are not analysed)."""
    npm_binary("forge")
    with tempfile.TemporaryDirectory(prefix="zkinfer-slither-") as tmp:
        report = Path(tmp) / "slither.json"
        cmd = [slither_binary(), str(REPO_ROOT), "--exclude-dependencies", "--filter-paths", "node_modules",
               "--json", str(report)]
        try:
            done = subprocess.run(cmd, cwd=REPO_ROOT, env=_env("slither"), capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise SolidityCheckFailed(f"slither took more than {timeout_s} s") from None
        if not report.exists():
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise SolidityCheckFailed(f"slither failed (exit {done.returncode}): {last}")
        return parse_slither_json(json.loads(report.read_text()))


def load_triage(path: Path = TRIAGE_FILE) -> dict[tuple[str, str], str]:
    try:
        entries = json.loads(path.read_text())["accepted"]
        return {(e["detector"], e["element"]): e["reason"] for e in entries}
    except (OSError, ValueError, KeyError, TypeError):
        shape = '{"accepted": [{"detector", "element", "reason"}, ...]}'
        raise UsageError(f"{path}: expected {shape}") from None


def triage(findings: list[Finding],
           accepted: dict[tuple[str, str], str]) -> tuple[list[Finding], list[tuple[str, str]]]:
    """(findings not in the triage list, triage entries no finding matches any more)."""
    keys = {f.key for f in findings}
    return [f for f in findings if f.key not in accepted], sorted(k for k in accepted if k not in keys)


# --------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.evm.solidity_checks", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("forge", help="forge's fuzz and invariant tests (fixed seed)")
    f.add_argument("--profile", default="default", help="foundry.toml profile: default (small) or reliability")
    f.add_argument("--match-contract", default=None)
    f.add_argument("--record", type=Path, default=None, help="write the solidity_invariants entry into this file")
    sub.add_parser("slither", help="slither over verifier_contracts/src; fails on untriaged findings")
    args = p.parse_args(argv)
    try:
        if args.cmd == "forge":
            s = run_forge_tests(args.profile, args.match_contract)
            print(s.line())
            for failure in s.failed:
                print(f"FAILED {failure}")
            if args.record:
                record_reliability(args.record, reliability_entry(s))
                print(f"{RELIABILITY_NAME} -> {args.record}")
            return 0 if s.ok else 1
        findings = run_slither()
        new, stale = triage(findings, load_triage())
        print(f"slither: {len(findings)} findings, {len(findings) - len(new)} triaged "
              f"({TRIAGE_FILE.relative_to(REPO_ROOT)}), {len(new)} new, {len(stale)} stale triage entries")
        for x in new:
            print(f"NEW [{x.impact}] {x.detector} {x.element}: {x.description}")
        for d, e in stale:
            print(f"STALE triage entry (no such finding now): {d} {e}")
        return 0 if not new and not stale else 1
    except ZkinferError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)


if __name__ == "__main__":
    sys.exit(main())
