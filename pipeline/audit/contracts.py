"""The deployed contracts' code against this clone's: the runtime code compared byte for byte with the
immutables taken from the deployed code (`compare_code`), the verifier against the one rendered from the
rebuilt verifying key (and its key or VKA data contracts), the registry, and the gates accepting the model."""

from __future__ import annotations

import functools
from pathlib import Path

from eth_utils import keccak, to_checksum_address

from .. import evm
from ..errors import ZkinferError
from .deployment import GATE_CONTRACTS, accepting_gates, gate_abi
from .report import ERROR, WARNING, AuditReport

# ------------------------------------------------------------------------------------------------- code compare


def _strip_metadata(code: bytes) -> bytes:
    """Runtime code without solc's CBOR metadata (its length is the code's last two bytes)."""
    if len(code) < 2:
        return code
    n = int.from_bytes(code[-2:], "big")
    return code[: -(n + 2)] if n + 2 <= len(code) else code


def _immutables(artifact: dict, deployed: bytes) -> dict[str, bytes] | None:
    """Each immutable's value as the deployed code holds it at solc's offsets (None if the offsets disagree)."""
    out = {}
    for ident, refs in (artifact.get("immutableReferences") or {}).items():
        vals = {deployed[r["start"]: r["start"] + r["length"]] for r in refs}
        if len(vals) != 1:
            return None
        out[ident] = vals.pop()
    return out


def compare_code(artifact: dict, deployed: bytes, what: str) -> tuple[bool, str, str, dict[str, bytes]]:
    """(ok, detail, severity, immutables): the deployed runtime code against a compiled artifact's, byte for
    byte, with the immutables' slots taken from the deployed code; equal but for solc's metadata hash is a
    warning (the source differs only where no code comes from, e.g. comments)."""
    compiled = bytearray(bytes.fromhex(artifact["deployedBytecode"][2:]))
    if not deployed:
        return False, f"no code at {what}", ERROR, {}
    imm = _immutables(artifact, deployed) if len(deployed) == len(compiled) else None
    refs = artifact.get("immutableReferences") or {}
    if imm is not None:
        for ident, value in imm.items():
            for r in refs[ident]:
                compiled[r["start"]: r["start"] + r["length"]] = value
    n_imm = sum(len(r) for r in refs.values())
    how = (f"{len(deployed):,} bytes" + (f", {len(refs)} immutable(s) in {n_imm} slot(s) taken from the deployed "
                                          "code" if refs else ", no immutables"))
    name = artifact["contractName"]
    if bytes(compiled) == deployed:
        return True, f"{what} runtime code equals {name} compiled here, byte for byte incl. solc metadata ({how})", \
            ERROR, imm or {}
    if _strip_metadata(bytes(compiled)) == _strip_metadata(deployed):
        return False, (f"{what} executable code equals {name} compiled here but solc's metadata hash differs "
                       f"(the source text differs outside the code) ({how})"), WARNING, imm or {}
    return False, (f"{what} runtime code ({len(deployed):,} bytes, keccak {keccak(deployed).hex()[:16]}...) is not "
                   f"{name} compiled here ({len(compiled):,} bytes, keccak {keccak(bytes(compiled)).hex()[:16]}...)"), \
        ERROR, imm or {}


def _fresh_artifact(name: str) -> dict:
    """One of the project's contracts as this clone's sources compile (with its immutables' offsets, which
    artifacts built before they were recorded lack)."""
    art = evm.contract_artifact(name)
    return art if "immutableReferences" in art else _compiled_sources()[name]


@functools.cache
def _compiled_sources() -> dict[str, dict]:
    return evm.compile_solidity(evm.contract_sources(), evm.CONTRACT_SETTINGS, base_path=evm.CONTRACTS_DIR,
                                warnings_are_errors=True)


# ---------------------------------------------------------------------------------------------------- checks

def registry_code(chain, registry: str) -> tuple[bool, str, str]:
    ok, detail, severity, _ = compare_code(evm.contract_artifact("ModelRegistry"), chain.code(registry),
                                           f"registry {registry}:")
    return ok, detail, severity


