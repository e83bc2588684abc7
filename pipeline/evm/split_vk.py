"""Split-vk: ezkl's Halo2 verifier with its verifying key moved into a data contract.

ezkl bakes the verifying key into its verifier as ~100 `mstore`s. `split_vk_source` rewrites the source so
the key is copied in with one `extcodecopy` from a data contract and checked against the keccak256 of the
key the verifier was generated with: ~30 bytes of code less per key word for ~3k gas more per call, which
keeps batched circuits' verifiers under EIP-170.

The data contract's contract with the rest of zkinfer: its code is a 0x00 byte (STOP), then the key
(`vk_data_runtime`), deployed by init code without Solidity (`vk_data_initcode`). `vk_data_file` records it
as ``DIR/evm/vk_data.json`` (schema ``zkinfer/vk-data@1``); `checked_vk` reads it back for deployment,
refusing a file that no longer holds the key its verifier checks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from eth_utils import keccak

from .. import EZKL_VERSION
from ..artifacts import read_json
from ..errors import UsageError
from .solidity import EIP170_MAX_RUNTIME_BYTES
from .toolchain import SolidityCompileError

VERIFIER_CONTRACT = "Halo2Verifier"  # ezkl's verifier, the source `split_vk_source` rewrites
SPLIT_VK_VERIFIER_CONTRACT = "Halo2VerifierSplitVk"
# The name deployments record a split-vk verifier's key data contract under (it has no Solidity source).
VK_DATA_CONTRACT = "Halo2VerifierVkData"
VK_DATA_SCHEMA = "zkinfer/vk-data@1"
# Bump when `split_vk_source` or the data contract's layout changes: cached split-vk builds are redone.
SPLIT_VK_FORMAT = 1

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
    data = read_json(path, "vk data file")
    if not isinstance(data, dict) or data.get("schema") != VK_DATA_SCHEMA:
        raise UsageError(f"{path} is not a zkinfer vk data file (expected schema {VK_DATA_SCHEMA!r})")
    return data


def vk_data_file(split: SplitVkSource, build_key: str, circuit: str) -> dict:
    """What ``vk_data.json`` records of the key data contract for a split-vk verifier built from `split`."""
    runtime = vk_data_runtime(split.vk)
    return {"schema": VK_DATA_SCHEMA, "buildKey": build_key, "circuit": circuit,
            "contractName": VK_DATA_CONTRACT, "vkBytes": len(split.vk), "vkKeccak": split.vk_keccak,
            "vkMptr": split.vk_mptr, "initcode": "0x" + vk_data_initcode(split.vk).hex(),
            "deployedBytecode": "0x" + runtime.hex(), "runtimeSize": len(runtime),
            "exceedsEip170": len(runtime) > EIP170_MAX_RUNTIME_BYTES}


def checked_vk(vk_data_path: str | os.PathLike, vk_keccak: str, verifier_path: str | os.PathLike) -> bytes:
    """The verifying key a vk_data.json holds, checked against `vk_keccak` (what the verifier at
    `verifier_path` checks) and against its own init code; UsageError when they disagree."""
    data = load_vk_data(vk_data_path)
    vk = bytes.fromhex(data["deployedBytecode"][2:])[1:]
    if "0x" + keccak(vk).hex() != vk_keccak or bytes.fromhex(data["initcode"][2:]) != vk_data_initcode(vk):
        raise UsageError(f"{vk_data_path} does not hold the verifying key {verifier_path} checks "
                         f"(keccak256 {vk_keccak}): rebuild with `zkinfer contracts build --verifier split-vk`")
    return vk
