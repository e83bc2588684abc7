"""Witnesses: the circuit run on one input, in fixed point, before it is proven.

A witness holds every value the circuit computes. Two things are checked here because the prover
cannot be trusted to report them: the values fed to lookup tables must lie inside the calibrated range
(measured: ezkl 23's Python `prove` hangs on a witness that falls off a table, where `mock` reports it),
and outputs are decoded from field elements back to real numbers (`pipeline.felt`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import native
from .compile import CircuitSettings
from .errors import InputError, ProofError
from .felt import decode_tensors
from .inputs import ezkl_input
from .native import NativeFailure


@dataclass
class Witness:
    raw: dict
    path: Path | None = None

    @property
    def output_felts(self) -> list[list[str]]:
        return self.raw["outputs"]

    def outputs(self, settings: CircuitSettings) -> list[list[float]]:
        return decode_tensors(self.output_felts, settings.output_scales)

    def lookup_violation(self, settings: CircuitSettings) -> str | None:
        """Why this witness would fall off a lookup table, or None when it fits."""
        lo, hi = settings.lookup_range
        wmin, wmax = int(self.raw["min_lookup_inputs"]), int(self.raw["max_lookup_inputs"])
        if wmin < lo or wmax > hi:
            return (f"a lookup input reaches [{wmin}, {wmax}], outside the calibrated range [{lo}, {hi}]: "
                    "the input lies outside what the circuit was calibrated for")
        return None


def generate(input_data: list[list[float]], compiled_path: Path, out_path: Path | None = None,
             scratch_dir: Path | None = None, log_path: Path | None = None) -> Witness:
    """Run the compiled circuit on one input (ezkl `input_data` value, as the circuit takes it: see
    `inputs.to_circuit_values`). Writes a witness file if asked; ezkl's native output goes to `log_path`."""
    import ezkl

    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="zkinfer-witness-") as tmp:
        data_path = Path(tmp) / "input.json"
        data_path.write_text(json.dumps(ezkl_input(input_data)))
        target = out_path or Path(tmp) / "witness.json"
        try:
            raw = native.call(ezkl.gen_witness, str(data_path), str(compiled_path), str(target), log_path=log_path)
        except NativeFailure as e:
            msg = e.describe()
            if "reshape" in msg or "dimensionality" in msg:
                raise InputError(f"input does not fit the circuit: {msg}") from None
            raise ProofError(f"witness generation failed: {msg}") from None
    return Witness(raw=raw, path=out_path)


def constraint_violation(witness_path: Path, compiled_path: Path, log_path: Path | None = None) -> str | None:
    """Run ezkl's mock prover: why the witness does not satisfy the circuit, or None when it does.

    Cheap next to proving (0.2 s against 7 s for credit_risk at logrows 16) and it reports what the real
    prover would hang on or fail obscurely with, so every witness is mocked before it is proven.
    """
    import ezkl

    try:
        ok = native.call(ezkl.mock, str(witness_path), str(compiled_path), log_path=log_path)
    except NativeFailure as e:
        return (f"the circuit's constraints are not satisfied for this input ({e.describe()}); it most likely "
                "lies outside the range the circuit was calibrated for")
    return None if ok else "the circuit's constraints are not satisfied for this input"
