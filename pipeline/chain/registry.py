"""Reading the model registry: what it records about a model version.

    m = registered_model(chain, registry_address, model_id)
    m.circuit_id, m.vk_sha256, m.verifier, m.active, m.instance_layout, m.weight_commitment

`circuit_id` is zkinfer's circuit id (manifest.json `circuit_id`, `Manifest.circuit_id`): whoever rebuilds the
circuit from its published artifacts can compare it with the registry's record.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import evm
from .client import Chain

# ModelRegistry.Model's fields, in order (what `model(uint256)` returns).
MODEL_FIELDS = ("verifier", "active", "outputScale", "instanceLayout", "vkHash", "circuitId", "weightCommitment")
LAYOUT_FIELDS = ("slots", "hashedInputs", "inputsPerSlot", "outputsPerSlot", "paramHashes")


@dataclass(frozen=True)
class RegisteredModel:
    """A model version as `ModelRegistry.model(modelId)` returns it; hashes as 64 hex digits (no 0x)."""

    model_id: int
    verifier: str  # checksummed address of the contract offering verifyProof(bytes, uint256[])
    active: bool  # false once revoked
    output_scale: int
    instance_layout: dict  # InstanceLayout's fields (`RegistryLayout.record()`'s keys)
    vk_sha256: str  # sha256 of vk.key
    circuit_id: str  # Manifest.circuit_id
    weight_commitment: str | None  # 0x-prefixed keccak256 of the param hashes; None for fixed weights


def registered_model(chain: Chain, registry_address: str, model_id: int, abi: list | None = None) -> RegisteredModel:
    """What the registry at `registry_address` records for `model_id`, revoked or not (ContractRevertError
    UnknownModel for an id never registered). `abi`: the registry's ABI, e.g. from the deployments book's
    artifact; default the project's compiled ModelRegistry."""
    registry = chain.contract(registry_address, abi or evm.contract_artifact("ModelRegistry")["abi"])
    raw = dict(zip(MODEL_FIELDS, chain.call(registry.functions.model(model_id), f"reading model {model_id}"),
                   strict=True))
    weights = bytes(raw["weightCommitment"])
    return RegisteredModel(
        model_id=model_id, verifier=raw["verifier"], active=raw["active"], output_scale=raw["outputScale"],
        instance_layout=dict(zip(LAYOUT_FIELDS, raw["instanceLayout"], strict=True)),
        vk_sha256=bytes(raw["vkHash"]).hex(), circuit_id=bytes(raw["circuitId"]).hex(),
        weight_commitment="0x" + weights.hex() if any(weights) else None)
