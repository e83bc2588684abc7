from pipeline.felt import FIELD_MODULUS, felt_to_int, felt_to_real, felt_to_uint256


def _felt(v: int) -> str:
    return (v % FIELD_MODULUS).to_bytes(32, "little").hex()


def test_felts_decode_signed_fixed_point():
    assert felt_to_int(_felt(3401)) == 3401
    assert felt_to_int(_felt(-3401)) == -3401
    assert felt_to_real(_felt(-8192), 13) == -1.0
    assert felt_to_real(_felt(4096), 13) == 0.5
    # Solidity sees the raw field element: negatives are p - |x|.
    assert felt_to_uint256(_felt(-1)) == FIELD_MODULUS - 1


def test_negative_scales_decode():
    """ezkl gives some outputs a negative scale (a value v is stored as v * 2**scale)."""
    from pipeline.felt import felt_to_real

    assert felt_to_real((3).to_bytes(32, "little").hex(), -2) == 12.0
