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
from . import prooffile
from .layout import decode_public_outputs, outputs_public


@dataclass
class VerifyResult:
    valid: bool
    reason: str | None = None
    outputs: list = field(default_factory=list)


def verify_proof(circuit_dir: str | os.PathLike, proof_path: str | os.PathLike) -> VerifyResult:
    """`zkinfer verify DIR PROOF.json`: valid, or invalid with the reason."""
    import ezkl

    m = manifest_mod.load(circuit_dir)
    manifest_mod.verify_artifacts(m, manifest_mod.VERIFY_FILES)
    try:
        proof = prooffile.load(proof_path)
    except prooffile.MalformedProofError as e:
        return VerifyResult(valid=False, reason=e.reason)
    problem = proof.problem(m.circuit, m.sha256)
    if problem:
        return VerifyResult(valid=False, reason=problem)
    with tempfile.TemporaryDirectory(prefix="zkinfer-verify-") as tmp:
        # ezkl reads only ezkl's own fields; hand it exactly those.
        p = Path(tmp) / "proof.json"
        p.write_text(json.dumps(proof.ezkl))
        try:
            ok = ezkl.verify(str(p), str(m.artifact(manifest_mod.SETTINGS)), str(m.artifact(manifest_mod.VK)),
                             str(m.artifact(manifest_mod.SRS)))
        except RuntimeError as e:
            return VerifyResult(valid=False, reason=str(e).splitlines()[0])
    if not ok:
        return VerifyResult(valid=False, reason="the Halo2 verifier rejected the proof")
    outputs = decode_public_outputs(proof.instances, m.circuit) if outputs_public(m.circuit) else []
    return VerifyResult(valid=True, outputs=outputs)
