"""Small helpers shared by the on-chain tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_utils import keccak, to_checksum_address

from pipeline.chain import ContractRevertError
from pipeline.felt import FIELD_MODULUS  # noqa: F401  (re-exported: the BN254 scalar field's modulus)


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
