"""Solidity: the pinned npm toolchain, compilation with solcjs, and Halo2 verifiers rendered by ezkl.

    build_verifier("circuits/credit_risk")                     # DIR/evm/Verifier.sol + Verifier.json
    build_verifier("circuits/credit_k64", mode="split-vk")     # the verifying key in a data contract
    build_verifier("circuits/lenet", mode="reusable")          # shared reusable verifier + this circuit's VKA
    choose_verifier("circuits/credit_k64")                     # the first of the three that fits EIP-170
    build_contracts()                                          # verifier_contracts/src -> verifier_contracts/out

Everything runs offline: the compiler is npm's `solc` (solcjs, pinned in package.json), never a download.
Artifacts are JSON (schema ``zkinfer/contract-artifact@1``): contractName, sourceName, abi, bytecode,
deployedBytecode, runtimeSize, compiler {name, version, settings}, buildKey. A build whose inputs have not
changed (same sources or verifying key, same compiler and settings) reuses the artifact on disk.

Ethereum refuses to deploy runtime code above 24,576 bytes (EIP-170). A circuit's verifier comes in three
modes (`VerifierMode`), tried in this order by `choose_verifier`:

- standard: ezkl's `Halo2Verifier`, the verifying key baked into its code as ~100 `mstore`s. Cheapest calls.
- split-vk: the same verifier with those `mstore`s replaced by an `extcodecopy` from a data contract holding
  the key, checked against the keccak256 of the key it was generated with (`split_vk_source`): ~30 bytes of
  code less per key word for ~3k gas more per call.
- reusable: ezkl's circuit-independent verifier plus a per-circuit verifying-key artifact (VKA) passed at
  every verification (see `ReusableVerifierAdapter.sol`): ~30% more verification gas plus the VKA's
  calldata, but its size does not grow with the circuit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from enum import StrEnum
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
SPLIT_VK_VERIFIER_CONTRACT = "Halo2VerifierSplitVk"
REUSABLE_VERIFIER_CONTRACT = "Halo2VerifierReusable"
# The name deployments record a split-vk verifier's key data contract under (it has no Solidity source).
VK_DATA_CONTRACT = "Halo2VerifierVkData"
VK_DATA_SCHEMA = "zkinfer/vk-data@1"
# Bump when `split_vk_source` or the data contract's layout changes: cached split-vk builds are redone.
SPLIT_VK_FORMAT = 1
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


class VerifierMode(StrEnum):
    """How a circuit's verifier goes on chain (see the module docstring)."""

    STANDARD = "standard"
    SPLIT_VK = "split-vk"
    REUSABLE = "reusable"


AUTO = "auto"
VERIFIER_CHOICES = (AUTO, *(m.value for m in VerifierMode))
# Per mode: the stem of DIR/evm/<stem>.sol and .json, and the contract they define.
_MODE_FILES = {VerifierMode.STANDARD: ("Verifier", VERIFIER_CONTRACT),
               VerifierMode.SPLIT_VK: ("VerifierSplitVk", SPLIT_VK_VERIFIER_CONTRACT),
               VerifierMode.REUSABLE: ("VerifierReusable", REUSABLE_VERIFIER_CONTRACT)}


def verifier_mode(value: str | VerifierMode | None, reusable: bool | None = None) -> VerifierMode | None:
    """A verifier mode from a user's choice: None (or "auto") means pick by size (`choose_verifier`).

    `reusable` is the older switch (True: reusable, False: standard), kept as an alias; it may not
    contradict an explicit `value`.
    """
    mode = None
    if value is not None and value != AUTO:
        try:
            mode = VerifierMode(value)
        except ValueError:
            raise UsageError(f"unknown verifier mode {value!r}: choose one of {', '.join(VERIFIER_CHOICES)}") from None
    if reusable is not None:
        legacy = VerifierMode.REUSABLE if reusable else VerifierMode.STANDARD
        if mode is not None and mode != legacy:
            flag = "--reusable" if reusable else "--no-reusable"
            raise UsageError(f"{flag} contradicts --verifier {mode.value}: give one of them")
        mode = legacy
    return mode


