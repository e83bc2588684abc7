"""Salts: the per-subject secret a hashed input carries, so that its commitment hides the features.

With hashed inputs (`--input-visibility hashed`) a proof publishes a Poseidon hash of each input tensor, and
a feature publisher posts that hash on chain. Quantized features are few and low in entropy: unsalted, anyone
could confirm a guess ("is X's income 52k?") with one hash. So every hashed input tensor carries, after each
row's features, `elements` blinding values that together hold the row's subject's 128-bit salt (`bits` bits
each, least significant first). The prepared graph slices them off before anything else reads the input
(`pipeline.rewrites.blinding`): they are inside the Poseidon hash and nowhere else in the circuit.

The manifest's ``circuit.blinding`` says how (part of the circuit's identity)::

    {"salt_bits": 128, "elements": 4, "bits": 32, "rows": [[0], [1]], "shapes": [[1, 8], [1, 8]]}

``rows[t]``: the slot each row of input tensor t belongs to (a split K-slot circuit: tensor i is slot i; a
stacked one: row i of every tensor is slot i; one slot: every tensor is slot 0); ``shapes[t]``: tensor t as
the circuit takes it, [rows, features per row + elements]. ``circuit.input_shapes`` stays the features'.

An element v is handed to ezkl as v * 2**-s (s: the tensor's input scale), which ezkl's quantization
round(x * 2**s) turns back into v exactly as long as v survives the round trip ezkl puts each input value
through first, in the input's own type: float32 (and float16, which ezkl reads as float32) holds integers
exactly up to 2**24, float64 up to 2**53, an integer input any i64. ezkl also range-checks every input value
(|v| < decomp_base ** decomp_legs: 2**28 by default). `bits` is the largest that fits both (measured: a
32-bit element of a float32 input reached the hash rounded to 24 significant bits).

A salt is written as 0x and 32 hex digits (`new_salt`); `parse_salt` reads one and says what is wrong.
"""

from __future__ import annotations

import math
import re
import secrets

from .errors import InputError, UsageError

SALT_BITS = 128
SALT_HEX_DIGITS = SALT_BITS // 4
MAX_ELEMENT_BITS = 48  # v * 2**-s and back, exactly, in f64
# Integers an input of this ONNX type carries exactly through ezkl's round trip (`InputType::roundtrip`).
_FLOAT32_BITS = 24
_EXACT_BITS = {"float": _FLOAT32_BITS, "float16": _FLOAT32_BITS, "bfloat16": _FLOAT32_BITS}
# ezkl's defaults for how it range-checks values, inputs included (RunArgs.decomp_base, decomp_legs)
EZKL_DECOMP_BASE, EZKL_DECOMP_LEGS = 16384, 2
_SALT = re.compile(r"(0x)?[0-9a-fA-F]{" + str(SALT_HEX_DIGITS) + "}")


def element_bits(decomp_base: int | None, decomp_legs: int | None, input_types: list[str] = ()) -> int:
    """Bits per blinding element: the largest b with every b-bit value exact through ezkl's round trip of
    each input type and inside its input range check."""
    span = (decomp_base or EZKL_DECOMP_BASE) ** (decomp_legs or EZKL_DECOMP_LEGS)  # |v| <= span - 1 passes
    return min(MAX_ELEMENT_BITS, span.bit_length() - 1, *(_EXACT_BITS.get(t, MAX_ELEMENT_BITS) for t in input_types))


