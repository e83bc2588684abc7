"""The circuit manifest: what was built, from what, and a check that artifacts still match.

`DIR/manifest.json` (schema ``zkinfer/manifest@1``)::

    {
      "schema": "zkinfer/manifest@1",
      "name": "credit_risk",
      "zkinfer_version": "0.1.0",
      "ezkl_version": "23.0.5",
      "build_key": "<sha256 over everything the build depends on>",
      "artifacts": {"network.onnx": {"sha256": "...", "bytes": 1136}, "settings.json": ...,
                    "network.compiled": ..., "vk.key": ..., "pk.key": ..., "fidelity.json": ...,
                    "samples.jsonl": ..., "kzg.srs": ...},
      "circuit": {
        "logrows": 15, "batch_size": 1,
        "visibility": {"input": "public", "output": "public", "param": "fixed"},
        "input_shapes": [[1, 8]], "output_shapes": [[1, 1]],
        "input_scales": [13], "output_scales": [13], "param_scale": 13,
        "lookup_range": [-4582, 0],
        "num_instances": 9,
        "instance_layout": {"input_hashes": 0, "param_hashes": 0, "inputs": 8, "outputs": 1}
      },
      "srs": {"origin": "dev-generated, insecure", "insecure": true, "logrows": 15, "sha256": "..."},
      "fidelity": {"passed": true, "max_abs_error": ..., "mean_abs_error": ..., "label_agreement": ..., ...},
      "timings_s": {"settings": ..., "calibrate": ..., "compile": ..., "fidelity": ..., "setup": ...}
    }

`batch_size` is K, the inferences one proof covers; `slot_layout` says which part of the input and outputs
each of them ("slots") takes, for batch jobs and the chain alike.

The manifest's own sha256 (`manifest_hash`) is what identifies a circuit version on chain and in job ids.
Verifying artifacts against it hashes every file once per process and circuit (a LeNet-5 proving key is
4.4 GB): the result is cached keyed by each file's (size, mtime, inode), so a file replaced or edited in
place after the check is hashed again.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .artifacts import read_json, sha256_file
from .errors import ArtifactMismatchError, UsageError

SCHEMA = "zkinfer/manifest@1"
MANIFEST = "manifest.json"

# Files every built circuit directory holds, by role.
SOURCE_ONNX = "source.onnx"  # the model as the user gave it: the fidelity gate's reference
ONNX = "network.onnx"  # the graph as compiled (`pipeline.prepare`: concrete shapes, rewrites)
SETTINGS = "settings.json"
COMPILED = "network.compiled"
VK = "vk.key"
PK = "pk.key"
FIDELITY = "fidelity.json"
SAMPLES = "samples.jsonl"
# The SRS the keys were made against, kept with the circuit (hard-linked where possible) so a circuit
# directory is all a prover or verifier needs.
SRS = "kzg.srs"
CIRCUIT_FILES = (SOURCE_ONNX, ONNX, SETTINGS, COMPILED, VK, PK, FIDELITY, SAMPLES, SRS)
# What each use of a circuit needs; proving does not need the ONNX or the fidelity report.
PROVE_FILES = (SETTINGS, COMPILED, PK, SRS)
VERIFY_FILES = (SETTINGS, VK, SRS)


@dataclass(frozen=True)
class Manifest:
    path: Path
    data: dict
    sha256: str

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.data.get("name", self.dir.name)

    @property
    def circuit(self) -> dict:
        return self.data["circuit"]

    @property
    def srs(self) -> dict:
        return self.data["srs"]

    @property
    def insecure_srs(self) -> bool:
        return bool(self.data["srs"].get("insecure", True))

    def artifact(self, name: str) -> Path:
        return self.dir / name


def load(circuit_dir: str | os.PathLike) -> Manifest:
    """Read DIR/manifest.json; a missing or foreign file is a UsageError naming it."""
    d = Path(circuit_dir)
    if not d.is_dir():
        raise UsageError(f"circuit directory not found: {d}")
    p = d / MANIFEST
    if not p.exists():
        raise UsageError(f"{p} not found: {d} is not a built circuit (run `zkinfer circuit build` first)")
    data = read_json(p, "manifest")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{p} is not a zkinfer manifest (expected schema {SCHEMA!r})")
    return Manifest(path=p, data=data, sha256=sha256_file(p))


_verified: dict[tuple, str] = {}
_verified_lock = threading.Lock()


def _stat_key(p: Path) -> tuple:
    st = p.stat()
    return (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def verify_artifacts(m: Manifest, names: tuple[str, ...] | None = None) -> None:
    """Check the named artifacts (default: all in the manifest) against their recorded sha256.

    Raises ArtifactMismatchError naming the first file that is missing or differs. Cached per process.
    """
    recorded = m.data.get("artifacts", {})
    for name in names or tuple(recorded):
        if name not in recorded:
            raise ArtifactMismatchError(f"{m.path}: no hash recorded for {name}")
        p = m.artifact(name)
        if not p.exists():
            raise ArtifactMismatchError(f"artifact missing: {p} (listed in {m.path})")
        key = _stat_key(p)
        with _verified_lock:
            cached = _verified.get(key)
        digest = cached or sha256_file(p)
        if digest != recorded[name]["sha256"]:
            raise ArtifactMismatchError(
                f"artifact modified: {p} has sha256 {digest[:16]}..., manifest records "
                f"{recorded[name]['sha256'][:16]}... (rebuild with `zkinfer circuit build`)"
            )
        with _verified_lock:
            _verified[key] = digest


def forget_verification_cache() -> None:
    """For tests: make the next verify_artifacts hash again."""
    with _verified_lock:
        _verified.clear()


# ---- slots: the inferences one proof covers

@dataclass(frozen=True)
class SlotLayout:
    """How a circuit's input holds K inferences ("slots") and which outputs belong to each.

    Three layouts, told apart by the manifest's `batch_size` (K) and shapes:

    * K = 1: one slot, the whole input (any number of input tensors);
    * split: K input tensors of the same shape [1, ...], tensor i is slot i (`--batch K --split-inputs`);
    * stacked: every input tensor has K rows ([K, ...]), row i of each is slot i (`--batch K`).

    Outputs split the same way: K output tensors [1, ...] (tensor i is slot i) or output tensors of K rows.
    `shapes` and `sizes` describe one slot's input: what one row of a batch holds.
    """

    count: int
    split: bool
    shapes: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]
    split_outputs: bool

    def pack(self, rows: list[list[list[float]]]) -> list[list[float]]:
        """K rows (each one slot's ezkl input_data: one flat list per slot input) -> the circuit's input_data."""
        if len(rows) != self.count:
            raise ValueError(f"{len(rows)} rows for {self.count} slots")
        if self.count == 1:
            return rows[0]
        if self.split:
            return [row[0] for row in rows]
        return [[v for row in rows for v in row[t]] for t in range(len(self.sizes))]

    def unpack(self, input_data: list[list[float]]) -> list[list[list[float]]]:
        """The inverse of `pack`: a whole circuit input -> its K rows."""
        if self.count == 1:
            return [input_data]
        if self.split:
            return [[t] for t in input_data]
        return [[t[i * n:(i + 1) * n] for t, n in zip(input_data, self.sizes, strict=True)]
                for i in range(self.count)]

    def outputs_of(self, outputs: list[list[float]], slot: int) -> list[list[float]]:
        """Slot `slot`'s share of the circuit's outputs (one list per output tensor, decoded or not)."""
        if self.count == 1:
            return outputs
        if self.split_outputs:
            return [outputs[slot]]
        return [t[slot * (len(t) // self.count):(slot + 1) * (len(t) // self.count)] for t in outputs]


def slot_count(circuit: dict) -> int:
    """K: inferences per proof (the manifest's batch_size; 1 for circuits built without --batch)."""
    return int(circuit.get("batch_size") or 1)


def slot_layout(circuit: dict) -> SlotLayout:
    """The circuit's SlotLayout (see there). UsageError when K > 1 and the shapes do not say which part of
    the input and output each inference takes."""
    import math

    k = slot_count(circuit)
    ins = [tuple(s) for s in circuit["input_shapes"]]
    outs = [tuple(s) for s in circuit["output_shapes"]]
    if k == 1:
        return SlotLayout(1, False, tuple(ins), tuple(math.prod(s) for s in ins), False)
    if len(ins) == k and len(set(ins)) == 1 and ins[0][:1] == (1,):
        split, shapes = True, (ins[0],)
    elif ins and all(s[:1] == (k,) for s in ins):
        split, shapes = False, tuple((1, *s[1:]) for s in ins)
    else:
        raise UsageError(f"the circuit proves {k} inferences at once, but its input shapes {[list(s) for s in ins]} "
                         f"are neither {k} inputs of shape [1, ...] nor inputs of {k} rows")
    if len(outs) == k and all(s[:1] == (1,) for s in outs):
        split_outputs = True
    elif outs and all(s[:1] == (k,) for s in outs):
        split_outputs = False
    else:
        raise UsageError(f"the circuit proves {k} inferences at once, but its output shapes "
                         f"{[list(s) for s in outs]} do not say which outputs belong to which inference")
    return SlotLayout(k, split, shapes, tuple(math.prod(s) for s in shapes), split_outputs)