@dataclass(frozen=True)
class VerifierBuild:
    """What `build_verifier` wrote into DIR/evm."""

    sol_path: Path
    artifact_path: Path
    contract_name: str
    runtime_size: int
    exceeds_eip170: bool  # split-vk: the verifier or its key data contract
    mode: VerifierMode = VerifierMode.STANDARD
    vka_path: Path | None = None  # reusable only: the circuit's verifying-key artifact
    vka_digest: str | None = None  # keccak256 of the VKA words, as the reusable verifier registers it
    vk_data_path: Path | None = None  # split-vk only: the key data contract (vk_data.json)
    vk_data_keccak: str | None = None  # keccak256 of the verifying key the split verifier checks

    @property
    def reusable(self) -> bool:
        return self.mode is VerifierMode.REUSABLE

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


# ---------------------------------------------------------------------------------------------------------
# Split-VK: the verifying key in a data contract


_VK_MARKER = "// Load full vk into memory"
# One word of the key as ezkl writes it: `mstore(0x0880, 0x<64 hex>) // vk_digest`.
_VK_MSTORE = re.compile(r"^(\s*)mstore\((0x[0-9a-fA-F]+), 0x([0-9a-fA-F]{64})\)\s*(//.*)?$")
_VK_MPTR_CONST = re.compile(r"uint256\s+internal\s+constant\s+VK_MPTR\s*=\s*(0x[0-9a-fA-F]+)\s*;")
_CONTRACT_DECL = f"contract {VERIFIER_CONTRACT} {{"
_VERIFY_ASSEMBLY = re.compile(
    r"(function\s+verifyProof\s*\([^)]*\)\s*public\s+returns\s*\(\s*bool\s*\)\s*\{\n)([ \t]*)(assembly\s*\{)")
# The Solidity names the transformation adds: they must not exist in ezkl's source already.
_VK_DATA_IMMUTABLE, _VK_DATA_LOCAL = "VK_DATA", "vkData"


@dataclass(frozen=True)
class SplitVkSource:
    """ezkl's verifier with its verifying key moved out (`split_vk_source`)."""

    source: str  # contract SPLIT_VK_VERIFIER_CONTRACT, constructor(address vkData)
    vk: bytes  # the key's words back to back, as the verifier lays them out in memory
    vk_mptr: int  # where in memory: the VK_MPTR constant

    @property
    def vk_keccak(self) -> str:
        return "0x" + keccak(self.vk).hex()


def _shape_error(what: str) -> SolidityCompileError:
    return SolidityCompileError(f"ezkl's verifier source does not have the shape split-vk expects: {what} "
                                f"(ezkl {EZKL_VERSION}); use the standard or reusable verifier")


