"""Salts for hashed inputs (`pipeline.blinding`): their format, how they are cut into elements, where the
elements go, and how many bits each element may carry through ezkl's input handling. The circuit-level
checks (a real proof's hash equals the publisher's salted commitment; the gate refuses another salt) are
in tests/onchain/test_batching.py."""

from __future__ import annotations

import pytest

from pipeline import blinding
from pipeline.errors import InputError, UsageError


def test_salts_are_128_bits_written_as_32_hex_digits():
    s = blinding.new_salt()
    assert s.startswith("0x") and len(s) == 34 and blinding.new_salt() != s
    assert blinding.parse_salt(s, "row") == int(s, 16)
    assert blinding.parse_salt(s[2:], "row") == int(s, 16)  # the 0x is optional
    for bad in ("0x1234", "0x" + "g" * 32, "", 12, "0x" + "0" * 33):
        with pytest.raises(InputError, match="row: salt .* is not 0x and 32 hex digits"):
            blinding.parse_salt(bad, "row")
    with pytest.raises(InputError, match="row: no salt"):
        blinding.parse_salt(None, "row")


def test_element_bits_fit_ezkls_round_trip_and_range_check():
    # float32 inputs carry 24-bit integers exactly; ezkl's default range check admits 28 bits; float64 48.
    assert blinding.element_bits(None, None, ["float"]) == 24
    assert blinding.element_bits(None, None, ["double"]) == 28
    assert blinding.element_bits(256, 4, ["double"]) == 32
    assert blinding.element_bits(2 ** 20, 4, ["int64"]) == 48
    assert blinding.element_bits(128, 2, ["float"]) == 14  # a smaller range check: smaller elements


def test_plan_puts_each_slots_salt_on_its_own_rows():
    one = blinding.plan("hashed", ["x"], ["float"], [[1, 8]], 1)
    assert one == {"salt_bits": 128, "elements": 6, "bits": 24, "rows": [[0]], "shapes": [[1, 14]]}
    split = blinding.plan("hashed", ["a", "b"], ["float"] * 2, [[1, 4], [1, 4]], 2)
    assert split["rows"] == [[0], [1]] and split["shapes"] == [[1, 10], [1, 10]]
    stacked = blinding.plan("hashed", ["x"], ["float"], [[3, 2, 2]], 3)
    assert stacked["rows"] == [[0, 1, 2]] and stacked["shapes"] == [[3, 10]]
    assert blinding.plan("public", ["x"], ["float"], [[1, 8]], 1) is None
    with pytest.raises(UsageError, match="boolean"):
        blinding.plan("hashed", ["flag"], ["bool"], [[1, 8]], 1)


def test_blind_appends_exact_elements_per_row():
    plan = blinding.plan("hashed", ["x"], ["float"], [[2, 2]], 2)
    salts = [2 ** 128 - 1, 12345]
    out = blinding.blind([[0.5, 1.0, 1.5, 2.0]], plan, salts, [7])
    (row0, row1) = out[0][:8], out[0][8:]
    assert row0[:2] == [0.5, 1.0] and row1[:2] == [1.5, 2.0]
    assert [round(v * 128) for v in row0[2:]] == blinding.elements(salts[0], plan)
    assert [round(v * 128) for v in row1[2:]] == blinding.elements(salts[1], plan)
    # The elements put back together are the salt; each fits its bits.
    for s in salts:
        parts = blinding.elements(s, plan)
        assert sum(p << (plan["bits"] * i) for i, p in enumerate(parts)) == s
        assert all(0 <= p < 2 ** plan["bits"] for p in parts)
    assert blinding.blind([[0.5, 1.0, 1.5, 2.0]], plan, None, None)[0][2:8] == [0.0] * 6
