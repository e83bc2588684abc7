"""The deployment under audit as it records itself: the deployments file, the registry's record of a model
version (`_registry_record`, the one place the registry's struct is read) and the chain's logs (which gates
accepted the model)."""

from __future__ import annotations

import os
from pathlib import Path

from eth_utils import keccak, to_checksum_address

from .. import evm
from ..artifacts import read_json
from ..errors import UsageError

GATE_CONTRACTS = ("RiskAdjustedLending", "AdaptiveCouponBond")


def read_deployments(chain_id: int, deployments: str | os.PathLike | None) -> dict | None:
    """The deployments file (or ``<chainId>.json`` in its folder), checked to be chain `chain_id`'s; its
    path under ``_path``."""
    if deployments is None:
        return None
    p = Path(deployments)
    if p.is_dir():
        p = p / f"{chain_id}.json"
    if not p.is_file():
        raise UsageError(f"deployments file not found: {p}")
    data = read_json(p, "deployments file")
    if not isinstance(data, dict) or "models" not in data or "contracts" not in data:
        raise UsageError(f"{p} is not a zkinfer deployments file")
    if data.get("chainId") != chain_id:
        raise UsageError(f"{p} records chain {data.get('chainId')}, but the RPC endpoint is chain {chain_id}")
    data["_path"] = str(p)
    return data


def model_entry(book: dict | None, manifest: dict, model_id: int | None) -> tuple[str, dict] | None:
    """The deployments file's entry for the model: by id if given, else the manifest's circuit by name (or by
    circuit id, or the only one)."""
    if book is None:
        return None
    models = book["models"]
    if model_id is not None:
        return next(((n, e) for n, e in models.items() if e.get("modelId") == model_id), None)
    for name, e in models.items():
        if name == manifest.get("name"):
            return name, e
    same = [(n, e) for n, e in models.items() if e.get("circuitId") == manifest.get("circuit_id")]
    if len(same) == 1:
        return same[0]
    if len(models) == 1:
        return next(iter(models.items()))
    raise UsageError(f"{book['_path']} records {len(models)} models and none is {manifest.get('name')!r}: "
                     "give --model-id")


def registry_address(book: dict | None, registry: str | None) -> str:
    """`registry` if given, else the ModelRegistry the deployments file records; checksummed."""
    if registry is None:
        if book is None or "ModelRegistry" not in book["contracts"]:
            raise UsageError("no registry: give --deployments FILE (recording a ModelRegistry) or --registry ADDRESS")
        registry = book["contracts"]["ModelRegistry"]["address"]
    try:
        return to_checksum_address(registry)
    except ValueError:
        raise UsageError(f"--registry {registry!r} is not an address") from None


def _registry_record(chain, registry: str, model_id: int) -> dict:
    """The registry's record of a model version (`pipeline.chain.registered_model`, the one reader of the
    registry's struct), keyed by the struct's Solidity field names, hashes as 0x-hex: the form the checks
    print."""
    from ..chain import registered_model

    m = registered_model(chain, registry, model_id)
    return {"verifier": m.verifier, "active": m.active, "outputScale": m.output_scale,
            "instanceLayout": m.instance_layout, "vkHash": "0x" + m.vk_sha256, "circuitId": "0x" + m.circuit_id,
            "weightCommitment": m.weight_commitment or "0x" + "00" * 32}


def gate_abi() -> list[dict]:
    """The ABI a gate is read through (`acceptedModel`, `submit`'s calldata): RiskAdjustedLending's, whose
    InferenceGate part every zkinfer gate shares."""
    return evm.contract_artifact("RiskAdjustedLending")["abi"]


def event_logs(chain, signature: str, *topics: str | None) -> list:
    """Every log (from block 0) of the event with that signature whose indexed topics are `topics` (None: any)."""
    return chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest",
                                  "topics": ["0x" + keccak(text=signature).hex(), *topics]})


def uint_topic(value: int) -> str:
    """An indexed uint256 as a log topic."""
    return "0x" + value.to_bytes(32, "big").hex()


def accepting_gates(chain, model_id: int, also: list[str]) -> list[str]:
    """Every contract that emitted ModelAccepted(modelId) (logs from block 0), and `also`."""
    logs = event_logs(chain, "ModelAccepted(uint256,uint16)", uint_topic(model_id))
    found = [to_checksum_address(log["address"]) for log in logs] + [to_checksum_address(a) for a in also]
    return list(dict.fromkeys(found))
