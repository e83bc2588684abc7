"""The published circuit rebuilt in a scratch folder: the published files read and checked against the
manifest's hashes, the SRS identified, network.onnx compiled with settings.json and ezkl's setup run against
the SRS (no published key used), and a witness of the rebuilt circuit on a zero input."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from .. import installed_ezkl_version, native, resources
from .. import manifest as manifest_mod
from ..artifacts import read_json, sha256_file
from ..compile import CircuitSettings
from ..errors import ResourceLimitError, UsageError, ZkinferError
from ..srs import file_logrows
from ..srs_ceremony import PUBLIC_SRS_SHA256
from .report import ERROR, INFO, WARNING, AuditReport


def read_published(artifacts_dir: Path, srs: str | os.PathLike | None) -> tuple[dict, Path]:
    """The published manifest and the SRS's path (`srs`, else the published one); UsageError for what is
    missing."""
    if not artifacts_dir.is_dir():
        raise UsageError(f"artifacts folder not found: {artifacts_dir}")
    for name in (manifest_mod.ONNX, manifest_mod.SETTINGS, manifest_mod.MANIFEST):
        if not (artifacts_dir / name).is_file():
            raise UsageError(f"{artifacts_dir / name} not found: an audit needs the published network.onnx, "
                             "settings.json and manifest.json")
    data = read_json(artifacts_dir / manifest_mod.MANIFEST, "manifest")
    if not isinstance(data, dict) or data.get("schema") != manifest_mod.SCHEMA:
        raise UsageError(f"{artifacts_dir / manifest_mod.MANIFEST} is not a zkinfer manifest")
    read_json(artifacts_dir / manifest_mod.SETTINGS, "circuit settings")
    srs_path = Path(srs) if srs else artifacts_dir / manifest_mod.SRS
    if not srs_path.is_file():
        recorded = (data.get("srs") or {}).get("sha256", "?")
        raise UsageError(f"no SRS: {artifacts_dir} publishes none and no --srs was given; the manifest names the "
                         f"SRS with sha256 {recorded} ({(data.get('srs') or {}).get('origin', '?')}): give that "
                         "file with --srs FILE")
    file_logrows(srs_path)  # a file that is not an SRS at all is a usage error
    return data, srs_path


def rebuild(r: AuditReport, d: Path, manifest: dict, srs_path: Path, tmp: Path, chain_id: int) -> dict:
    """Compile network.onnx with settings.json and run setup against the SRS in `tmp`; check the SRS."""
    from ..chain.node import LOCAL_CHAIN_ID
    from ..keys import setup

    arts = manifest.get("artifacts") or {}
    out = {"onnx_sha256": sha256_file(d / manifest_mod.ONNX), "settings_sha256": sha256_file(d / manifest_mod.SETTINGS),
           "settings": read_json(d / manifest_mod.SETTINGS)}
    for name, key in ((manifest_mod.ONNX, "onnx_sha256"), (manifest_mod.SETTINGS, "settings_sha256")):
        rec = (arts.get(name) or {}).get("sha256")
        r.add(name, out[key] == rec, f"sha256 {out[key][:16]}... {'equals' if out[key] == rec else 'is not'} the "
              f"manifest's record ({str(rec)[:16]}...)")
    installed = installed_ezkl_version()
    r.add("ezkl version", installed == manifest.get("ezkl_version"),
          f"rebuilt with ezkl {installed}; the manifest records {manifest.get('ezkl_version')}")

    srs = manifest.get("srs") or {}
    digest, k = sha256_file(srs_path), file_logrows(srs_path)
    r.add("srs file", digest == srs.get("sha256"), f"{srs_path.name}: sha256 {digest[:16]}..., 2^{k} rows; the "
          f"manifest records sha256 {str(srs.get('sha256'))[:16]}... ({srs.get('origin')})")
    ceremony = PUBLIC_SRS_SHA256.get(k) == digest
    if ceremony:
        r.add("srs ceremony", True, f"the public Perpetual Powers of Tau file for logrows {k} (ezkl's pinned sha256)")
    else:
        local = chain_id == LOCAL_CHAIN_ID
        r.add("srs ceremony", False, f"not a ceremony file (its sha256 is not ezkl's pinned one for logrows {k}; "
              f"manifest origin: {srs.get('origin')}): whoever made it can forge proofs"
              + ("; a warning on the local dev chain 31337" if local else ""), WARNING if local else ERROR)

    work = tmp / "rebuild"
    work.mkdir()
    for name in (manifest_mod.ONNX, manifest_mod.SETTINGS):
        shutil.copyfile(d / name, work / name)
    compiled, vk, pk = work / manifest_mod.COMPILED, work / manifest_mod.VK, work / manifest_mod.PK
    log = work / "rebuild.log"
    try:
        need = resources.estimate(CircuitSettings.load(work / manifest_mod.SETTINGS))
        short = resources.shortfall(need)
        if short:  # (a LeNet-5 proving key is 4.4 GB: set up where the owner could)
            raise ResourceLimitError(f"cannot rebuild {d} here: {short}")
        native.call(__import__("ezkl").compile_circuit, str(work / manifest_mod.ONNX), str(compiled),
                    str(work / manifest_mod.SETTINGS), log_path=log)
        with resources.watchdog("rebuilding the verifying key"):
            setup(compiled, srs_path, vk, pk, log)
    except ResourceLimitError:
        raise
    except (native.NativeFailure, ZkinferError, KeyError, TypeError, ValueError) as e:
        r.add("rebuild", False, f"network.onnx with settings.json does not compile and set up: {e}")
        return out
    pk.unlink(missing_ok=True)
    out.update(vk=vk, vk_sha256=sha256_file(vk), compiled=compiled, settings_path=work / manifest_mod.SETTINGS,
               srs=srs_path)
    r.add("rebuild", True, f"compiled network.onnx with settings.json and ran ezkl setup against {srs_path.name} in "
          f"a scratch folder (no published key used)", INFO)
    return out


def zero_input_witness(manifest: dict, rebuilt: dict) -> dict | None:
    """A witness of the rebuilt circuit on an all-zero input (of the shapes the circuit takes, blinding elements
    included: other shapes do not run), once: what its public instances are and the weights' hashes do not
    depend on the input."""
    from ..witness import generate

    if "witness" not in rebuilt:
        rebuilt["witness"] = None
        if rebuilt.get("compiled"):
            try:
                circuit = manifest["circuit"]
                shapes = (circuit.get("blinding") or {}).get("shapes") or circuit["input_shapes"]  # salts included
                zeros = [[0.0] * math.prod(s) for s in shapes]
                rebuilt["witness"] = generate(zeros, rebuilt["compiled"],
                                              log_path=rebuilt["compiled"].parent / "rebuild.log").raw
            except (ZkinferError, KeyError, TypeError, ValueError):
                pass
    return rebuilt["witness"]


def param_hashes(manifest: dict, rebuilt: dict) -> list[str] | None:
    """The Poseidon hashes of the weights a witness of the rebuilt circuit carries."""
    w = zero_input_witness(manifest, rebuilt)
    return None if w is None else list((w.get("processed_params") or {}).get("poseidon_hash") or [])