def split_vk_source(source: str) -> SplitVkSource:
    """Move the verifying key out of ezkl's `Halo2Verifier` source, into a data contract.

    ezkl writes the key as consecutive ``mstore(VK_MPTR + 32*j, 0x<word>)`` lines after the comment
    ``// Load full vk into memory``. They become one ``extcodecopy`` from the data contract (whose code is
    a 0x00 byte, then the key: `vk_data_initcode`) to the same memory, followed by a check of the copy
    against the keccak256 of the key this verifier was generated with: with any other data contract (or
    none) every call reverts, so the verifier accepts exactly what the original accepts. The contract is
    renamed `Halo2VerifierSplitVk` and takes the data contract's address in its constructor (an immutable,
    read into a local before `verifyProof`'s assembly block, since assembly cannot read immutables).

    Raises SolidityCompileError naming what it did not find when the source has another shape: never a
    verifier without its key check.
    """
    for name in (_VK_DATA_IMMUTABLE, _VK_DATA_LOCAL, SPLIT_VK_VERIFIER_CONTRACT):
        if re.search(rf"\b{name}\b", source):
            raise _shape_error(f"the identifier {name} is already used")
    lines = source.split("\n")
    markers = [i for i, line in enumerate(lines) if _VK_MARKER in line]
    if len(markers) != 1:
        raise _shape_error(f"{len(markers)} lines with {_VK_MARKER!r}, expected one")
    start = markers[0]
    mptr_const = _VK_MPTR_CONST.findall(source)
    if len(mptr_const) != 1:
        raise _shape_error(f"{len(mptr_const)} definitions of the constant VK_MPTR, expected one")
    base = int(mptr_const[0], 16)

    words: list[bytes] = []
    end = start + 1
    while end < len(lines) and (m := _VK_MSTORE.match(lines[end])) and int(m.group(2), 16) == base + 32 * len(words):
        words.append(bytes.fromhex(m.group(3)))
        end += 1
    if not words:
        raise _shape_error(f"no `mstore(VK_MPTR + 32*j, 0x<word>)` lines at VK_MPTR = {base:#06x} after "
                           f"{_VK_MARKER!r}")
    vk = b"".join(words)
    indent = _VK_MSTORE.match(lines[start + 1]).group(1)
    digest = keccak(vk).hex()
    lines[start:end] = [
        f"{indent}// Load full vk into memory: {len(vk)} bytes copied from the vk data contract (code: 0x00, then",
        f"{indent}// the key; kept apart so this verifier fits EIP-170), then checked against the keccak256 of",
        f"{indent}// the key this verifier was generated with: with any other data contract, every call reverts.",
        f"{indent}extcodecopy({_VK_DATA_LOCAL}, {base:#06x}, 1, {len(vk):#06x})",
        f"{indent}if iszero(eq(keccak256({base:#06x}, {len(vk):#06x}), 0x{digest})) {{ revert(0, 0) }}",
    ]
    out = "\n".join(lines)

    if out.count(_CONTRACT_DECL) != 1:
        raise _shape_error(f"{out.count(_CONTRACT_DECL)} declarations `{_CONTRACT_DECL}`, expected one")
    out = out.replace(_CONTRACT_DECL, (
        f"contract {SPLIT_VK_VERIFIER_CONTRACT} {{\n"
        f"    /// The data contract holding the verifying key (see `verifyProof`): its code is 0x00, then the key.\n"
        f"    address internal immutable {_VK_DATA_IMMUTABLE};\n\n"
        f"    constructor(address vkData) {{\n"
        f"        {_VK_DATA_IMMUTABLE} = vkData;\n"
        f"    }}\n"), 1)
    found = len(_VERIFY_ASSEMBLY.findall(out))
    if found != 1:
        raise _shape_error(f"{found} `verifyProof(...) public returns (bool) {{ assembly {{` blocks, expected one")
    out = _VERIFY_ASSEMBLY.sub(
        lambda m: f"{m.group(1)}{m.group(2)}address {_VK_DATA_LOCAL} = {_VK_DATA_IMMUTABLE};\n{m.group(2)}{m.group(3)}",
        out, count=1)
    return SplitVkSource(source=out, vk=vk, vk_mptr=base)


# The data contract's init code, before its runtime code: PUSH2 size, DUP1, PUSH1 12 (where the runtime code
# starts), PUSH1 0, CODECOPY, PUSH1 0, RETURN.
_VK_DATA_INIT_PREFIX = bytes.fromhex("80600c6000396000f3")


def vk_data_runtime(vk: bytes) -> bytes:
    """The key data contract's code: a 0x00 (STOP: calling it does nothing), then the key."""
    return b"\x00" + vk


def vk_data_initcode(vk: bytes) -> bytes:
    """Init code that deploys `vk_data_runtime(vk)` as it is (no constructor, no Solidity)."""
    runtime = vk_data_runtime(vk)
    if len(runtime) > 0xFFFF:
        raise SolidityCompileError(f"a verifying key of {len(vk)} bytes does not fit a data contract")
    initcode = b"\x61" + len(runtime).to_bytes(2, "big") + _VK_DATA_INIT_PREFIX
    assert len(initcode) == 0x0C
    return initcode + runtime


def load_vk_data(path: str | os.PathLike) -> dict:
    """A split-vk verifier's vk_data.json (schema ``zkinfer/vk-data@1``)."""
    from .artifacts import read_json

    data = read_json(path, "vk data file")
    if not isinstance(data, dict) or data.get("schema") != VK_DATA_SCHEMA:
        raise UsageError(f"{path} is not a zkinfer vk data file (expected schema {VK_DATA_SCHEMA!r})")
    return data


# ---------------------------------------------------------------------------------------------------------
# Building verifiers


