"""Field elements: how the circuit's numbers look outside it.

A Halo2 circuit over BN254 computes modulo the scalar field's prime; ezkl stores each element as 32 bytes of
little-endian hex (no 0x), and quantizes a real x at scale s as round(x * 2^s), a negative value as p - |v|.
The chain sees the same element as a uint256 (what `Halo2Verifier.verifyProof` takes), and hashes values
as 32-byte big-endian words. Every conversion between those forms is here:

    felt_to_int(f) / felt_to_real(f, scale)     signed decoding (witness outputs, public output instances)
    felt_to_uint256(f) -> uint256_hex(v)        the verifier's calldata
    word(v), words(values)                      what keccak256 and the gates hash
    quantize(features, scale)                   a publisher's features as the circuit quantizes them
"""

from __future__ import annotations

from collections.abc import Iterable

# BN254's scalar field: circuit values live modulo this prime, negatives as p - |x|.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
HALF_FIELD = FIELD_MODULUS // 2


def felt_to_int(felt_hex: str) -> int:
    """ezkl's little-endian hex field element (no 0x) -> signed integer."""
    v = int.from_bytes(bytes.fromhex(felt_hex), "little")
    if v >= FIELD_MODULUS:
        raise ValueError(f"field element out of range: {felt_hex}")
    return v - FIELD_MODULUS if v > HALF_FIELD else v


def felt_to_uint256(felt_hex: str) -> int:
    """The same element as the uint256 Solidity's verifier takes."""
    return int.from_bytes(bytes.fromhex(felt_hex), "little")


def felt_to_real(felt_hex: str, scale: int) -> float:
    return felt_to_int(felt_hex) * 2.0 ** -scale  # ezkl can give an output a negative scale (its bitshift example)


def decode_tensors(felts: list[list[str]], scales: list[int]) -> list[list[float]]:
    return [[felt_to_real(f, s) for f in tensor] for tensor, s in zip(felts, scales, strict=True)]


def uint256_hex(value: int) -> str:
    """A uint256 as calldata carries it: 0x and 64 hex digits."""
    return f"0x{value:064x}"


def word(value: int) -> bytes:
    """A uint256 as a 32-byte big-endian word (Solidity's abi.encodePacked of a uint256)."""
    return value.to_bytes(32, "big")


def words(values: Iterable[int]) -> bytes:
    return b"".join(word(v) for v in values)


def quantize(values: Iterable[float], scale: int) -> list[str]:
    """Real values as the circuit quantizes its inputs at `scale` (ezkl's own rounding), as field elements."""
    import ezkl

    return [ezkl.float_to_felt(float(x), scale) for x in values]
