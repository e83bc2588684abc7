"""The proof file: what `pipeline.prove` writes and verify, the chain and the batch runner read.

A proof file is ezkl's proof.json (`instances`, `proof`, `hex_proof`, ...; zkinfer drops ezkl's
`pretty_public_inputs`, a copy of the instances) plus:

    "outputs":        the model's outputs as real numbers, one list per output tensor; only when the circuit's
                      outputs are public instances (a file never carries outputs the proof does not prove)
    "outputs_public": whether the circuit's outputs are public (informative: checks follow the circuit)
    "calldata":       {"proof": "0x...", "instances": ["0x<uint256>", ...]}: Halo2Verifier.verifyProof's arguments
    "zkinfer":        {"version", "circuit", "circuit_id", "input_sha256", "proved_at", "prove_s"}; a batch
                      adds "pack_id" and, for one-slot circuits, "job_id"
    "slots":          [{"slot", "input_sha256", "padding", "outputs"}, ...]: one per slot of a K-slot proof
                      (`Prover.prove_rows`), in slot order; `outputs` are that slot's share of `outputs`;
                      `padding` marks a repeated row. A batch adds each slot's "job_id" and "labels"

Private inputs never appear in the file, nor a plain digest of them: `input_sha256` names the input (sha256
of its canonical JSON) only when the inputs are public anyway; for private or hashed inputs it is absent, or
an HMAC under the batch store's secret key (`prove.input_digest`).

`ProofFile` holds those fields typed; `load` (or `ProofFile.from_json` for one in memory) is the one reader,
`ProofFile.to_json` the one writer, and `ProofFile.problem` the one set of consistency checks: a file whose
copies (`hex_proof`, `calldata`, `outputs`, `slots`) disagree with what was proven is invalid, even if its
`proof` field verifies.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

from .artifacts import read_json, write_json_atomic
from .errors import UsageError
from .felt import felt_to_uint256, uint256_hex
from .layout import decode_public_outputs, outputs_public, slot_layout

REQUIRED_FIELDS = ("instances", "proof", "hex_proof")
# What zkinfer adds to ezkl's proof.json; ezkl is handed the file without them.
ZKINFER_FIELDS = ("outputs", "outputs_public", "calldata", "zkinfer", "slots")
# Decoded outputs are printed with float rounding; they must match the instances to this precision.
OUTPUT_MATCH_EPS = 1e-9


class MalformedProofError(UsageError):
    """A field zkinfer adds has the wrong shape; `reason` says which way, without the file's name."""

    def __init__(self, where: str, e: Exception):
        self.reason = f"malformed proof fields ({type(e).__name__}: {e})"
        super().__init__(f"proof file {where}: {self.reason}")


@dataclass(frozen=True)
class Calldata:
    """The two arguments of `Halo2Verifier.verifyProof(bytes proof, uint256[] instances)`, as hex."""

    proof: str
    instances: list[str]

    @classmethod
    def of(cls, hex_proof: str, felts: list[str]) -> Calldata:
        """From ezkl's `hex_proof` and instances (little-endian field elements)."""
        return cls(hex_proof, [uint256_hex(felt_to_uint256(f)) for f in felts])

    @classmethod
    def from_json(cls, obj: dict) -> Calldata:
        return cls(obj["proof"], list(obj["instances"]))

    def to_json(self) -> dict:
        return {"proof": self.proof, "instances": list(self.instances)}

    @property
    def proof_bytes(self) -> bytes:
        return bytes.fromhex(self.proof[2:])

    @property
    def values(self) -> list[int]:
        """The instances as the uint256s the verifier takes."""
        return [int(x, 16) for x in self.instances]


def evm_calldata(proof: dict) -> dict:
    """A proof file's `calldata` field, from its ezkl fields."""
    return Calldata.of(proof["hex_proof"], proof["instances"][0]).to_json()


