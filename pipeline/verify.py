"""Verify a proof file against a circuit's verifying key, off chain.

Besides the Halo2 check itself (ezkl verifies `proof` against `instances`), a zkinfer proof file carries
copies that other consumers read: `hex_proof` and `calldata` go to the Solidity verifier, `outputs` to
people. A file whose copies disagree with what was proven is invalid, even if its `proof` field verifies
(`pipeline.prooffile` checks them).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import manifest as manifest_mod
from . import native, prooffile, require_ezkl
from .layout import decode_public_outputs, outputs_public
from .native import NativeFailure


@dataclass
class VerifyResult:
    valid: bool
    reason: str | None = None
    outputs: list = field(default_factory=list)


def verify_proof(circuit_dir: str | os.PathLike, proof_path: str | os.PathLike) -> VerifyResult:
    """`zkinfer verify DIR PROOF.json`: valid, or invalid with the reason."""
    m = manifest_mod.load(circuit_dir)
    require_ezkl(m.data["ezkl_version"], f"circuit {m.name}")
    manifest_mod.verify_artifacts(m, manifest_mod.VERIFY_FILES)
    try:
        proof = prooffile.load(proof_path)
    except prooffile.MalformedProofError as e:
        return VerifyResult(valid=False, reason=e.reason)
    problem = proof.problem(m.circuit, m.circuit_id)
    if problem:
        return VerifyResult(valid=False, reason=problem)
    with tempfile.TemporaryDirectory(prefix="zkinfer-verify-") as tmp:
        ok, reason = _halo2_verifies(proof.ezkl, m, Path(tmp))
        if not ok:
            return VerifyResult(valid=False, reason=reason)
        # halo2 reads a proof's bytes in order and ignores any that follow: so a valid proof with bytes
        # appended verifies too. A proof is canonical when dropping its last byte breaks it.
        shorter = dict(proof.ezkl, proof=proof.ezkl["proof"][:-1], hex_proof=proof.hex_proof[:-2])
        if proof.ezkl["proof"] and _halo2_verifies(shorter, m, Path(tmp))[0]:
            return VerifyResult(valid=False, reason="the proof has trailing bytes after the proof itself")
    outputs = decode_public_outputs(proof.instances, m.circuit) if outputs_public(m.circuit) else []
    return VerifyResult(valid=True, outputs=outputs)


def _halo2_verifies(ezkl_fields: dict, m: manifest_mod.Manifest, tmp: Path) -> tuple[bool, str | None]:
    """ezkl's verification of its own proof fields (all ezkl reads) against the circuit's key."""
    import ezkl

    p = tmp / "proof.json"
    p.write_text(json.dumps(ezkl_fields))
    try:
        ok = native.call(ezkl.verify, str(p), str(m.artifact(manifest_mod.SETTINGS)), str(m.artifact(manifest_mod.VK)),
                         str(m.artifact(manifest_mod.SRS)), log_path=tmp / "ezkl.log")
    except NativeFailure as e:
        return False, e.describe()
    return (True, None) if ok else (False, "the Halo2 verifier rejected the proof")
