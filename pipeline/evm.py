"""Solidity: the pinned npm toolchain, compilation with solcjs, and Halo2 verifiers rendered by ezkl.

    build_verifier("circuits/credit_risk")                  # DIR/evm/Verifier.sol + Verifier.json
    build_verifier("circuits/lenet", reusable=True)         # shared reusable verifier + this circuit's VKA
    build_contracts()                                       # verifier_contracts/src -> verifier_contracts/out

Everything runs offline: the compiler is npm's `solc` (solcjs, pinned in package.json), never a download.
Artifacts are JSON (schema ``zkinfer/contract-artifact@1``): contractName, sourceName, abi, bytecode,
deployedBytecode, runtimeSize, compiler {name, version, settings}, buildKey. A build whose inputs have not
changed (same sources or verifying key, same compiler and settings) reuses the artifact on disk.

Ethereum refuses to deploy runtime code above 24,576 bytes (EIP-170). A circuit whose verifier is larger
needs ezkl's reusable verifier: one circuit-independent contract per chain plus a per-circuit verifying-key
artifact (VKA) that the verifier must have registered, passed at every verification (see
`ReusableVerifierAdapter.sol`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_utils import keccak

from . import EZKL_VERSION
from . import manifest as manifest_mod
from .artifacts import canonical_json, sha256_bytes, sha256_file, write_json_atomic, write_text_atomic
from .errors import UsageError, ZkinferError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "verifier_contracts"
CONTRACTS_SRC = CONTRACTS_DIR / "src"
CONTRACTS_OUT = CONTRACTS_DIR / "out"
NODE_MODULES_ENV = "ZKINFER_NODE_MODULES"

ARTIFACT_SCHEMA = "zkinfer/contract-artifact@1"
EIP170_MAX_RUNTIME_BYTES = 24_576
EVM_SUBDIR = "evm"
VERIFIER_CONTRACT = "Halo2Verifier"
REUSABLE_VERIFIER_CONTRACT = "Halo2VerifierReusable"
# The decimals ezkl's reusable verifier rescales instances to in its return value. zkinfer's gates decode
# outputs themselves and ignore that value, but the VKA encodes it: keep ezkl's default.
VKA_DECIMALS = 18
SOLC_TIMEOUT_S = 300


class SolidityCompileError(ZkinferError):
    """solc reported errors (the message carries the first one)."""

    exit_code = 1


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


# ---------------------------------------------------------------------------------------------------------
# The npm toolchain


def node_modules() -> Path:
    """The npm toolchain's node_modules: $ZKINFER_NODE_MODULES, else the repository root's."""
    configured = os.environ.get(NODE_MODULES_ENV)
    d = Path(configured) if configured else REPO_ROOT / "node_modules"
    if not (d / ".bin" / "solcjs").exists():
        where = f"${NODE_MODULES_ENV}={configured}" if configured else str(d)
        raise UsageError(f"the EVM toolchain (npm solc, anvil) is not installed at {where}: "
                         "run `make install`")
    return d


def npm_binary(name: str) -> Path:
    """A binary from the pinned npm packages (`solcjs`, `anvil`)."""
    p = node_modules() / ".bin" / name
    if not p.exists():
        raise UsageError(f"{name} not found in {p.parent}: run `make install`")
    return p


def _run_solcjs(args: list[str], stdin: str | None = None, cwd: Path | None = None) -> str:
    if shutil.which("node") is None:
        raise UsageError("node (Node.js) is not on PATH: solcjs needs it; install Node.js 18+, "
                         "then `make install`")
    # Regular files, not pipes, on both ends: solcjs reads stdin with readFileSync, which fails with EAGAIN on
    # a pipe that is not ready yet, and exits with process.exit(), which cuts writes to a pipe at 64 KiB.
    with tempfile.TemporaryFile("w+") as stdin_file, tempfile.TemporaryFile("w+") as stdout_file:
        stdin_file.write(stdin or "")
        stdin_file.seek(0)
        try:
            done = subprocess.run([str(npm_binary("solcjs")), *args], stdin=stdin_file, stdout=stdout_file,
                                  stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=SOLC_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise SolidityCompileError(f"solcjs took more than {SOLC_TIMEOUT_S} s") from None
        stdout_file.seek(0)
        stdout = stdout_file.read()
    if done.returncode != 0:
        last = (done.stderr.strip() or stdout.strip() or "no output").splitlines()[-1]
        raise SolidityCompileError(f"solcjs failed (exit {done.returncode}): {last}")
    return stdout


_solc_version_cache: dict[Path, str] = {}


def solc_version() -> str:
    """The pinned compiler's full version, e.g. ``0.8.37+commit.a4ac2ab1.Emscripten.clang``."""
    binary = npm_binary("solcjs")
    if binary not in _solc_version_cache:
        _solc_version_cache[binary] = _run_solcjs(["--version"]).strip().splitlines()[-1]
    return _solc_version_cache[binary]


