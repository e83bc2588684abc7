"""A circuit's Halo2 verifier, rendered by ezkl and compiled, in one of three modes.

    build_verifier("circuits/credit_risk")                     # DIR/evm/Verifier.sol + Verifier.json
    build_verifier("circuits/credit_k64", mode="split-vk")     # the verifying key in a data contract
    build_verifier("circuits/lenet", mode="reusable")          # shared reusable verifier + this circuit's VKA
    choose_verifier("circuits/credit_k64")                     # the first of the three that fits EIP-170

Ethereum refuses to deploy runtime code above 24,576 bytes (EIP-170). The modes (`VerifierMode`), tried in
this order by `choose_verifier`:

- standard: ezkl's `Halo2Verifier`, the verifying key baked into its code as ~100 `mstore`s. Cheapest calls.
- split-vk: the same verifier with the key in a data contract (`pipeline.evm.split_vk`): ~30 bytes of code
  less per key word for ~3k gas more per call.
- reusable: ezkl's circuit-independent verifier plus a per-circuit verifying-key artifact (VKA) passed at
  every verification (see `ReusableVerifierAdapter.sol`): ~30% more verification gas plus the VKA's
  calldata, but its size does not grow with the circuit.

A build whose inputs have not changed (verifying key, settings, SRS, ezkl, compiler and its settings)
reuses the files in DIR/evm.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import tempfile
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from eth_utils import keccak

from .. import EZKL_VERSION
from .. import manifest as manifest_mod
from ..artifacts import sha256_file, write_json_atomic, write_text_atomic
from ..errors import UsageError
from .solidity import (
    EIP170_MAX_RUNTIME_BYTES,
    VERIFIER_SETTINGS,
    CompilerSettings,
    build_key_of,
    cached_artifact,
    compile_solidity,
    exceeds_eip170,
)
from .split_vk import (
    SPLIT_VK_FORMAT,
    SPLIT_VK_VERIFIER_CONTRACT,
    VERIFIER_CONTRACT,
    VK_DATA_CONTRACT,
    split_vk_source,
    vk_data_file,
)
from .toolchain import SolidityCompileError, solc_version

log = logging.getLogger(__name__)

EVM_SUBDIR = "evm"
REUSABLE_VERIFIER_CONTRACT = "Halo2VerifierReusable"
# The decimals ezkl's reusable verifier rescales instances to in its return value. zkinfer's gates decode
# outputs themselves and ignore that value, but the VKA encodes it: keep ezkl's default.
VKA_DECIMALS = 18


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
    build_key = build_key_of(key)
    art = cached_artifact(art_path, build_key)
    side = cached_artifact(side_path, build_key) if side_path else None
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
            side = vk_data_file(split, build_key, m.name)
        compiled = compile_solidity({sol_path.name: source}, settings, base_path=evm_dir.parent)
        if contract not in compiled:
            raise SolidityCompileError(f"ezkl's verifier source defines no contract {contract}")
        art = {**compiled[contract], "buildKey": build_key, "circuit": m.name, "circuitId": m.circuit_id,
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

    def summary_lines(self) -> list[str]:
        """What `zkinfer contracts build DIR` prints: every verifier built on the way, which was picked, and
        the chosen one's key file."""
        lines = []
        for vb in self.candidates:
            fits = "over EIP-170's limit" if vb.exceeds_eip170 else "fits EIP-170"
            picked = f"; {vb.mode.value} picked" if len(self.candidates) > 1 and vb is self.build else ""
            lines.append(f"{vb.contract_name:24s} {vb.runtime_size:6d} B  {vb.artifact_path} ({fits}{picked})")
        vb = self.build
        if vb.vka_path:
            lines.append(f"{'VKA':24s} {vb.vka_digest}  {vb.vka_path}")
        if vb.vk_data_path:
            lines.append(f"{VK_DATA_CONTRACT:24s} {vb.vk_data_keccak}  {vb.vk_data_path}")
        return lines


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
