"""Solidity compilation: solcjs's standard JSON in, one artifact per contract out, cached by build key.

    build_contracts()                        # verifier_contracts/src -> verifier_contracts/out/<Name>.json
    contract_artifact("ModelRegistry")       # one of them (compiling first if needed)
    compile_solidity({"A.sol": text})        # any sources; `pipeline.evm.verifiers` compiles ezkl's with it

Artifacts are JSON (schema ``zkinfer/contract-artifact@1``): contractName, sourceName, abi, bytecode,
deployedBytecode, runtimeSize, immutableReferences, compiler {name, version, settings}, buildKey. A build
whose inputs have not changed (same sources, OpenZeppelin version, compiler and settings) reuses the artifacts
on disk, and `recorded_abis` reads the ABIs of the last build without compiling at all (revert decoding needs
no toolchain).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import canonical_json, read_json, sha256_bytes, write_json_atomic
from ..errors import UsageError
from .toolchain import REPO_ROOT, SolidityCompileError, node_modules, openzeppelin_version, run_solcjs, solc_version

CONTRACTS_DIR = REPO_ROOT / "verifier_contracts"
CONTRACTS_SRC = CONTRACTS_DIR / "src"
CONTRACTS_OUT = CONTRACTS_DIR / "out"
INDEX = "index.json"

ARTIFACT_SCHEMA = "zkinfer/contract-artifact@1"
EIP170_MAX_RUNTIME_BYTES = 24_576


@dataclass(frozen=True)
class CompilerSettings:
    """What goes into solc's standard-json `settings` besides the output selection."""

    evm_version: str = "cancun"
    optimizer_runs: int = 200
    via_ir: bool = False

    def standard_json(self) -> dict:
        return {
            "evmVersion": self.evm_version,
            "optimizer": {"enabled": True, "runs": self.optimizer_runs},
            "viaIR": self.via_ir,
        }


# The project's contracts are called often: optimise for calls.
CONTRACT_SETTINGS = CompilerSettings(optimizer_runs=200)
# A Halo2 verifier is mostly hand-written assembly and big: optimise for size (runs=1), which keeps more
# circuits under EIP-170 and costs almost nothing per call.
VERIFIER_SETTINGS = CompilerSettings(optimizer_runs=1)


def compile_solidity(sources: dict[str, str], settings: CompilerSettings = CONTRACT_SETTINGS,
                     base_path: str | os.PathLike | None = None,
                     warnings_are_errors: bool = False) -> dict[str, dict]:
    """Compile Solidity sources with the pinned solcjs; return one artifact per contract, keyed by name.

    `sources` maps source unit names (e.g. ``"src/ModelRegistry.sol"``) to their text. Imports are resolved
    against `base_path` (relative imports) and node_modules (``@openzeppelin/...``); only the contracts
    defined in `sources` get artifacts. Raises SolidityCompileError on any compiler error (and warning, with
    `warnings_are_errors`: the project holds its own contracts to that; ezkl's generated code is not).
    """
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            **settings.standard_json(),
            "outputSelection": {name: {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                                             "evm.deployedBytecode.immutableReferences"]}
                                for name in sources},
        },
    }
    base = Path(base_path) if base_path else Path.cwd()
    out = run_solcjs(["--standard-json", "--base-path", str(base), "--include-path", str(node_modules())],
                      stdin=json.dumps(request), cwd=base)
    # solcjs may print a line of its own (e.g. a licence notice) before the JSON document.
    start = out.find("{")
    if start < 0:
        raise SolidityCompileError(f"solcjs printed no JSON: {out.strip()[:200]}")
    result = json.loads(out[start:])
    failing = ("error", "warning") if warnings_are_errors else ("error",)
    errors = [e for e in result.get("errors", []) if e.get("severity") in failing]
    if errors:
        first = errors[0].get("formattedMessage") or errors[0].get("message", "unknown error")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SolidityCompileError(f"solc: {first.strip().splitlines()[0]}{more}")

    compiler = {"name": "solc", "version": solc_version(), "settings": settings.standard_json()}
    artifacts: dict[str, dict] = {}
    for source_name, contracts in result.get("contracts", {}).items():
        for name, c in contracts.items():
            if name in artifacts:
                first = artifacts[name]["sourceName"]
                raise SolidityCompileError(f"contract {name} is defined in both {first} and {source_name}: "
                                           "names must be unique")
            deployed = c["evm"]["deployedBytecode"]["object"]
            artifacts[name] = {
                "schema": ARTIFACT_SCHEMA,
                "contractName": name,
                "sourceName": source_name,
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + deployed,
                "runtimeSize": len(deployed) // 2,
                # where the runtime code holds each immutable (byte offsets, 32 bytes each; zero until deployed)
                "immutableReferences": c["evm"]["deployedBytecode"].get("immutableReferences", {}),
                "compiler": compiler,
            }
    return artifacts