# ---------------------------------------------------------------------------------------------------------
# Compilation


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
            "outputSelection": {name: {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
                                for name in sources},
        },
    }
    base = Path(base_path) if base_path else Path.cwd()
    out = _run_solcjs(["--standard-json", "--base-path", str(base), "--include-path", str(node_modules())],
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
                "compiler": compiler,
            }
    return artifacts


def exceeds_eip170(artifact: dict) -> bool:
    return artifact["runtimeSize"] > EIP170_MAX_RUNTIME_BYTES


def load_artifact(path: str | os.PathLike) -> dict:
    from .artifacts import read_json

    art = read_json(path, "contract artifact")
    if not isinstance(art, dict) or art.get("schema") != ARTIFACT_SCHEMA:
        raise UsageError(f"{path} is not a zkinfer contract artifact (expected schema {ARTIFACT_SCHEMA!r})")
    return art


def _cached(path: Path, build_key: str) -> dict | None:
    """The artifact at `path` if it was built from the same inputs, else None."""
    if not path.exists():
        return None
    try:
        art = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return art if isinstance(art, dict) and art.get("buildKey") == build_key else None


def _key(obj) -> str:
    return sha256_bytes(canonical_json(obj))


# ---------------------------------------------------------------------------------------------------------
# The project's own contracts


def contract_sources(src_dir: Path = CONTRACTS_SRC) -> dict[str, str]:
    """Every .sol file under verifier_contracts/src, keyed by its path relative to verifier_contracts."""
    files = sorted(src_dir.rglob("*.sol"))
    if not files:
        raise UsageError(f"no Solidity sources under {src_dir}")
    return {f.relative_to(src_dir.parent).as_posix(): f.read_text() for f in files}


def _openzeppelin_version() -> str:
    pkg = node_modules() / "@openzeppelin" / "contracts" / "package.json"
    try:
        return json.loads(pkg.read_text())["version"]
    except (OSError, KeyError, json.JSONDecodeError):
        raise UsageError(f"@openzeppelin/contracts is not installed ({pkg} missing): "
                         "run `make install`") from None


def build_contracts(out_dir: str | os.PathLike = CONTRACTS_OUT, src_dir: str | os.PathLike = CONTRACTS_SRC,
                    settings: CompilerSettings = CONTRACT_SETTINGS) -> dict[str, Path]:
    """Compile verifier_contracts/src into one artifact per contract, `out_dir/<Name>.json`.

    Cached: when every artifact on disk was built from the same sources, OpenZeppelin version, compiler and
    settings, nothing is compiled. Returns contract name -> artifact path.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    sources = contract_sources(src_dir)
    build_key = _key({"sources": {n: sha256_bytes(t.encode()) for n, t in sources.items()},
                      "openzeppelin": _openzeppelin_version(), "solc": solc_version(),
                      "settings": settings.standard_json()})
    index_path = out_dir / "index.json"
    index = _cached(index_path, build_key)
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


# ---------------------------------------------------------------------------------------------------------
# Halo2 verifiers


@dataclass(frozen=True)
class VerifierBuild:
    """What `build_verifier` wrote into DIR/evm."""

    sol_path: Path
    artifact_path: Path
    contract_name: str
    runtime_size: int
    exceeds_eip170: bool
    reusable: bool
    vka_path: Path | None = None  # reusable only: the circuit's verifying-key artifact
    vka_digest: str | None = None  # keccak256 of the VKA words, as the reusable verifier registers it

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def _render_with_ezkl(coro_factory, written: Path, what: str) -> None:
    """Run one of ezkl's async EVM renderers. `create_evm_verifier` writes its .sol file and then tries to
    download solc to extract an ABI: offline that raises after the file is written, which is all we need."""

    async def run():
        await coro_factory()

    try:
        asyncio.run(run())
    except Exception as e:  # ezkl raises a bare Exception subclass; only a missing file is a failure
        if not written.exists() or written.stat().st_size == 0:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SolidityCompileError(f"ezkl could not render the {what}: {reason}") from None
        log.debug("ezkl raised after rendering the %s (expected offline): %s", what, e)


def _read_vka_words(path: Path) -> list[bytes]:
    """ezkl's VKA file is bincode's Vec<[u8; 32]>: a little-endian u64 count, then the 32-byte words."""
    data = path.read_bytes()
    (count,) = struct.unpack_from("<Q", data)
    if len(data) != 8 + 32 * count:
        raise SolidityCompileError(f"{path}: VKA file is {len(data)} bytes, "
                                   f"expected {8 + 32 * count} for {count} words")
    return [data[8 + 32 * i: 8 + 32 * (i + 1)] for i in range(count)]


def vka_digest(words: list[bytes]) -> str:
    """The reusable verifier's key for a VKA: keccak256 over its words, back to back."""
    return "0x" + keccak(b"".join(words)).hex()