@dataclass
class ProofMeta:
    """The file's "zkinfer" field. Every field is optional: files from older zkinfers lack some."""

    version: str | None = None
    circuit: str | None = None
    circuit_id: str | None = None
    input_sha256: str | None = None
    proved_at: str | None = None
    prove_s: float | None = None
    pack_id: str | None = None  # set by the batch runner: the proof's name in OUTDIR/proofs
    job_id: str | None = None  # set by the batch runner for one-slot circuits

    @classmethod
    def from_json(cls, obj: dict) -> ProofMeta:
        return cls(**{f.name: obj.get(f.name) for f in fields(cls)})

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ProofSlot:
    """One entry of the file's "slots" field."""

    slot: int | None
    input_sha256: str | None
    padding: bool
    outputs: list | None
    job_id: str | None = None  # the batch runner's: which job this slot proves
    labels: list[str] | None = None  # the batch runner's: that job's labels

    @classmethod
    def from_json(cls, obj: dict) -> ProofSlot:
        return cls(slot=obj.get("slot"), input_sha256=obj.get("input_sha256"), padding=obj.get("padding", False),
                   outputs=obj.get("outputs"), job_id=obj.get("job_id"), labels=obj.get("labels"))

    def to_json(self) -> dict:
        batch = {"job_id": self.job_id, "labels": self.labels} if self.job_id is not None else {}
        return {"slot": self.slot, **batch, "input_sha256": self.input_sha256, "padding": self.padding,
                "outputs": self.outputs}