def build_verifier(circuit_dir: str | os.PathLike, mode: VerifierMode | str | None = None,
                   settings: CompilerSettings = VERIFIER_SETTINGS, warn_eip170: bool = True, *,
                   reusable: bool | None = None) -> VerifierBuild:
    """Render the circuit's Halo2 verifier with ezkl and compile it into DIR/evm.

    Standard: ``Verifier.sol`` and ``Verifier.json`` (contract ``Halo2Verifier``, the verifying key baked in).
    Split-vk: ``VerifierSplitVk.sol``/``.json`` (contract ``Halo2VerifierSplitVk``, constructor(address)) and
    ``vk_data.json`` (the key data contract: init code, key length and keccak256; see `split_vk_source`).
    Reusable: ``VerifierReusable.sol``/``.json`` (contract ``Halo2VerifierReusable``, identical for every
    circuit) and ``vka.json`` (the circuit's verifying-key artifact: words and digest).
    `mode` None means standard; `reusable` is the older switch (True: reusable, False: standard).
    Logs a warning (unless `warn_eip170` is false: the caller handles it) when the runtime code exceeds
    EIP-170's 24,576 bytes, where it would not deploy on Ethereum. Rebuilds only when the verifying key,
    settings, SRS, ezkl, compiler or compiler settings changed.
    """
    import ezkl

    mode = verifier_mode(mode, reusable) or VerifierMode.STANDARD
    m = manifest_mod.load(circuit_dir)
    vk, settings_json, srs = m.artifact(manifest_mod.VK), m.artifact(manifest_mod.SETTINGS), m.dir / manifest_mod.SRS
    for p, what in ((vk, "verifying key"), (settings_json, "settings"), (srs, "SRS")):
        if not p.is_file():
            raise UsageError(f"{what} not found: {p} (rebuild the circuit with `zkinfer circuit build`)")
    evm_dir = m.dir / EVM_SUBDIR
    stem, contract = _MODE_FILES[mode]
    sol_path, art_path = evm_dir / f"{stem}.sol", evm_dir / f"{stem}.json"
    # The per-circuit key file each mode besides standard needs next to its verifier.
    side_path = {VerifierMode.REUSABLE: evm_dir / "vka.json", VerifierMode.SPLIT_VK: evm_dir / "vk_data.json"}.get(mode)

    key = {"vk": sha256_file(vk), "settings": sha256_file(settings_json), "srs": sha256_file(srs),
           "reusable": mode is VerifierMode.REUSABLE, "ezkl": EZKL_VERSION, "solc": solc_version(),
           "compiler_settings": settings.standard_json()}
    if mode is VerifierMode.SPLIT_VK:  # (standard and reusable keep their keys: their caches stay valid)
        key["split_vk"] = SPLIT_VK_FORMAT
    build_key = _key(key)
    art = _cached(art_path, build_key)
    side = _cached(side_path, build_key) if side_path else None
    if art is None or not sol_path.exists() or (side_path and side is None):
        with tempfile.TemporaryDirectory(prefix="zkinfer-evm-") as tmp:
            tmp_sol = Path(tmp) / "Verifier.sol"
            _render_with_ezkl(
                lambda: ezkl.create_evm_verifier(str(vk), str(settings_json), str(tmp_sol),
                                                 str(Path(tmp) / "abi.json"), str(srs),
                                                 mode is VerifierMode.REUSABLE),
                tmp_sol, "Solidity verifier")
            source = tmp_sol.read_text()
            if mode is VerifierMode.REUSABLE:
                tmp_vka = Path(tmp) / "vka.bin"
                _render_with_ezkl(
                    lambda: ezkl.create_evm_vka(str(vk), str(settings_json), str(tmp_vka), str(srs),
                                                VKA_DECIMALS),
                    tmp_vka, "verifying-key artifact")
                words = _read_vka_words(tmp_vka)
                side = {"buildKey": build_key, "digest": vka_digest(words), "decimals": VKA_DECIMALS,
                        "words": ["0x" + w.hex() for w in words]}
        if mode is VerifierMode.SPLIT_VK:
            split = split_vk_source(source)
            source = split.source
            runtime = vk_data_runtime(split.vk)
            side = {"schema": VK_DATA_SCHEMA, "buildKey": build_key, "circuit": m.name,
                    "contractName": VK_DATA_CONTRACT, "vkBytes": len(split.vk), "vkKeccak": split.vk_keccak,
                    "vkMptr": split.vk_mptr, "initcode": "0x" + vk_data_initcode(split.vk).hex(),
                    "deployedBytecode": "0x" + runtime.hex(), "runtimeSize": len(runtime),
                    "exceedsEip170": len(runtime) > EIP170_MAX_RUNTIME_BYTES}
        compiled = compile_solidity({sol_path.name: source}, settings, base_path=evm_dir.parent)
        if contract not in compiled:
            raise SolidityCompileError(f"ezkl's verifier source defines no contract {contract}")
        art = {**compiled[contract], "buildKey": build_key, "circuit": m.name, "manifestSha256": m.sha256,
               "exceedsEip170": exceeds_eip170(compiled[contract])}
        if mode is VerifierMode.SPLIT_VK:
            art["vkDataKeccak"] = side["vkKeccak"]
        write_text_atomic(sol_path, source)
        if side_path:
            write_json_atomic(side_path, side)
        write_json_atomic(art_path, art)

    too_big = art["exceedsEip170"] or bool(mode is VerifierMode.SPLIT_VK and side["exceedsEip170"])
    if too_big and warn_eip170:
        log.warning("%s: the %s verifier's runtime code is %d bytes, over EIP-170's %d: it will not deploy on "
                    "Ethereum mainnet; %s", m.name, mode.value, art["runtimeSize"], EIP170_MAX_RUNTIME_BYTES,
                    _EIP170_ADVICE[mode])
    return VerifierBuild(
        sol_path=sol_path, artifact_path=art_path, contract_name=contract, runtime_size=art["runtimeSize"],
        exceeds_eip170=too_big, mode=mode,
        vka_path=side_path if mode is VerifierMode.REUSABLE else None,
        vka_digest=side["digest"] if mode is VerifierMode.REUSABLE else None,
        vk_data_path=side_path if mode is VerifierMode.SPLIT_VK else None,
        vk_data_keccak=side["vkKeccak"] if mode is VerifierMode.SPLIT_VK else None)