def exceeds_eip170(artifact: dict) -> bool:
    return artifact["runtimeSize"] > EIP170_MAX_RUNTIME_BYTES


def load_artifact(path: str | os.PathLike) -> dict:
    art = read_json(path, "contract artifact")
    if not isinstance(art, dict) or art.get("schema") != ARTIFACT_SCHEMA:
        raise UsageError(f"{path} is not a zkinfer contract artifact (expected schema {ARTIFACT_SCHEMA!r})")
    return art


def cached_artifact(path: Path, build_key: str) -> dict | None:
    """The artifact at `path` if it was built from the same inputs, else None."""
    if not path.exists():
        return None
    try:
        art = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return art if isinstance(art, dict) and art.get("buildKey") == build_key else None


def build_key_of(obj) -> str:
    """The key a cached build is reused under: sha256 over everything it was built from."""
    return sha256_bytes(canonical_json(obj))


def contract_sources(src_dir: Path = CONTRACTS_SRC) -> dict[str, str]:
    """Every .sol file under verifier_contracts/src, keyed by its path relative to verifier_contracts."""
    files = sorted(src_dir.rglob("*.sol"))
    if not files:
        raise UsageError(f"no Solidity sources under {src_dir}")
    return {f.relative_to(src_dir.parent).as_posix(): f.read_text() for f in files}


def build_contracts(out_dir: str | os.PathLike = CONTRACTS_OUT, src_dir: str | os.PathLike = CONTRACTS_SRC,
                    settings: CompilerSettings = CONTRACT_SETTINGS) -> dict[str, Path]:
    """Compile verifier_contracts/src into one artifact per contract, `out_dir/<Name>.json`.

    Cached: when every artifact on disk was built from the same sources, OpenZeppelin version, compiler and
    settings, nothing is compiled. Returns contract name -> artifact path.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    sources = contract_sources(src_dir)
    build_key = build_key_of({"sources": {n: sha256_bytes(t.encode()) for n, t in sources.items()},
                      "openzeppelin": openzeppelin_version(), "solc": solc_version(),
                      "settings": settings.standard_json()})
    index_path = out_dir / INDEX
    index = cached_artifact(index_path, build_key)
    if index is not None and all((out_dir / f"{n}.json").exists() for n in index["contracts"]):
        return {n: out_dir / f"{n}.json" for n in index["contracts"]}

    artifacts = compile_solidity(sources, settings, base_path=src_dir.parent, warnings_are_errors=True)
    paths = {}
    for name, art in sorted(artifacts.items()):
        paths[name] = write_json_atomic(out_dir / f"{name}.json", {**art, "buildKey": build_key})
    write_json_atomic(index_path, {"buildKey": build_key, "contracts": sorted(paths)})
    return paths


def contract_artifact(name: str, out_dir: str | os.PathLike = CONTRACTS_OUT) -> dict:
    """The compiled artifact of one of the project's contracts (compiling first if needed)."""
    paths = build_contracts(out_dir)
    if name not in paths:
        raise UsageError(f"no contract named {name} in {CONTRACTS_SRC} (have: {', '.join(sorted(paths))})")
    return load_artifact(paths[name])


def recorded_abis(out_dir: str | os.PathLike = CONTRACTS_OUT) -> list[list[dict]]:
    """The ABIs of the project's contracts as `build_contracts` last wrote them, read from disk only: no
    compiler is needed (or run) to decode what a deployed contract reverted with. Missing or foreign files
    are skipped: what they would have decoded is reported undecoded."""
    out_dir = Path(out_dir)
    try:
        names = json.loads((out_dir / INDEX).read_text())["contracts"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    abis = []
    for name in names:
        try:
            art = json.loads((out_dir / f"{name}.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(art, dict) and art.get("schema") == ARTIFACT_SCHEMA:
            abis.append(art["abi"])
    return abis