def plan(visibility_input: str, input_names: list[str], input_types: list[str], input_shapes: list[list[int]],
         slots: int, decomp_base: int | None = None, decomp_legs: int | None = None) -> dict | None:
    """The manifest's ``circuit.blinding`` for a circuit (see the module doc), or None when inputs are not
    hashed. UsageError for a hashed input that cannot carry a salt."""
    if visibility_input != "hashed" or not input_shapes:
        return None
    for name, t in zip(input_names, input_types, strict=True):
        if t == "bool":
            raise UsageError(f"input {name!r} is boolean: a hashed input must carry a salt, and ezkl constrains "
                             "every element of a boolean input to 0 or 1; make it public or private instead")
    shapes = [list(s) for s in input_shapes]
    n = len(shapes)
    if slots == 1:
        rows = [[0]] * n
    elif n == slots and all(s[:1] == [1] for s in shapes):  # split: tensor i is slot i
        rows = [[i] for i in range(n)]
    elif all(s[:1] == [slots] for s in shapes):  # stacked: row i of every tensor is slot i
        rows = [list(range(slots))] * n
    else:
        raise UsageError(f"the circuit proves {slots} inferences at once, but its input shapes {shapes} do not say "
                         "which inference each part of a hashed input belongs to, so no salt can be placed")
    bits = element_bits(decomp_base, decomp_legs, input_types)
    elements = math.ceil(SALT_BITS / bits)
    return {"salt_bits": SALT_BITS, "elements": elements, "bits": bits, "rows": rows,
            "shapes": [[len(r), math.prod(s) // len(r) + elements] for s, r in zip(shapes, rows, strict=True)]}


def new_salt() -> str:
    """A fresh random salt (128 bits from the OS's CSPRNG), as `parse_salt` reads it."""
    return format_salt(secrets.randbits(SALT_BITS))


def format_salt(salt: int) -> str:
    return f"0x{salt:0{SALT_HEX_DIGITS}x}"


def parse_salt(value, where: str) -> int:
    """A salt as given (0x and 32 hex digits) -> its integer; InputError naming `where` otherwise."""
    if value is None:
        raise InputError(f"{where}: no salt: this circuit's inputs are hashed and each subject's features are "
                         f"hashed with its secret salt (\"salt\": 0x and {SALT_HEX_DIGITS} hex digits; "
                         "`zkinfer salt` makes fresh ones)")
    if not isinstance(value, str) or not _SALT.fullmatch(value.strip()):
        shown = value if isinstance(value, str) else repr(value)
        raise InputError(f"{where}: salt {shown[:50]!r} is not 0x and {SALT_HEX_DIGITS} hex digits "
                         f"({SALT_BITS} bits; `zkinfer salt` makes fresh ones)")
    return int(value.strip().removeprefix("0x"), 16)


def elements(salt: int, blinding: dict) -> list[int]:
    """The salt as the circuit carries it: `elements` values of `bits` bits, least significant first."""
    bits = blinding["bits"]
    if not 0 <= salt < 2 ** blinding["salt_bits"]:
        raise InputError(f"a salt must be {blinding['salt_bits']} bits")
    return [(salt >> (bits * i)) & ((1 << bits) - 1) for i in range(blinding["elements"])]


def element_values(salt: int, blinding: dict, scale: int) -> list[float]:
    """The salt's elements as the real values ezkl is given at input scale `scale` (exact: see the module doc)."""
    return [math.ldexp(v, -scale) for v in elements(salt, blinding)]


def slot_salts(given, slots: int, where: str) -> list[int]:
    """A whole circuit input's salts: one per slot, in slot order (a string for one slot, a list for K)."""
    if slots == 1 and not isinstance(given, list):
        return [parse_salt(given, where)]
    if not isinstance(given, list) or len(given) != slots:
        raise InputError(f"{where}: \"salt\" must list one salt per inference ({slots}), in slot order")
    return [parse_salt(s, f"{where} salt[{i}]") for i, s in enumerate(given)]


def blind(input_data: list[list[float]], blinding: dict | None, salts: list[int] | None,
          scales: list[int] | None) -> list[list[float]]:
    """A circuit input (one flat list per input tensor, the features as ezkl takes them) with each row's salt
    appended, as the circuit's blinded inputs take it. `salts`: one per slot; None gives zeros (calibration,
    where the scales are not chosen yet and the elements cannot matter: the graph slices them off)."""
    if not blinding:
        return input_data
    out = []
    for t, (values, rows) in enumerate(zip(input_data, blinding["rows"], strict=True)):
        per_row = len(values) // len(rows)
        blinded: list[float] = []
        for r, slot in enumerate(rows):
            blinded += values[r * per_row:(r + 1) * per_row]
            blinded += ([0.0] * blinding["elements"] if salts is None
                        else element_values(salts[slot], blinding, scales[t]))
        out.append(blinded)
    return out


def random_salts(n: int, seed: int) -> list[int]:
    """Salts for the build's own samples (validation, saved samples): random, reproducible from the seed,
    and no secret (they blind no one's features)."""
    import random

    rng = random.Random(f"zkinfer-blinding-{seed}")
    return [rng.getrandbits(SALT_BITS) for _ in range(n)]


def carried_exactly(witness_inputs: list[list[str]], blinding: dict, salts: list[int]) -> bool:
    """Whether a witness's input tensors (ezkl's field elements) hold each row's salt elements exactly where
    `blind` put them: the build's check that the circuit hashes what a publisher computes."""
    from .felt import felt_to_int

    for tensor, rows in zip(witness_inputs, blinding["rows"], strict=True):
        width = len(tensor) // len(rows)
        for r, slot in enumerate(rows):
            got = [felt_to_int(f) for f in tensor[(r + 1) * width - blinding["elements"]:(r + 1) * width]]
            if got != elements(salts[slot], blinding):
                return False
    return True