def build_verifier(circuit_dir: str | os.PathLike, reusable: bool = False,
                   settings: CompilerSettings = VERIFIER_SETTINGS, warn_eip170: bool = True) -> VerifierBuild:
    """Render the circuit's Halo2 verifier with ezkl and compile it into DIR/evm.

    Standard: ``Verifier.sol`` and ``Verifier.json`` (contract ``Halo2Verifier``, the verifying key baked in).
    Reusable: ``VerifierReusable.sol``/``.json`` (contract ``Halo2VerifierReusable``, identical for every
    circuit) and ``vka.json`` (the circuit's verifying-key artifact: words and digest).
    Logs a warning (unless `warn_eip170` is false: the caller handles it) when the runtime code exceeds
    EIP-170's 24,576 bytes, where it would not deploy on Ethereum.
    Rebuilds only when the verifying key, settings, SRS, compiler or settings changed.
    """
    import ezkl

    m = manifest_mod.load(circuit_dir)
    vk, settings_json, srs = m.artifact(manifest_mod.VK), m.artifact(manifest_mod.SETTINGS), m.dir / manifest_mod.SRS
    for p, what in ((vk, "verifying key"), (settings_json, "settings"), (srs, "SRS")):
        if not p.is_file():
            raise UsageError(f"{what} not found: {p} (rebuild the circuit with `zkinfer circuit build`)")
    evm_dir = m.dir / EVM_SUBDIR
    stem = "VerifierReusable" if reusable else "Verifier"
    contract = REUSABLE_VERIFIER_CONTRACT if reusable else VERIFIER_CONTRACT
    sol_path, art_path, vka_path = evm_dir / f"{stem}.sol", evm_dir / f"{stem}.json", evm_dir / "vka.json"

    build_key = _key({"vk": sha256_file(vk), "settings": sha256_file(settings_json), "srs": sha256_file(srs),
                      "reusable": reusable, "ezkl": EZKL_VERSION, "solc": solc_version(),
                      "compiler_settings": settings.standard_json()})
    art = _cached(art_path, build_key)
    vka = _cached(vka_path, build_key) if reusable else None
    if art is None or not sol_path.exists() or (reusable and vka is None):
        with tempfile.TemporaryDirectory(prefix="zkinfer-evm-") as tmp:
            tmp_sol = Path(tmp) / "Verifier.sol"
            _render_with_ezkl(
                lambda: ezkl.create_evm_verifier(str(vk), str(settings_json), str(tmp_sol),
                                                 str(Path(tmp) / "abi.json"), str(srs), reusable),
                tmp_sol, "Solidity verifier")
            source = tmp_sol.read_text()
            if reusable:
                tmp_vka = Path(tmp) / "vka.bin"
                _render_with_ezkl(
                    lambda: ezkl.create_evm_vka(str(vk), str(settings_json), str(tmp_vka), str(srs),
                                                VKA_DECIMALS),
                    tmp_vka, "verifying-key artifact")
                words = _read_vka_words(tmp_vka)
                vka = {"buildKey": build_key, "digest": vka_digest(words), "decimals": VKA_DECIMALS,
                       "words": ["0x" + w.hex() for w in words]}
        compiled = compile_solidity({sol_path.name: source}, settings, base_path=evm_dir.parent)
        if contract not in compiled:
            raise SolidityCompileError(f"ezkl's verifier source defines no contract {contract}")
        art = {**compiled[contract], "buildKey": build_key, "circuit": m.name, "manifestSha256": m.sha256,
               "exceedsEip170": exceeds_eip170(compiled[contract])}
        write_text_atomic(sol_path, source)
        if reusable:
            write_json_atomic(vka_path, vka)
        write_json_atomic(art_path, art)

    if art["exceedsEip170"] and warn_eip170:
        log.warning("%s: the verifier's runtime code is %d bytes, over EIP-170's %d: it will not deploy on "
                    "Ethereum mainnet; use the reusable verifier (`--reusable`)",
                    m.name, art["runtimeSize"], EIP170_MAX_RUNTIME_BYTES)
    return VerifierBuild(sol_path=sol_path, artifact_path=art_path, contract_name=contract,
                         runtime_size=art["runtimeSize"], exceeds_eip170=art["exceedsEip170"],
                         reusable=reusable, vka_path=vka_path if reusable else None,
                         vka_digest=vka["digest"] if reusable else None)
