"""`audit`: the deployment under audit located, its registry record read, the published circuit rebuilt in a
scratch folder, and every check, in the report's order."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import UsageError
from .circuit import circuit_checks, identity_checks, layout_checks
from .contracts import activity_checks, registry_code, verifier_checks
from .deployment import _registry_record, model_entry, read_deployments, registry_address
from .rebuild import read_published, rebuild
from .report import INFO, AuditReport


def audit(artifacts_dir: str | os.PathLike, rpc_url: str, *, deployments: str | os.PathLike | None = None,
          registry: str | None = None, model_id: int | None = None, srs: str | os.PathLike | None = None,
          scratch_dir: str | os.PathLike | None = None) -> AuditReport:
    """Rebuild the published circuit in a scratch folder and check it against the deployment (`pipeline.audit`).

    `deployments`: the deployments file (or its folder); `registry`: the registry's address (default: the
    file's). `model_id` defaults to the file's entry for the manifest's circuit. UsageError (exit 2) for what
    cannot be audited at all (missing files, no registry, an unknown RPC); everything else is a check."""
    from ..chain.client import Chain, ContractRevertError

    artifacts_dir = Path(artifacts_dir)
    manifest, srs_path = read_published(artifacts_dir, srs)
    chain = Chain(rpc_url)
    book = read_deployments(chain.chain_id, deployments)
    registry = registry_address(book, registry)
    entry = model_entry(book, manifest, model_id)
    if model_id is None:
        if entry is None:
            raise UsageError("no model id: give --model-id N (or --deployments FILE recording the model)")
        model_id = int(entry[1]["modelId"])
    r = AuditReport(artifacts_dir, chain.chain_id, registry, model_id, manifest.get("name", "?"))

    r.add("registry code", *registry_code(chain, registry))
    try:
        rec = _registry_record(chain, registry, model_id)
    except ContractRevertError as e:
        r.add("registry record", False, f"the registry has no model {model_id} ({e.error_name or e.message})")
        return r
    except Exception as e:  # not a ModelRegistry (no code, another ABI): web3 fails to decode the answer
        r.add("registry record", False, f"{registry} does not answer as a ModelRegistry ({type(e).__name__})")
        return r
    r.add("registry record", True, f"model {model_id}: verifier {rec['verifier']}, vk hash {rec['vkHash'][:18]}..., "
          f"circuit id {str(rec['circuitId'])[:18]}...", INFO)

    with tempfile.TemporaryDirectory(prefix="zkinfer-audit-", dir=scratch_dir) as tmp:
        rebuilt = rebuild(r, artifacts_dir, manifest, srs_path, Path(tmp), chain.chain_id)
        identity_checks(r, manifest, rec, rebuilt, artifacts_dir)
        if rebuilt.get("vk"):
            circuit_checks(r, manifest, rebuilt)
        layout_checks(r, manifest, rec, rebuilt)
        if rebuilt.get("vk"):
            mode = (entry[1].get("verifierMode") if entry and entry[1].get("modelId") == model_id else None)
            verifier_checks(r, chain, rec["verifier"], rebuilt, Path(tmp), mode)
        else:
            r.add("verifier code", False, "not compared: the verifying key could not be rebuilt")
    activity_checks(r, chain, rec, model_id, book)
    return r
