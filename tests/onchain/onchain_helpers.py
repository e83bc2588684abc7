"""Small helpers shared by the on-chain tests, and the lending stand-ins' features and terms (the `env`
fixture in conftest.py deploys them; `prove`, `post` and `send` act on it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_utils import keccak, to_checksum_address

from pipeline import chain
from pipeline.chain import ContractRevertError
from pipeline.felt import FIELD_MODULUS  # noqa: F401  (re-exported: the BN254 scalar field's modulus)

# Features of the `credit` stand-in (PD = sigmoid(x0 + x1/2 - x2/2 + x3/4)) and what they prove.
PD_HALF = [0.0, 0.0, 0.0, 0.0]  # PD 0.5 -> 200 + 1500 * 0.5 = 950 bp
PD_MID = [0.25, 0.0, 0.0, 0.0]  # PD 72/128 (sigmoid(0.25) at scale 7) -> 200 + 843 = 1043 bp
PD_HIGH = [2.0, 2.0, -2.0, 2.0]  # PD ~0.99 -> ~1680 bp: a step of ~880 from 800, over the 300 limit
RATE_MID = 200 + 1500 * 72 // 128
LENDING_TERMS = {"baseRateBps": 200, "slopeBps": 1500, "maxRateStepBps": 300, "initialRateBps": 800}
MAX_AGE = 3600


def expect_revert(call, error_name: str, **expected_args) -> ContractRevertError:
    """Run `call()`, which must revert with the custom error `error_name` (and these argument values)."""
    with pytest.raises(ContractRevertError) as caught:
        call()
    err = caught.value
    assert err.error_name == error_name, str(err)
    for k, v in expected_args.items():
        assert err.error_args[k] == v, f"{k}: {err.error_args[k]!r} != {v!r} in {err}"
    return err


def advance_time(w3, seconds: int) -> None:
    """Move the local chain's clock forward and mine a block at the new time."""
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def address(label: str) -> str:
    """A made-up account address, distinct per label."""
    return to_checksum_address(keccak(text=label)[:20])


def address_subject(addr: str) -> bytes:
    return bytes(12) + bytes.fromhex(addr[2:])


def salt_for(features: list[float], label: str = "") -> str:
    """A test subject's salt, fixed by its features (and a label, to tell two salts apart): what a real
    publisher draws at random (`zkinfer salt`) and shares with the prover."""
    return "0x" + keccak(text=f"salt:{label}:{json.dumps(features)}")[:16].hex()


def period_subject(period: int) -> bytes:
    return period.to_bytes(32, "big")


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def prove(env, circuit: str, features: list[float], label: str = "") -> dict:
    """A real proof (cached per circuit, features and label: a new label gives a fresh proof)."""
    key = (circuit, tuple(features), label)
    if key not in env.proof_cache:
        path = env.proofs / f"{circuit}-{len(env.proof_cache)}.json"
        env.proof_cache[key] = load(env.circuits[circuit].prove([features], path))
    return env.proof_cache[key]


def post(env, borrower: str, proof: dict, layout: dict | None = None, sender: str | None = None):
    """The feature publisher (`sender`, default the deployer) posts the borrower's features on the credit gate:
    the commitment to the proof's own inputs, read with the proof's model's `layout` (default: the credit
    model's). Returns the receipt."""
    handle = env.gate
    instances = [int(x, 16) for x in proof["calldata"]["instances"]]
    [commitment] = chain.slot_commitments(instances, layout or handle.layout)
    fn = handle.gate.functions.postFeatures(address_subject(borrower), commitment)
    return env.chain.transact(fn, "post", sender=sender)


def post_hashed(env, handle, circuit_dir, borrowers: list[str], features: list[list[float]]) -> None:
    """The publisher posts each borrower's Poseidon commitment, computed from raw features."""
    for who, x in zip(borrowers, features, strict=True):
        commitment = chain.feature_commitment(circuit_dir, x, salt_for(x))
        env.chain.transact(
            handle.gate.functions.postFeatures(address_subject(who), bytes.fromhex(commitment[2:])), "post"
        )


def send(env, proof: dict, borrowers: list[str], model_id: int | None = None, gate=None, instances=None):
    calldata = dict(proof["calldata"])
    if instances is not None:
        calldata["instances"] = [f"0x{v:064x}" for v in instances]
    return chain.submit_calldata(
        gate or env.gate, calldata, [address_subject(b) for b in borrowers], model_id=model_id
    )


def rate(env, borrower: str) -> int:
    return env.gate.gate.functions.rateOf(borrower).call()
