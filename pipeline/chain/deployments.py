"""The deployments book: ``deployments/<chainId>.json``, what zkinfer put on one chain.

Schema ``zkinfer/deployments@1``: every contract by name (``ModelRegistry``, ``<circuit>/Halo2Verifier``,
``<circuit>/RiskAdjustedLending``, ...) with address, transaction hash, block, gas used, constructor
arguments and its ABI artifact's path, relative to the deployments folder's parent (for a split-vk
verifier's ``<circuit>/Halo2VerifierVkData``, which has no ABI: its ``vk_data.json``); and every circuit's
model id, manifest hash, verifier mode and the names of its verifier and gate.

`DeploymentsBook` writes the file back (atomically) after every transaction a deployment sends, so one
that fails midway still records every contract it left on chain. Until a circuit's deployment has sent its
last transaction, its model entry carries ``incomplete`` (what is still missing), and `open_gate` refuses
it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import read_json, write_json_atomic
from ..errors import UsageError

DEPLOYMENTS_SCHEMA = "zkinfer/deployments@1"
DEFAULT_DEPLOYMENTS_DIR = Path("deployments")
# A model entry's marker while its deployment has not finished: what is still missing.
INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class DeployedContract:
    contract_name: str
    address: str
    transaction_hash: str
    block_number: int
    gas_used: int
    args: list = field(default_factory=list)

    def record(self, artifact_path: Path, base: Path) -> dict:
        return {"contractName": self.contract_name, "address": self.address,
                "transactionHash": self.transaction_hash, "blockNumber": self.block_number,
                "gasUsed": self.gas_used, "args": self.args, "artifact": _relative(artifact_path, base)}


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(Path(path).resolve(), base.resolve())


def deployments_path(chain_id: int, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR) -> Path:
    return Path(deployments_dir) / f"{chain_id}.json"


def _empty_deployments(chain_id: int) -> dict:
    return {"schema": DEPLOYMENTS_SCHEMA, "chainId": chain_id, "contracts": {}, "models": {}}


def load_deployments(chain_id: int, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR) -> dict:
    """The chain's deployments file, or an empty one."""
    p = deployments_path(chain_id, deployments_dir)
    if not p.exists():
        return _empty_deployments(chain_id)
    data = read_json(p, "deployments file")
    same_chain = isinstance(data, dict) and data.get("chainId") == chain_id
    if not same_chain or data.get("schema") != DEPLOYMENTS_SCHEMA:
        raise UsageError(f"{p} is not a zkinfer deployments file for chain {chain_id}")
    return data


class DeploymentsBook:
    """One chain's deployments file, in memory and on disk. Every `record_*` (and `save`) writes it back."""

    def __init__(self, chain_id: int, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR):
        self.chain_id = chain_id
        self.path = deployments_path(chain_id, deployments_dir)
        self.data = load_deployments(chain_id, deployments_dir)

    @property
    def base(self) -> Path:
        """What recorded artifact paths are relative to."""
        return self.path.parent.parent

    @property
    def contracts(self) -> dict[str, dict]:
        return self.data["contracts"]

    @property
    def models(self) -> dict[str, dict]:
        return self.data["models"]

    def artifact(self, record: dict) -> Path:
        """Where a contract record's artifact is."""
        return self.base / record["artifact"]

    def start_afresh(self) -> None:
        """Forget every record (nothing recorded exists on this chain any more); written with the next one."""
        self.data = _empty_deployments(self.chain_id)

    def record_contract(self, name: str, deployed: DeployedContract, artifact_path: Path) -> None:
        self.contracts[name] = deployed.record(artifact_path, self.base)
        self.save()

    def record_model(self, name: str, entry: dict) -> None:
        self.models[name] = entry
        self.save()

    def mark_incomplete(self, model: str, missing: str | None) -> None:
        """Note what `model`'s deployment still lacks (None: nothing, it is complete); written with the
        next record or `save`."""
        entry = self.models.get(model)
        if entry is None:
            return
        if missing:
            entry[INCOMPLETE] = missing
        else:
            entry.pop(INCOMPLETE, None)

    def save(self) -> None:
        write_json_atomic(self.path, self.data)