_EIP170_ADVICE = {
    VerifierMode.STANDARD: "use the split-vk verifier (`--verifier split-vk`: the verifying key in a data "
                           "contract, ~3k gas more per proof) or ezkl's reusable verifier (`--verifier reusable`)",
    VerifierMode.SPLIT_VK: "use ezkl's reusable verifier (`--verifier reusable`)",
    VerifierMode.REUSABLE: "no smaller verifier exists",
}


@dataclass(frozen=True)
class VerifierChoice:
    """The verifier `choose_verifier` picked, why, and every verifier it built on the way (in order)."""

    build: VerifierBuild
    reason: str
    candidates: tuple[VerifierBuild, ...]

    @property
    def mode(self) -> VerifierMode:
        return self.build.mode


def choose_verifier(circuit_dir: str | os.PathLike, mode: VerifierMode | str | None = AUTO,
                    settings: CompilerSettings = VERIFIER_SETTINGS) -> VerifierChoice:
    """Build the circuit's verifier in `mode`, or (None or "auto") in the first mode whose runtime code fits
    EIP-170: standard, then split-vk, then reusable. Logs which and why.

    Auto never stops at a split-vk build that fails (ezkl's source in another shape): it warns and goes on to
    the reusable verifier. A requested mode builds that mode or raises.
    """
    requested = verifier_mode(mode)
    name = manifest_mod.load(circuit_dir).name
    if requested is not None:
        vb = build_verifier(circuit_dir, requested, settings)
        return VerifierChoice(vb, f"the {requested.value} verifier was requested", (vb,))

    limit = f"EIP-170's {EIP170_MAX_RUNTIME_BYTES:,} bytes"
    standard = build_verifier(circuit_dir, VerifierMode.STANDARD, settings, warn_eip170=False)
    candidates = [standard]
    if not standard.exceeds_eip170:
        reason = f"its runtime code ({standard.runtime_size:,} bytes) fits {limit}"
    else:
        over = f"the standard verifier's runtime code ({standard.runtime_size:,} bytes) exceeds {limit}"
        try:
            split = build_verifier(circuit_dir, VerifierMode.SPLIT_VK, settings, warn_eip170=False)
        except SolidityCompileError as e:
            log.warning("%s: no split-vk verifier (%s): trying the reusable verifier", name, e.message)
            split = None
        if split is not None:
            candidates.append(split)
        if split is not None and not split.exceeds_eip170:
            reason = (f"{over}; with the verifying key in a data contract it is {split.runtime_size:,} bytes")
        else:
            reusable = build_verifier(circuit_dir, VerifierMode.REUSABLE, settings)
            candidates.append(reusable)
            split_size = f"split-vk's {split.runtime_size:,} bytes too" if split else "split-vk failed to build"
            reason = f"{over}, and {split_size}: ezkl's reusable verifier is {reusable.runtime_size:,} bytes"
    chosen = candidates[-1]
    log.info("%s: %s verifier: %s", name, chosen.mode.value, reason)
    return VerifierChoice(chosen, reason, tuple(candidates))
