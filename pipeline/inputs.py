"""Input data in ezkl's `input.json` format, checked against a model's signature.

ezkl's format is ``{"input_data": [flat_values_for_input_0, flat_values_for_input_1, ...]}``: one flat list
of numbers per model input. For one inference each list holds exactly that input's element count; for
calibration and validation a list may hold several samples back to back (a multiple of the count).
A few producers nest the values (``[[0.1, 0.2], [0.3, 0.4]]``); they are flattened row-major.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .artifacts import read_json
from .errors import InputError, UsageError


def flatten(values, where: str, booleans: bool = False) -> list[float]:
    """Row-major flatten of nested lists of numbers, rejecting non-numbers, NaN and infinities, integers too
    large for a float, and nesting deeper than MAX_DEPTH. With `booleans` (a boolean model input), JSON
    true/false are its values, 1 and 0."""
    out: list[float] = []
    # Iterative (an explicit stack), so no nesting depth can exhaust Python's recursion limit.
    stack: list[tuple[object, str, int]] = [(values, "", 0)]
    while stack:
        v, path, depth = stack.pop()
        if isinstance(v, list):
            if depth >= MAX_DEPTH:
                raise InputError(f"{where}{path}: values nested more than {MAX_DEPTH} lists deep")
            stack.extend((x, f"{path}[{i}]", depth + 1) for i, x in reversed(list(enumerate(v))))
        elif isinstance(v, bool) and booleans:  # as ezkl's input.json writes a boolean input
            out.append(1.0 if v else 0.0)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(f"{where}{path}: expected a number, got {_show(v)}")
        else:
            try:
                f = float(v)
            except OverflowError:
                raise InputError(f"{where}{path}: an integer of {len(str(v))} digits is too large for a "
                                 "number the circuit can take") from None
            if not math.isfinite(f):
                raise InputError(f"{where}{path}: {v} is not a finite number")
            out.append(f)
    return out


# Deeper nesting than any tensor needs (ONNX tensors of rank > 8 are rare; ezkl writes flat lists).
MAX_DEPTH = 32


def _show(v) -> str:
    try:
        return json.dumps(v)[:40]
    except (ValueError, TypeError, RecursionError):
        return type(v).__name__


def parse_input_data(obj, where: str, sizes: list[int], bool_inputs: list[bool] | None = None) -> list[list[float]]:
    """Validate an ezkl input object and return one flat list per model input (any number of samples).
    `bool_inputs` marks the inputs of boolean type, which may be given as true/false."""
    if not isinstance(obj, dict) or "input_data" not in obj:
        raise InputError(f"{where}: expected a JSON object with an \"input_data\" field (ezkl's input.json format)")
    data = obj["input_data"]
    if not isinstance(data, list) or (not data and sizes):
        raise InputError(f"{where}: \"input_data\" must be a non-empty list with one list per model input")
    # One model input given as a bare flat list of numbers: accept it as that input's values.
    if len(sizes) == 1 and all(isinstance(x, (int, float)) and (bool_inputs or not isinstance(x, bool)) for x in data):
        data = [data]
    # A model with no inputs (a constant graph) is proven with no values; ezkl writes [[]] for it.
    if not sizes:
        if any(v for v in data if isinstance(v, list)) or any(not isinstance(v, list) for v in data):
            raise InputError(f"{where}: the model has no inputs, so \"input_data\" must hold no values")
        return []
    if len(data) != len(sizes):
        raise InputError(f"{where}: \"input_data\" has {len(data)} lists but the model has {len(sizes)} inputs")
    bools = bool_inputs or [False] * len(sizes)
    return [flatten(v, f"{where} input_data[{i}]", bools[i]) for i, v in enumerate(data)]


def count_samples(flat_inputs: list[list[float]], sizes: list[int], shapes: list[tuple], where: str) -> int:
    """How many samples the flat lists hold; every input must hold the same whole number of them."""
    if not sizes:
        return 1  # a model with no inputs: one (empty) sample
    counts = []
    for i, (vals, n, shape) in enumerate(zip(flat_inputs, sizes, shapes, strict=True)):
        if len(vals) == 0 or len(vals) % n:
            raise InputError(
                f"{where}: input {i} has {len(vals)} values; the model expects shape {list(shape)} "
                f"({n} values per sample, or a multiple of {n} for several samples)"
            )
        counts.append(len(vals) // n)
    if len(set(counts)) != 1:
        raise InputError(f"{where}: inputs hold different numbers of samples: {counts}")
    return counts[0]


def split_samples(flat_inputs: list[list[float]], sizes: list[int]) -> list[list[list[float]]]:
    """Cut back-to-back samples into one `input_data` value per sample."""
    if not sizes:
        return [[]]
    n = len(flat_inputs[0]) // sizes[0]
    return [[vals[s * size:(s + 1) * size] for vals, size in zip(flat_inputs, sizes, strict=True)] for s in range(n)]


def check_single(flat_inputs: list[list[float]], sizes: list[int], shapes: list[tuple], where: str) -> None:
    """One inference: each input holds exactly its element count."""
    for i, (vals, n, shape) in enumerate(zip(flat_inputs, sizes, shapes, strict=True)):
        if len(vals) != n:
            raise InputError(
                f"{where}: input {i} has {len(vals)} values; the circuit expects shape {list(shape)} ({n} values)"
            )


def to_circuit_values(flat_inputs: list[list[float]], prescale: list[list[int] | None] | None) -> list[list[float]]:
    """One input (one flat list per model input) as the values ezkl is given.

    Circuits built from raw-amount inputs (`pipeline.rewrites.prescale`) take each feature divided by a power
    of two, 2**m per feature along the input's last axis (`prescale`, from the manifest's `input_prescale`).
    Dividing by a power of two is exact in binary floating point, so nothing but the unit changes.
    """
    if not prescale:
        return flat_inputs
    import numpy as np

    out = []
    for values, m in zip(flat_inputs, prescale, strict=True):
        if not m:
            out.append(values)
            continue
        a = np.asarray(values, dtype=np.float64).reshape(-1, len(m)) / np.exp2(np.asarray(m, dtype=np.float64))
        out.append(a.ravel().tolist())
    return out


def ezkl_input(input_data: list[list[float]]) -> dict:
    """ezkl's input.json object for one input (or samples back to back); ezkl wants [[]] for no inputs."""
    return {"input_data": input_data or [[]]}


def load_file(path: str | os.PathLike, what: str = "input file") -> dict:
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{what} is a directory, expected a JSON file: {p}")
    return read_json(p, what)
