"""Verify a proof file against a circuit's verifying key, off chain.

Besides the Halo2 check itself (ezkl verifies `proof` against `instances`), a zkinfer proof file carries
copies that other consumers read: `hex_proof` and `calldata` go to the Solidity verifier, `outputs` to
people. A file whose copies disagree with what was proven is invalid, even if its `proof` field verifies.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import manifest as manifest_mod
from .artifacts import read_json
from .errors import UsageError
from .layout import decode_public_outputs, outputs_public, slot_layout
from .prove import evm_calldata

REQUIRED_FIELDS = ("instances", "proof", "hex_proof")
# What zkinfer adds to ezkl's proof.json (see pipeline.prove); ezkl is handed the file without them.
ZKINFER_FIELDS = ("outputs", "outputs_public", "calldata", "zkinfer", "slots")
# Decoded outputs are printed with float rounding; they must match the instances to this precision.
OUTPUT_MATCH_EPS = 1e-9


@dataclass
class VerifyResult:
    valid: bool
    reason: str | None = None
    outputs: list = field(default_factory=list)


def _consistency_problem(proof: dict, circuit: dict, manifest_sha: str) -> str | None:
    meta = proof.get("zkinfer") or {}
    if meta.get("manifest_sha256") and meta["manifest_sha256"] != manifest_sha:
        return (f"proof was made for circuit manifest {meta['manifest_sha256'][:16]}..., "
                f"not this one ({manifest_sha[:16]}...)")
    instances = proof["instances"][0] if proof["instances"] else []
    if len(instances) != circuit["num_instances"]:
        return f"proof has {len(instances)} public instances, the circuit has {circuit['num_instances']}"
    if proof["hex_proof"].lower() != "0x" + bytes(proof["proof"]).hex():
        return "hex_proof does not match the proof bytes"
    if "calldata" in proof and proof["calldata"] != evm_calldata(proof):
        return "calldata does not match the proof and its instances"
    if proof.get("outputs_public") and "outputs" in proof:
        proven = decode_public_outputs(instances, circuit)
        claimed = proof["outputs"]
        if len(claimed) != len(proven) or any(
            len(a) != len(b) or any(abs(x - y) > OUTPUT_MATCH_EPS for x, y in zip(a, b, strict=True))
            for a, b in zip(claimed, proven, strict=True)
        ):
            return "outputs field does not match the proven output instances"
    slots = proof.get("slots")
    if slots is not None:
        layout = slot_layout(circuit)
        if len(slots) != layout.count or [s.get("slot") for s in slots] != list(range(layout.count)):
            return f"slots field lists {len(slots)} slots, the circuit has {layout.count}"
        if any(s.get("outputs") != layout.outputs_of(proof["outputs"], i) for i, s in enumerate(slots)):
            return "slots field's outputs do not match the outputs field"
    return None


def load_proof(path: str | os.PathLike) -> dict:
    proof = read_json(path, "proof file")
    if not isinstance(proof, dict):
        raise UsageError(f"proof file {path} is not a JSON object")
    missing = [f for f in REQUIRED_FIELDS if f not in proof]
    if missing:
        raise UsageError(f"proof file {path} lacks field(s) {', '.join(missing)}: not an ezkl/zkinfer proof")
    if not isinstance(proof["proof"], list) or not isinstance(proof["instances"], list):
        raise UsageError(f"proof file {path}: 'proof' and 'instances' must be lists")
    return proof


def verify_proof(circuit_dir: str | os.PathLike, proof_path: str | os.PathLike) -> VerifyResult:
    """`zkinfer verify DIR PROOF.json`: valid, or invalid with the reason."""
    import ezkl

    m = manifest_mod.load(circuit_dir)
    manifest_mod.verify_artifacts(m, manifest_mod.VERIFY_FILES)
    proof = load_proof(proof_path)
    try:
        problem = _consistency_problem(proof, m.circuit, m.sha256)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        problem = f"malformed proof fields ({type(e).__name__}: {e})"
    if problem:
        return VerifyResult(valid=False, reason=problem)
    with tempfile.TemporaryDirectory(prefix="zkinfer-verify-") as tmp:
        # ezkl reads only ezkl's own fields; hand it exactly those.
        p = Path(tmp) / "proof.json"
        p.write_text(json.dumps({k: v for k, v in proof.items() if k not in ZKINFER_FIELDS}))
        try:
            ok = ezkl.verify(str(p), str(m.artifact(manifest_mod.SETTINGS)), str(m.artifact(manifest_mod.VK)),
                             str(m.artifact(manifest_mod.SRS)))
        except RuntimeError as e:
            return VerifyResult(valid=False, reason=str(e).splitlines()[0])
    if not ok:
        return VerifyResult(valid=False, reason="the Halo2 verifier rejected the proof")
    outputs = decode_public_outputs(proof["instances"][0], m.circuit) if outputs_public(m.circuit) else []
    return VerifyResult(valid=True, outputs=outputs)
