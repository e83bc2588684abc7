"""The model breaker on chain: a guardian suspends a model version on its gate at once; the owner resumes it.

    suspend_model("credit_risk", rpc_url)                 # the guardian's (or the owner's) key signs
    model_suspended(open_gate(chain, "credit_risk"))      # a read: e.g. a prover node before proving
    resume_model("credit_risk", rpc_url)                  # the owner's key signs
    set_guardian("credit_risk", "0xMonitor", rpc_url)     # the owner's key; the zero address: no guardian
    breaker_status("credit_risk", rpc_url)                # guardian, suspended, the posting interval

Keys come from `private_key`, else $ZKINFER_PRIVATE_KEY, else (chain 31337 only) anvil's first dev account,
like every other transaction (`pipeline.chain.client`). A refusal raises ContractRevertError with the gate's
custom error: NotGuardian (neither guardian nor owner), ModelAlreadySuspended, ModelNotSuspended,
OwnableUnauthorizedAccount (resume or set_guardian by another than the owner). While a model is suspended,
`submit` of its proofs reverts with ModelSuspended; postings stay open (verifier_contracts/README.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from eth_utils import to_checksum_address

from ..errors import UsageError
from .client import ZERO_ADDRESS, Chain, checked_address
from .deployments import DEFAULT_DEPLOYMENTS_DIR, DeploymentsBook
from .gate import GateHandle, open_gate


def _tx_hash(receipt) -> str:
    return "0x" + bytes(receipt.transactionHash).hex()


def _handle(circuit: str, rpc_url: str, deployments_dir, private_key: str | None = None) -> GateHandle:
    return open_gate(Chain(rpc_url, private_key), circuit, deployments_dir)


def suspend_model(circuit: str, rpc_url: str, *, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR,
                  private_key: str | None = None) -> str:
    """Suspend `circuit`'s model version on its gate (as recorded in the deployments book): from the next
    block on, the gate refuses its proofs (ModelSuspended) until the owner resumes it. The signer must be the
    gate's guardian or owner. Returns the transaction hash; an already suspended model raises
    ContractRevertError ModelAlreadySuspended (check `model_suspended` first to make it idempotent)."""
    h = _handle(circuit, rpc_url, deployments_dir, private_key)
    receipt = h.chain.transact(h.gate.functions.suspendModel(h.model_id),
                               f"suspending model {h.model_id} ({circuit}) on its gate")
    return _tx_hash(receipt)


def resume_model(circuit: str, rpc_url: str, *, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR,
                 private_key: str | None = None) -> str:
    """Lift the suspension of `circuit`'s model version (the gate's owner only). Returns the transaction
    hash; a model not suspended raises ContractRevertError ModelNotSuspended."""
    h = _handle(circuit, rpc_url, deployments_dir, private_key)
    receipt = h.chain.transact(h.gate.functions.resumeModel(h.model_id),
                               f"resuming model {h.model_id} ({circuit}) on its gate")
    return _tx_hash(receipt)


def model_suspended(handle_or_circuit: GateHandle | str, rpc_url: str | None = None, *,
                    deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR) -> bool:
    """Whether the gate refuses the model version's proofs as suspended (a read, no transaction): from a
    `GateHandle` (`open_gate`), or a circuit's name with `rpc_url` (and the deployments book)."""
    if isinstance(handle_or_circuit, GateHandle):
        h = handle_or_circuit
    elif rpc_url is None:
        raise UsageError(f"model_suspended({handle_or_circuit!r}): give the rpc_url, or a GateHandle")
    else:
        h = _handle(handle_or_circuit, rpc_url, deployments_dir)
    return bool(h.chain.call(h.gate.functions.isModelSuspended(h.model_id),
                             f"reading whether model {h.model_id} is suspended"))


def set_guardian(circuit: str, guardian: str, rpc_url: str, *,
                 deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR, private_key: str | None = None) -> str:
    """Make `guardian` the account that may suspend `circuit`'s gate's models besides the owner (the owner's
    key signs); the zero address leaves the owner alone. Records it in the deployments book. Returns the
    transaction hash."""
    account = checked_address(guardian, "guardian")
    h = _handle(circuit, rpc_url, deployments_dir, private_key)
    receipt = h.chain.transact(h.gate.functions.setGuardian(account), f"setting {circuit}'s gate's guardian")
    book = DeploymentsBook(h.chain.chain_id, deployments_dir)
    if circuit in book.models:
        book.models[circuit]["guardian"] = None if account == ZERO_ADDRESS else account
        book.save()
    return _tx_hash(receipt)


@dataclass(frozen=True)
class BreakerStatus:
    """What a gate's breaker says about one circuit's model version."""

    circuit: str
    chain_id: int
    gate: str
    model_id: int
    accepted: bool
    suspended: bool  # the gate refuses its proofs with ModelSuspended
    guardian: str | None  # None: no guardian (the owner alone suspends)
    owner: str
    min_posting_interval_s: int  # a subject's next posting waits this long after one was acted on

    def summary(self) -> dict:
        return {"circuit": self.circuit, "chainId": self.chain_id, "gate": self.gate, "modelId": self.model_id,
                "accepted": self.accepted, "suspended": self.suspended, "guardian": self.guardian,
                "owner": self.owner, "minPostingInterval": self.min_posting_interval_s}


def breaker_status(circuit: str, rpc_url: str, *,
                   deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR) -> BreakerStatus:
    """Read `circuit`'s gate: whether its model is accepted and suspended, the guardian, the owner and the
    posting interval (reads only)."""
    h = _handle(circuit, rpc_url, deployments_dir)
    f = h.gate.functions
    accepted, _output_index, suspended = h.chain.call(f.acceptedModel(h.model_id), "reading the model's record")
    guardian = h.chain.call(f.guardian(), "reading the guardian")
    return BreakerStatus(circuit=circuit, chain_id=h.chain.chain_id, gate=h.gate.address, model_id=h.model_id,
                         accepted=bool(accepted), suspended=bool(suspended),
                         guardian=None if int(guardian, 16) == 0 else to_checksum_address(guardian),
                         owner=to_checksum_address(h.chain.call(f.owner(), "reading the owner")),
                         min_posting_interval_s=int(h.chain.call(f.minPostingInterval(), "reading the interval")))
