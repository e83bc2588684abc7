"""`events`: every action a gate took with a model, from the chain's logs and the submissions' calldata;
`events_text`, what `zkinfer audit --events` prints."""

from __future__ import annotations

import os

from eth_utils import keccak, to_checksum_address

from .. import evm
from ..errors import UsageError
from ..felt import FIELD_MODULUS, HALF_FIELD
from .deployment import (
    GATE_CONTRACTS,
    _registry_record,
    event_logs,
    gate_abi,
    model_entry,
    read_deployments,
    registry_address,
    uint_topic,
)


def events(rpc_url: str, *, deployments: str | os.PathLike | None = None, registry: str | None = None,
           model_id: int | None = None, circuit: str | None = None) -> list[dict]:
    """Every action a gate took with the model: each StatementConsumed(…, modelId, …) log, with the
    submission's subjects and the proven outputs decoded from its calldata (per slot, as real numbers at the
    registry's output scale) and the gate's other events in that transaction (RateUpdated, ...)."""
    from ..chain.client import Chain

    chain = Chain(rpc_url)
    book = read_deployments(chain.chain_id, deployments)
    registry = registry_address(book, registry)
    if model_id is None:
        entry = model_entry(book, {"name": circuit}, None)
        if entry is None:
            raise UsageError("no model id: give --model-id N")
        model_id = int(entry[1]["modelId"])
    rec = _registry_record(chain, registry, model_id)
    lay, scale = rec["instanceLayout"], rec["outputScale"]
    abi = gate_abi()
    logs = event_logs(chain, "StatementConsumed(bytes32,uint256,address)", None, uint_topic(model_id))
    abis = [evm.contract_artifact(n)["abi"] for n in GATE_CONTRACTS]
    out = []
    for log in logs:
        tx = chain.w3.eth.get_transaction(log["transactionHash"])
        gate = chain.contract(log["address"], abi)
        subjects, outputs = [], None  # None: sent through another contract, whose calldata is not the gate's
        if tx["to"] and to_checksum_address(tx["to"]) == to_checksum_address(log["address"]):
            _fn, args = gate.decode_function_input(tx["input"])
            instances = list(args["instances"])
            slots, per_in, per_out = lay["slots"], lay["inputsPerSlot"], lay["outputsPerSlot"]
            start = (slots if lay["hashedInputs"] else 0) + lay["paramHashes"] + slots * per_in
            outputs = [[_signed(v) / 2 ** scale for v in instances[start + i * per_out: start + (i + 1) * per_out]]
                       for i in range(slots)]
            subjects = ["0x" + bytes(s).hex() for s in args["subjects"]]
        receipt = chain.w3.eth.get_transaction_receipt(log["transactionHash"])
        effects = [e for e in (_decode_event(chain.w3.codec, abis, lg) for lg in receipt["logs"]
                               if lg["address"] == log["address"] and lg["logIndex"] != log["logIndex"]) if e]
        out.append({"block": log["blockNumber"], "transaction": "0x" + bytes(log["transactionHash"]).hex(),
                    "gate": to_checksum_address(log["address"]), "modelId": model_id,
                    "statementKey": "0x" + bytes(log["topics"][1]).hex(),
                    "submitter": to_checksum_address(bytes(log["topics"][3])[-20:]),
                    "subjects": subjects, "outputs": outputs, "effects": effects})
    return out


def _signed(v: int) -> int:
    return v - FIELD_MODULUS if v > HALF_FIELD else v


def _decode_event(codec, abis: list[list[dict]], log) -> dict | None:
    from web3._utils.events import get_event_data
    from web3.exceptions import MismatchedABI

    from ..chain.client import display

    topic0 = bytes(log["topics"][0]) if log["topics"] else b""
    for abi in abis:
        for item in abi:
            if item.get("type") != "event":
                continue
            sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            if keccak(text=sig) != topic0:
                continue
            try:
                ev = get_event_data(codec, item, log)
            except MismatchedABI:
                continue
            return {"event": item["name"], **{k: display(v) for k, v in ev["args"].items()}}
    return None


def events_text(actions: list[dict]) -> str:
    """What `zkinfer audit --events` prints: one block per action."""
    if not actions:
        return "no gate has acted with this model"
    lines = []
    for a in actions:
        lines.append(f"block {a['block']}  tx {a['transaction']}  gate {a['gate']}  submitter {a['submitter']}")
        if a["outputs"] is None:
            lines.append("  submitted through another contract: its calldata is not decoded here")
        for i, (s, o) in enumerate(zip(a["subjects"], a["outputs"] or [], strict=False)):
            lines.append(f"  slot {i}: subject {s}  proven outputs {o}")
        for e in a["effects"]:
            args = ", ".join(f"{k}={v}" for k, v in e.items() if k != "event")
            lines.append(f"  {e['event']}({args})")
    return "\n".join(lines)
