"""The rebuilt circuit against what the manifest and the registry record of it: its identity (the vk's hash, the
circuit id recomputed from the published files and the rebuilt vk), its description (visibility, scales,
instance layout) and the registry's instance layout, output scale and weight commitment."""

from __future__ import annotations

import json
import math
from pathlib import Path

from eth_utils import keccak

from .. import manifest as manifest_mod
from ..artifacts import sha256_file
from ..compile import CircuitSettings
from ..errors import ZkinferError
from ..felt import felt_to_uint256, words
from ..layout import registry_layout
from .rebuild import param_hashes, zero_input_witness
from .report import AuditReport

ZERO32 = "0x" + "00" * 32


def identity_checks(r: AuditReport, manifest: dict, rec: dict, rebuilt: dict, d: Path) -> None:
    arts = manifest.get("artifacts") or {}
    vk_manifest = (arts.get(manifest_mod.VK) or {}).get("sha256")
    vk = rebuilt.get("vk_sha256")
    reg_vk = str(rec["vkHash"])[2:]
    r.add("vk vs manifest", vk is not None and vk == vk_manifest,
          f"rebuilt vk.key sha256 {str(vk)[:16]}...; the manifest records {str(vk_manifest)[:16]}...")
    r.add("vk vs registry", vk is not None and vk == reg_vk,
          f"rebuilt vk.key sha256 {str(vk)[:16]}...; the registry records {reg_vk[:16]}...")
    source = d / manifest_mod.SOURCE_ONNX
    if source.is_file():
        s = sha256_file(source)
        r.add(manifest_mod.SOURCE_ONNX, s == (arts.get(manifest_mod.SOURCE_ONNX) or {}).get("sha256"),
              f"sha256 {s[:16]}... against the manifest's record")
    # The id as these files give it: the manifest's content with the hashes of the published graph and the
    # rebuilt key (source.onnx's hash, the fidelity gate's reference, is the manifest's unless published).
    try:
        data = json.loads(json.dumps(manifest))
        data["artifacts"][manifest_mod.ONNX]["sha256"] = rebuilt["onnx_sha256"]
        if vk:
            data["artifacts"][manifest_mod.VK]["sha256"] = vk
        if source.is_file():
            data["artifacts"][manifest_mod.SOURCE_ONNX]["sha256"] = sha256_file(source)
        recomputed = manifest_mod.circuit_id(data, rebuilt["settings"])
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        r.add("manifest identity", False, f"manifest.json is incomplete ({type(e).__name__}: {e})")
        return
    recorded = manifest.get("circuit_id")
    reg = rec["circuitId"][2:] if rec.get("circuitId") else None
    r.add("manifest identity", recomputed == recorded,
          f"circuit id recomputed from manifest.json, settings.json, network.onnx and the rebuilt vk: "
          f"{recomputed[:16]}...; the manifest records {str(recorded)[:16]}...")
    r.add("circuit id vs registry", recomputed == reg,
          f"recomputed {recomputed[:16]}...; the registry records {str(reg)[:16]}...")


def layout_checks(r: AuditReport, manifest: dict, rec: dict, rebuilt: dict) -> None:
    try:
        m = manifest_mod.Manifest(path=r.artifacts_dir / manifest_mod.MANIFEST, data=manifest, sha256="")
        lay = registry_layout(m).record()
        scales = set(manifest["circuit"]["output_scales"])
        visibility = manifest["circuit"]["visibility"]["param"]
    except (ZkinferError, KeyError, TypeError) as e:
        r.add("instance layout", False, f"the manifest gives no layout a gate can use ({e})")
        return
    reg_lay = {k: rec["instanceLayout"].get(k) for k in lay}
    r.add("instance layout", reg_lay == lay and scales == {rec["outputScale"]},
          f"registry {reg_lay}, output scale {rec['outputScale']}; the circuit {lay}, output scale(s) {sorted(scales)}")
    wc = rec["weightCommitment"]
    if visibility == "fixed":
        r.add("weight commitment", lay["paramHashes"] == 0 and wc == ZERO32,
              f"fixed weights: they are the verifying key's fixed columns (checked by its hash); the registry "
              f"records {'no' if wc == ZERO32 else 'a'} weight commitment ({wc[:18]}...)")
        return
    if visibility != "hashed":
        r.add("weight commitment", False, f"{visibility} weights: free witness values, any weights verify")
        return
    hashes = param_hashes(manifest, rebuilt)
    if hashes is None:
        r.add("weight commitment", False, "not checked: the circuit could not be rebuilt and run")
        return
    computed = "0x" + keccak(words(felt_to_uint256(h) for h in hashes)).hex()
    recorded = manifest["circuit"].get("param_hashes") or []
    r.add("weight commitment", computed == wc and list(hashes) == list(recorded),
          f"keccak256 of the {len(hashes)} param hash(es) a witness of the rebuilt circuit carries: "
          f"{computed[:18]}...; "
          f"the registry records {wc[:18]}...; the manifest's hashes {'agree' if hashes == recorded else 'differ'}")


def circuit_checks(r: AuditReport, manifest: dict, rebuilt: dict) -> None:
    """The manifest's description of the circuit (which the registry's layout and scale come from) against the
    rebuilt circuit itself: its settings (visibility, scales, logrows) and its witness's public instances."""
    from ..layout import instance_layout

    try:
        c = manifest["circuit"]
        settings = CircuitSettings.load(rebuilt["settings_path"])
        fields = {f: (c.get(f), manifest_mod._settings_value(rebuilt["settings"], f))
                  for f in manifest_mod.SETTINGS_FIELDS}
        fields["visibility"] = (c.get("visibility"), settings.visibility)
        w = zero_input_witness(manifest, rebuilt)
        if w is not None:
            lay = instance_layout(w, settings.visibility, sum(math.prod(s) for s in c["input_shapes"]))
            fields["instance_layout"] = (c.get("instance_layout"), lay)
    except (ZkinferError, KeyError, TypeError, ValueError, AttributeError) as e:
        r.add("circuit description", False, f"the manifest's circuit section is incomplete ({type(e).__name__}: {e})")
        return
    wrong = [f for f, (said, real) in fields.items() if said != real]
    if w is None:
        wrong.append("input_shapes (the rebuilt circuit does not run on inputs of those shapes)")
    r.add("circuit description", not wrong,
          (f"the manifest's {', '.join(sorted(fields))} agree with the rebuilt circuit (its settings, and the "
           "public instances of a witness on a zero input)") if not wrong else
          f"the manifest's description differs from the rebuilt circuit: {', '.join(wrong)}")
