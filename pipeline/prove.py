"""Prove one inference: input -> witness -> range check -> Halo2 proof -> proof file.

    prover = Prover("circuits/credit_risk")        # checks artifacts against the manifest once
    proof = prover.prove(input_data, "proof.json")  # any number of times

The proof file is ezkl's proof.json plus zkinfer's fields (decoded outputs, EVM calldata, what was proven
with which circuit version): `pipeline.prooffile` defines it. `prove_rows` proves K separate inferences
("rows", one per slot of a K-slot circuit, see `layout.SlotLayout`) as one proof, padding a short list by
repeating its last row, and lists the slots in the file.

A hashed-input circuit hashes each subject's features with the subject's secret salt (`pipeline.blinding`):
its inputs come with one salt per slot (`prove(..., salts=...)`; a row is then
``{"input_data": ..., "salt": "0x..."}``), and an input without one is refused.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from . import __version__, layout, native, require_ezkl
from . import blinding as blinding_mod
from . import manifest as manifest_mod
from . import witness as witness_mod
from .artifacts import canonical_json, read_json, sha256_bytes
from .compile import CircuitSettings
from .errors import InputError, OutOfRangeError, ProofError, UsageError
from .inputs import check_single, parse_input_data, to_circuit_values
from .native import NativeFailure
from .prooffile import Calldata, ProofFile, ProofMeta, ProofSlot


def input_digest(input_data: list[list[float]], key: bytes | None = None) -> str:
    """Which input a proof is of: sha256 of its canonical JSON, or with `key` an HMAC-SHA256 under it.

    A plain digest of low-entropy private features lets anyone confirm a guess with one hash, so circuits
    whose inputs are not public name their inputs only under a secret key (the batch store's), or not at all.
    """
    if key is None:
        return sha256_bytes(canonical_json(input_data))
    import hmac

    return hmac.new(key, canonical_json(input_data), "sha256").hexdigest()


_MAX_FIXED_POINT = 2.0 ** 100


class Prover:
    """A circuit loaded for proving. Artifacts are checked against the manifest once per process."""

    def __init__(self, circuit_dir: str | os.PathLike, check_artifacts: bool = True,
                 digest_key: bytes | None = None):
        self.dir = Path(circuit_dir)
        self.manifest = manifest_mod.load(self.dir)
        require_ezkl(self.manifest.data["ezkl_version"], f"circuit {self.manifest.name}")
        self._digest_key = digest_key
        self.last_outputs: list[list[float]] | None = None  # the last proof's outputs, public or not
        if check_artifacts:
            manifest_mod.verify_artifacts(self.manifest, manifest_mod.PROVE_FILES)
        self.settings = CircuitSettings.load(self.dir / manifest_mod.SETTINGS)
        circuit = self.manifest.circuit
        self.input_shapes = [tuple(s) for s in circuit["input_shapes"]]
        self.input_sizes = [math.prod(s) for s in self.input_shapes]
        types = circuit.get("input_types") or ["float"] * len(self.input_shapes)
        self._bool_inputs = [t == "bool" for t in types]
        self.blinding = circuit.get("blinding")  # hashed inputs: each slot's salt goes in with its features
        if circuit.get("visibility", {}).get("input") == "hashed" and not self.blinding:
            raise UsageError(f"{self.manifest.name} hashes its inputs without a salt (built before salts), so its "
                             "commitments would reveal the features to a guesser: rebuild it")

    @property
    def circuit(self) -> dict:
        return self.manifest.circuit

    @cached_property
    def slots(self) -> layout.SlotLayout:
        """How many inferences one proof covers and how they share the input (UsageError if unclear)."""
        return layout.slot_layout(self.circuit)

    def parse_row(self, obj, where: str = "input"):
        """Validate one inference (one slot's input, ezkl format) against the circuit. For K = 1 this is
        `parse_input`; for K > 1 a whole K-slot input is refused with a message saying so. Returns its
        input_data, or for a circuit whose inputs take a salt ``{"input_data": ..., "salt": "0x..."}`` (the
        salt from the object's "salt"; InputError when it is missing or malformed)."""
        flat = self._parse_row_data(obj, where)
        return self._with_salt(flat, obj, where)

    def _with_salt(self, flat, obj, where: str):
        given = obj.get("salt") if isinstance(obj, dict) else None
        if not self.blinding:
            if given is not None:
                raise InputError(f"{where}: a salt was given, but {self.manifest.name}'s inputs are not hashed: "
                                 "nothing would hide them")
            return flat
        salt = blinding_mod.parse_salt(given, where)
        return {"input_data": flat, "salt": blinding_mod.format_salt(salt)}

    def _split_row(self, row, where: str) -> tuple[list[list[float]], int | None]:
        """A row from `parse_row` -> (input_data, salt or None)."""
        if isinstance(row, dict):
            return row["input_data"], blinding_mod.parse_salt(row.get("salt"), where)
        if self.blinding:
            blinding_mod.parse_salt(None, where)  # raises: a hashed-input row needs its salt
        return row, None

    def _parse_row_data(self, obj, where: str) -> list[list[float]]:
        s = self.slots
        if s.count == 1:
            return self.parse_input(obj, where)
        try:
            flat = parse_input_data(obj, where, list(s.sizes), self._bool_inputs[:len(s.sizes)])
            check_single(flat, list(s.sizes), list(s.shapes), where)
        except InputError:
            if not self._is_whole_input(obj):
                raise
            raise InputError(f"{where}: this is a whole {s.count}-inference circuit input; give one inference "
                             f"(shape {' + '.join(str(list(x)) for x in s.shapes)}) per row: the batch packs "
                             f"{s.count} rows into each proof") from None
        return flat

    def parse_input(self, obj, where: str = "input") -> list[list[float]]:
        """Validate one ezkl-format input object against the circuit's input shapes."""
        flat = parse_input_data(obj, where, self.input_sizes, self._bool_inputs)
        check_single(flat, self.input_sizes, self.input_shapes, where)
        return flat

    def _is_whole_input(self, obj) -> bool:
        try:
            self.parse_input(obj)
        except InputError:
            return False
        return True

    def _checked_witness(self, flat: list[list[float]], wpath: Path, where: str,
                         salts: list[int] | None = None) -> witness_mod.Witness:
        """The witness of a parsed input (with its slots' salts, for hashed inputs), written to `wpath`;
        OutOfRangeError if it falls off a lookup table or fails the circuit's constraints (what the prover
        would hang on or fail obscurely with)."""
        compiled = self.dir / manifest_mod.COMPILED
        values = to_circuit_values(flat, self.circuit.get("input_prescale"))
        self._check_magnitude(values, where)
        if self.blinding:
            if salts is None or len(salts) != self.slots.count:
                raise InputError(f"{where}: this circuit's inputs are hashed with each subject's salt: give one "
                                 f"salt per inference ({self.slots.count})")
            values = blinding_mod.blind(values, self.blinding, salts, self.settings.input_scales)
        try:
            w = witness_mod.generate(values, compiled, out_path=wpath)
        except InputError:
            raise
        except ProofError as e:
            # The input fits the circuit's shapes (parsed above) and the artifacts match the manifest, so ezkl
            # failing to compute its witness ("General synthesis error", a panic) means the values overflow
            # what the circuit can represent: the calibrated range.
            raise OutOfRangeError(f"{where}: the input lies outside the range the circuit was calibrated for "
                                  f"(ezkl cannot compute its witness: {e.message})") from None
        why = w.lookup_violation(self.settings) or witness_mod.constraint_violation(wpath, compiled)
        if why:
            raise OutOfRangeError(f"{where}: {why}")
        return w

    def _check_magnitude(self, values: list[list[float]], where: str) -> None:
        """Refuse values whose fixed-point integer round(x * 2^scale) leaves ezkl's number range (2^100 keeps
        well inside the i128 ezkl quantizes to: beyond it ezkl panics). Far smaller values still fail the
        witness or lookup checks, with the same message."""
        for i, (vals, scale) in enumerate(zip(values, self.settings.input_scales, strict=False)):
            for j, v in enumerate(vals):
                if abs(v) * 2.0 ** scale >= _MAX_FIXED_POINT:
                    raise OutOfRangeError(f"{where}: input {i} value {j} ({v:.6g}) lies outside the range the "
                                          f"circuit was calibrated for (its fixed-point value at scale {scale} "
                                          "overflows the circuit's numbers)")

    def check_row(self, row: list[list[float]], where: str = "input") -> str | None:
        """Why one inference cannot be proven (outside the calibrated range), or None: the row alone, in
        every slot, through witness generation, the range check and the mock prover (no proof).

        In a batch model the slots do not interact, so a pack's witness fails when one of its rows does;
        this names the row."""
        flat, salt = self._split_row(row, where)
        flat = self._parse_row_data({"input_data": flat}, where)
        with tempfile.TemporaryDirectory(prefix="zkinfer-check-") as tmp:
            try:
                self._checked_witness(self.slots.pack([flat] * self.slots.count), Path(tmp) / "witness.json",
                                      where, None if salt is None else [salt] * self.slots.count)
            except ProofError as e:
                return e.message
        return None

    def prove_rows(self, rows: list[list[list[float]]], out_path: str | os.PathLike | None = None,
                   where: str = "input") -> dict:
        """Prove 1..K inferences (one ezkl input_data per row, one slot's worth each) as one proof.

        Fewer than K rows are padded by repeating the last row (marked `padding` in the file's `slots`).
        A hashed-input circuit's rows are ``{"input_data": ..., "salt": "0x..."}`` (`parse_row`).
        Raises like `prove`; an OutOfRangeError does not say which row is at fault (see `check_row`).
        """
        k = self.slots.count
        if not 1 <= len(rows) <= k:
            raise UsageError(f"{where}: {len(rows)} rows for a circuit proving {k} inferences at once")
        split = [self._split_row(r, where) for r in rows]
        parsed = [self._with_salt(self._parse_row_data({"input_data": flat}, where),
                                  {} if salt is None else {"salt": blinding_mod.format_salt(salt)}, where)
                  for flat, salt in split]
        padded = parsed + [parsed[-1]] * (k - len(parsed))
        data = [self._split_row(r, where) for r in padded]
        salts = None if self.blinding is None else [salt for _, salt in data]
        proof, self.last_outputs = self._prove(self.slots.pack([flat for flat, _ in data]), where, salts)
        public_outputs = proof.outputs is not None
        proof.slots = [ProofSlot(slot=i, input_sha256=self._name(r), padding=i >= len(parsed),
                                 outputs=self.slots.outputs_of(proof.outputs, i) if public_outputs else None)
                       for i, r in enumerate(padded)]
        if out_path is not None:
            proof.write(out_path)
        return proof.to_json()

    def prove(self, input_data: list[list[float]], out_path: str | os.PathLike | None = None,
              where: str = "input", salts: str | list[str] | None = None) -> dict:
        """Prove one circuit input (all K slots of a K-slot circuit). `input_data` is ezkl's value: one flat
        list per model input. `salts`: for hashed inputs, each slot's salt in slot order (0x and 32 hex
        digits; one string for a one-slot circuit), required; for other circuits, none.

        Raises InputError if the input does not fit the circuit (or a salt is missing or malformed),
        OutOfRangeError if it falls outside the calibrated range, ProofError if proving fails. With
        `out_path` the proof file is written atomically.
        """
        proof, self.last_outputs = self._prove(input_data, where, self._slot_salts(salts, where))
        if out_path is not None:
            proof.write(out_path)
        return proof.to_json()

    def _name(self, flat: list[list[float]]) -> str | None:
        """The input digest a proof file carries: plain for public inputs, keyed or none for private ones."""
        if self._digest_key is None and not layout.inputs_public(self.circuit):
            return None
        return input_digest(flat, self._digest_key)

    def _slot_salts(self, given, where: str) -> list[int] | None:
        """A whole input's salts as given -> one integer per slot (None for a circuit without salts)."""
        if not self.blinding:
            if given is not None:
                raise InputError(f"{where}: a salt was given, but {self.manifest.name}'s inputs are not hashed: "
                                 "nothing would hide them")
            return None
        if given is None:
            blinding_mod.parse_salt(None, where)  # raises, saying what a salt is
        return blinding_mod.slot_salts(given, self.slots.count, where)

    def _prove(self, input_data: list[list[float]], where: str,
               salts: list[int] | None = None) -> tuple[ProofFile, list[list[float]]]:
        flat = self.parse_input({"input_data": input_data}, where)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="zkinfer-prove-") as tmp:
            wpath = Path(tmp) / "witness.json"
            w = self._checked_witness(flat, wpath, where, salts)
            ppath = Path(tmp) / "proof.json"
            try:
                import ezkl

                native.call(ezkl.prove, str(wpath), str(self.dir / manifest_mod.COMPILED),
                            str(self.dir / manifest_mod.PK), str(ppath), str(self.dir / manifest_mod.SRS),
                            log_path=Path(tmp) / "ezkl.log")
            except NativeFailure as e:
                if "synthesis" in e.describe().lower():
                    raise OutOfRangeError(f"{where}: proving failed: the input most likely lies outside the range "
                                          f"the circuit was calibrated for ({e.describe()})") from None
                raise ProofError(f"{where}: proving failed: {e.describe()}") from None
            ezkl_proof = json.loads(ppath.read_text())
        elapsed = time.perf_counter() - t0
        # ezkl's pretty_public_inputs restates the instances (and, for private outputs, what the proof hides):
        # a copy nothing needs is a copy that can disagree or leak.
        ezkl_proof.pop("pretty_public_inputs", None)
        public = layout.outputs_public(self.circuit)
        return ProofFile(
            ezkl=ezkl_proof,
            # Private outputs stay with the prover (`Prover.last_outputs`), never in the file.
            outputs=layout.decode_public_outputs(ezkl_proof["instances"][0], self.circuit) if public else None,
            outputs_public=public,
            calldata=Calldata.of(ezkl_proof["hex_proof"], ezkl_proof["instances"][0]),
            meta=ProofMeta(version=__version__, circuit=self.manifest.name, circuit_id=self.manifest.circuit_id,
                           input_sha256=self._name(flat),
                           proved_at=datetime.now(UTC).isoformat(timespec="seconds"), prove_s=round(elapsed, 3)),
        ), w.outputs(self.settings)


def prove_file(circuit_dir: str | os.PathLike, input_path: str | os.PathLike,
               out_path: str | os.PathLike) -> tuple[dict, list[list[float]]]:
    """`zkinfer prove DIR INPUT.json --out PROOF.json` -> (the proof file's content, the outputs, public or
    private: the prover may see its own private outputs, the file never carries them). A hashed-input
    circuit's input file carries each subject's salt: ``"salt": "0x..."`` (a list, one per slot, for K > 1)."""
    prover = Prover(circuit_dir)
    obj = read_json(input_path, "input file")
    flat = prover.parse_input(obj, str(input_path))
    proof = prover.prove(flat, out_path, where=str(input_path),
                         salts=obj.get("salt") if isinstance(obj, dict) else None)
    return proof, prover.last_outputs