def verifier_checks(r: AuditReport, chain, verifier: str, rebuilt: dict, tmp: Path, recorded_mode) -> None:
    """The deployed verifier against the one rendered from the rebuilt vk: in the mode the deployments file
    records, else each mode in `deploy`'s order until one matches."""
    deployed = chain.code(verifier)
    modes = [evm.VerifierMode(recorded_mode)] if recorded_mode else list(evm.VerifierMode)
    last = None
    for mode in modes:
        rendered = evm.render_verifier(rebuilt["vk"], rebuilt["settings_path"], rebuilt["srs"], mode,
                                       base_path=tmp)
        if mode is evm.VerifierMode.REUSABLE:
            last = _reusable_checks(chain, verifier, deployed, rendered)
        else:
            what = f"verifier {verifier} ({mode.value}):"
            ok, detail, severity, imm = compare_code(rendered.artifact, deployed, what)
            last = [("verifier code", ok, detail, severity)]
            if mode is evm.VerifierMode.SPLIT_VK and imm:
                last.append(_vk_data_check(chain, imm, rendered))
        if last[0][1] or last[0][3] == WARNING:
            break
    for check in last:
        r.add(*check)


def _vk_data_check(chain, imm: dict[str, bytes], rendered) -> tuple:
    [value] = imm.values()
    address = to_checksum_address(value[-20:])
    code = chain.code(address)
    want = evm.vk_data_runtime(rendered.split.vk)
    return ("vk data contract", code == want,
            f"{address} (the verifier's immutable): code {'equals' if code == want else 'is not'} 0x00 then the "
            f"rebuilt key's {len(rendered.split.vk):,} bytes")


def _reusable_checks(chain, adapter: str, deployed: bytes, rendered) -> list[tuple]:
    """The adapter (this clone's ReusableVerifierAdapter), the shared verifier it calls (ezkl's reusable
    verifier rendered here), and the VKA its data contract holds (rendered from the rebuilt vk)."""
    art = _fresh_artifact("ReusableVerifierAdapter")
    ok, detail, severity, _ = compare_code(art, deployed, f"adapter {adapter} (reusable):")
    checks = [("verifier code", ok, detail, severity)]
    if not ok:
        return checks
    a = chain.contract(adapter, art["abi"])
    shared = chain.call(a.functions.reusableVerifier(), "reading the adapter")
    store = chain.call(a.functions.vkaStore(), "reading the adapter")
    digest = "0x" + bytes(chain.call(a.functions.vkaDigest(), "reading the adapter")).hex()
    ok2, detail2, sev2, _ = compare_code(rendered.artifact, chain.code(shared), f"reusable verifier {shared}:")
    checks.append(("reusable verifier code", ok2, detail2, sev2))
    want = b"\x00" + b"".join(bytes.fromhex(w[2:]) for w in rendered.side["words"])
    code = chain.code(store)
    checks.append(("vka", code == want and digest == rendered.side["digest"],
                   f"the adapter's VKA store {store} holds {'the' if code == want else 'not the'} "
                   f"{len(rendered.side['words'])} VKA words rendered from the rebuilt vk; digest {digest[:18]}... "
                   f"{'equals' if digest == rendered.side['digest'] else 'is not'} theirs"))
    return checks


def activity_checks(r: AuditReport, chain, rec: dict, model_id: int, book: dict | None) -> None:
    r.add("model active", rec["active"], "active in the registry" if rec["active"] else "revoked in the registry")
    also = []
    if book:
        also = [c["address"] for n, c in book["contracts"].items() if n.split("/")[-1] in GATE_CONTRACTS]
    abi = gate_abi()
    accepting = []
    for g in accepting_gates(chain, model_id, also):
        try:
            acc = chain.call(chain.contract(g, abi).functions.acceptedModel(model_id), "reading a gate")
        except ZkinferError:
            continue
        if not acc[0]:
            continue
        kind = "a contract that is none of zkinfer's gates compiled here"
        for name in GATE_CONTRACTS:
            if compare_code(_fresh_artifact(name), chain.code(g), "")[0]:
                kind = name
                break
        accepting.append(f"{g} ({kind}, output {acc[1]}{', SUSPENDED by its breaker' if acc[2] else ''})")
    r.add("accepting gates", bool(accepting),
          ("accepted by " + "; ".join(accepting)) if accepting else "no gate accepts it", WARNING)