@dataclass
class ProofFile:
    ezkl: dict  # ezkl's own fields, as ezkl wrote them: what ezkl.verify reads
    outputs: list[list[float]] | None = None
    outputs_public: bool | None = None
    calldata: Calldata | None = None
    meta: ProofMeta | None = None
    slots: list[ProofSlot] | None = None

    @property
    def instances(self) -> list[str]:
        """The public instances (ezkl's field elements): the one column ezkl's proofs have."""
        return self.ezkl["instances"][0] if self.ezkl["instances"] else []

    @property
    def hex_proof(self) -> str:
        return self.ezkl["hex_proof"]

    @classmethod
    def from_json(cls, obj, where: str = "proof") -> ProofFile:
        """Check a proof file's JSON value and read it. UsageError when it is not an ezkl proof at all;
        MalformedProofError when a field zkinfer adds has the wrong shape."""
        if not isinstance(obj, dict):
            raise UsageError(f"proof file {where} is not a JSON object")
        missing = [f for f in REQUIRED_FIELDS if f not in obj]
        if missing:
            raise UsageError(f"proof file {where} lacks field(s) {', '.join(missing)}: not an ezkl/zkinfer proof")
        if not isinstance(obj["proof"], list) or not isinstance(obj["instances"], list):
            raise UsageError(f"proof file {where}: 'proof' and 'instances' must be lists")
        try:
            return cls(
                ezkl={k: v for k, v in obj.items() if k not in ZKINFER_FIELDS},
                outputs=obj.get("outputs"),
                outputs_public=obj.get("outputs_public"),
                calldata=Calldata.from_json(obj["calldata"]) if obj.get("calldata") is not None else None,
                meta=ProofMeta.from_json(obj["zkinfer"]) if obj.get("zkinfer") is not None else None,
                slots=[ProofSlot.from_json(s) for s in obj["slots"]] if obj.get("slots") is not None else None,
            )
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise MalformedProofError(where, e) from None

    def to_json(self) -> dict:
        """The file's JSON value: ezkl's fields first, then zkinfer's, in the order the prover adds them."""
        extra = {"outputs": self.outputs, "outputs_public": self.outputs_public,
                 "calldata": self.calldata.to_json() if self.calldata else None,
                 "zkinfer": self.meta.to_json() if self.meta else None,
                 "slots": [s.to_json() for s in self.slots] if self.slots is not None else None}
        return {**self.ezkl, **{k: v for k, v in extra.items() if v is not None}}

    def write(self, path: str | os.PathLike, crash_point: str | None = None) -> None:
        """Write atomically: a proof file appears whole or not at all. `crash_point`: the `pipeline.faults`
        point hit between writing the temporary file and renaming it into place."""
        write_json_atomic(path, self.to_json(), indent=None, crash_point=crash_point)

    def problem(self, circuit: dict, circuit_id: str) -> str | None:
        """Why this file does not describe a proof of this circuit version (its manifest's circuit and
        sha256) consistently, or None. Checks the copies, not the proof itself (that is ezkl's verify)."""
        try:
            return self._problem(circuit, circuit_id)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            return f"malformed proof fields ({type(e).__name__}: {e})"

    def _problem(self, circuit: dict, circuit_id: str) -> str | None:
        # What the file claims is judged by the circuit's layout, never by the file's own flags.
        made_for = self.meta.circuit_id if self.meta else None
        if made_for and made_for != circuit_id:
            return f"proof was made for circuit {made_for[:16]}..., not this one ({circuit_id[:16]}...)"
        instances = self.instances
        if len(instances) != circuit["num_instances"]:
            return f"proof has {len(instances)} public instances, the circuit has {circuit['num_instances']}"
        if self.hex_proof.lower() != "0x" + bytes(self.ezkl["proof"]).hex():
            return "hex_proof does not match the proof bytes"
        if self.calldata is not None and self.calldata != Calldata.of(self.hex_proof, self.ezkl["instances"][0]):
            return "calldata does not match the proof and its instances"
        public = outputs_public(circuit)
        if self.outputs_public is not None and self.outputs_public != public:
            return (f"outputs_public says {self.outputs_public}, but the circuit's outputs are "
                    f"{'public' if public else 'private'}")
        proven = decode_public_outputs(instances, circuit) if public else None
        if not public and (self.outputs is not None or any(s.outputs is not None for s in self.slots or [])):
            return "the file carries outputs the circuit keeps private: nothing proves them"
        if public and self.outputs is not None and not _same(self.outputs, proven):
            return "outputs field does not match the proven output instances"
        pretty = self.ezkl.get("pretty_public_inputs")
        if pretty is not None:
            shown = pretty.get("rescaled_outputs") if isinstance(pretty, dict) else pretty
            if shown and not (public and _same([[float(x) for x in t] for t in shown], proven)):
                return "pretty_public_inputs' outputs do not match the proven output instances"
        if self.slots is not None:
            layout = slot_layout(circuit)
            if not self.slots_numbered(layout.count):
                return f"slots field lists {len(self.slots)} slots, the circuit has {layout.count}"
            if public and any(s.outputs is not None and not _same(s.outputs, layout.outputs_of(proven, i))
                              for i, s in enumerate(self.slots)):
                return "slots field's outputs do not match the proven output instances"
        return None

    def slots_numbered(self, count: int) -> bool:
        """Whether the file lists `count` slots, numbered 0 to count - 1 in order."""
        return [s.slot for s in self.slots or []] == list(range(count))


def _same(claimed, proven) -> bool:
    """Whether claimed outputs (lists of numbers per tensor) equal the proven ones; NaN equals nothing."""
    if not isinstance(claimed, list) or len(claimed) != len(proven):
        return False
    for a, b in zip(claimed, proven, strict=True):
        if not isinstance(a, list) or len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not abs(x - y) <= OUTPUT_MATCH_EPS:
                return False
    return True


def load(path: str | os.PathLike, *, zkinfer: bool = False) -> ProofFile:
    """Read a proof file (see `ProofFile.from_json`). With `zkinfer`, a plain ezkl proof (no calldata or
    zkinfer fields: nothing says which circuit version it proves) is refused too."""
    obj = read_json(path, "proof file")
    if zkinfer and (not isinstance(obj, dict) or "calldata" not in obj or "zkinfer" not in obj):
        raise UsageError(f"{path} is not a zkinfer proof file (no calldata/zkinfer fields): "
                         "make it with `zkinfer prove`")
    return ProofFile.from_json(obj, str(path))
