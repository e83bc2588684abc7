"""The instance layout: which public value of a proof is which. Every Python reader of it uses this module.

A proof's public instances are field elements in ezkl's order (`ORDER`):

    [input hashes][param hashes][public inputs][public outputs][output hashes]

Each kind is present only when its visibility makes it public (hashed inputs give Poseidon hashes, public
inputs give the values themselves). The build counts them once, from its first witness, and the manifest
records the counts as ``circuit.instance_layout`` (`instance_layout`); `instance_slices` and
`decode_public_outputs` read proofs with them.

A circuit may prove K inferences at once ("slots", the manifest's ``batch_size``): `SlotLayout` says which
part of the input and outputs each slot takes. The chain sees the same layout from the registry's side:
`RegistryLayout` is ``InstanceLayout`` in verifier_contracts/src/lib/InstanceLayout.sol (the Solidity
reading of this order: keep the two in step), and `slot_commitments` computes each slot's feature
commitment as the gate does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from eth_utils import keccak

from .errors import UsageError
from .felt import felt_to_real, word, words

if TYPE_CHECKING:
    from .manifest import Manifest

# ezkl's order of the public instances.
ORDER = ("input_hashes", "param_hashes", "inputs", "outputs", "output_hashes")


# ---- counts and offsets

def instance_layout(witness: dict, visibility: dict, input_values: int) -> dict:
    """How many public values of each kind a proof carries (the manifest's ``instance_layout``), from a
    witness of the circuit, its visibility and the number of values its inputs hold."""
    def n_hashes(processed) -> int:
        return len((processed or {}).get("poseidon_hash") or [])

    n_inputs = input_values if visibility["input"] == "public" else 0
    n_outputs = sum(len(t) for t in witness["outputs"]) if visibility["output"] == "public" else 0
    layout = {
        "input_hashes": n_hashes(witness.get("processed_inputs")),
        "param_hashes": n_hashes(witness.get("processed_params")),
        "output_hashes": n_hashes(witness.get("processed_outputs")),
        "inputs": n_inputs,
        "outputs": n_outputs,
    }
    layout["order"] = list(ORDER)
    return layout


def num_instances(layout: dict) -> int:
    return sum(v for k, v in layout.items() if k != "order")


def instance_slices(layout: dict) -> dict[str, slice]:
    """Offsets of each kind of public value within the proof's instances."""
    out, pos = {}, 0
    for kind in layout["order"]:
        out[kind] = slice(pos, pos + layout[kind])
        pos += layout[kind]
    return out


def outputs_public(circuit: dict) -> bool:
    """Whether the model's outputs are instances (proven), not only known to the prover."""
    return bool(circuit["instance_layout"]["outputs"])


def inputs_public(circuit: dict) -> bool:
    """Whether the model's inputs are instances: anyone holding a proof sees them."""
    return bool(circuit["instance_layout"]["inputs"])


def decode_public_outputs(instances: list[str], circuit: dict) -> list[list[float]]:
    """Public output instances -> real numbers, one list per output tensor."""
    felts = instances[instance_slices(circuit["instance_layout"])["outputs"]]
    out, pos = [], 0
    for shape, scale in zip(circuit["output_shapes"], circuit["output_scales"], strict=True):
        n = math.prod(shape)
        out.append([felt_to_real(f, scale) for f in felts[pos:pos + n]])
        pos += n
    return out


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


# ---- the registry's view: InstanceLayout.sol

class RegistryLayout(NamedTuple):
    """The registry's ``InstanceLayout`` for a circuit, in the struct's field order (web3 encodes it as is)."""

    slots: int
    hashed_inputs: bool
    inputs_per_slot: int
    outputs_per_slot: int
    param_hashes: int

    def record(self) -> dict:
        """The struct's fields by their Solidity names, as deployments files and gate handles carry them."""
        return {"slots": self.slots, "hashedInputs": self.hashed_inputs, "inputsPerSlot": self.inputs_per_slot,
                "outputsPerSlot": self.outputs_per_slot, "paramHashes": self.param_hashes}


# ezkl's private parameters are free witness values: the verifying key does not depend on them, so a proof made
# with any weights verifies. build warns about it; registry_layout refuses it.
PRIVATE = "private"
PRIVATE_PARAMS_RISK = ("its weights are private (param visibility private): ezkl makes them free witness values "
                       "that the verifying key does not fix, so a proof made with any weights verifies")


def _check_contiguous_slots(name: str, circuit: dict) -> None:
    """UsageError for K-slot circuits whose slots' values are not contiguous among the instances. The gate reads
    slot i's inputs and outputs as one run each (InstanceLayout.sol), but ezkl orders instances tensor by
    tensor: with several stacked tensors ([K, ...] each), slot i's values are row i of every tensor, apart."""
    k = slot_count(circuit)
    if k == 1:
        return
    slots = slot_layout(circuit)
    n_in, n_out = len(circuit["input_shapes"]), len(circuit["output_shapes"])
    if not slots.split and n_in > 1:
        raise UsageError(f"{name}: {k} inferences per proof in {n_in} input tensors of {k} rows each: an "
                         "inference's inputs are row i of every tensor, which a gate cannot bind to one subject "
                         "(public inputs are not contiguous; each input hash covers one tensor's rows of every "
                         "inference): give the model one input tensor, or one input per inference "
                         "(zoo models: --split-inputs)")
    if not slots.split_outputs and n_out > 1:
        raise UsageError(f"{name}: {k} inferences per proof in {n_out} output tensors of {k} rows each: an "
                         "inference's outputs are row i of every tensor, not contiguous, so a gate would act on "
                         "another inference's output: give the model one output tensor (concatenate the outputs) "
                         "or one output per inference")


def registry_layout(manifest: Manifest) -> RegistryLayout:
    """The registry's InstanceLayout for a circuit. Raises UsageError for circuits a gate cannot act on (or must
    not: private weights) and for layouts it would read at the wrong instances."""
    c = manifest.circuit
    lay = c["instance_layout"]
    name = manifest.name
    if c["visibility"]["param"] == PRIVATE:
        raise UsageError(f"{name}: {PRIVATE_PARAMS_RISK}; a gate must not act on it: rebuild with "
                         "--param-visibility fixed (weights in the verifying key) or hashed (the registry pins "
                         "their commitment)")
    if lay.get("output_hashes", 0) or not lay["outputs"]:
        raise UsageError(f"{name}: a gate acts on public outputs; this circuit's outputs are not public")
    hashed = lay["input_hashes"] > 0
    if hashed and lay["inputs"]:
        raise UsageError(f"{name}: mixing hashed and public inputs is not supported by the gates")
    if not hashed and not lay["inputs"]:
        raise UsageError(f"{name}: inputs are neither public nor hashed: a proof could not be bound "
                         "to a subject")
    slots = slot_count(c)
    _check_contiguous_slots(name, c)
    # Hashed inputs bind a subject through its Poseidon hash: each inference needs its own input tensor.
    # One [K, F] tensor gets one hash for all K rows, which no single subject's commitment can match.
    if hashed and lay["input_hashes"] != slots:
        raise UsageError(f"{name}: {slots} inference(s) per proof but {lay['input_hashes']} input hash(es): with "
                         "hashed inputs each inference needs its own ONNX input (one hash per subject; zoo "
                         "models: --split-inputs)")
    if lay["outputs"] % slots or lay["inputs"] % slots:
        raise UsageError(f"{name}: {lay['inputs']} inputs and {lay['outputs']} outputs do not split into "
                         f"{slots} slots")
    return RegistryLayout(slots, hashed, lay["inputs"] // slots, lay["outputs"] // slots, lay["param_hashes"])


def features_per_subject(manifest: Manifest) -> int:
    """How many raw features one subject's commitment covers: one slot's public inputs, or with hashed
    inputs the values of the tensor its hash covers."""
    return registry_layout(manifest).inputs_per_slot or math.prod(manifest.circuit["input_shapes"][0])


# ---- commitments: how a slot's inputs bind it to a subject

def commitment(values: list[int], hashed: bool) -> bytes:
    """A subject's feature commitment as InferenceGate computes it: with hashed inputs, the one Poseidon
    hash (`values` = [hash]); else keccak256 over the input values as 32-byte words."""
    if hashed:
        [poseidon] = values
        return word(poseidon)
    return keccak(words(values))


def slot_commitments(instances: list[int], layout: dict) -> list[bytes]:
    """Each slot's feature commitment, from a proof's instances (uint256s) and the registry's layout (its
    `RegistryLayout.record`): the slot's Poseidon hash instance, or its public input instances."""
    slots, per_slot = layout["slots"], layout["inputsPerSlot"]
    if layout["hashedInputs"]:
        return [commitment([instances[i]], True) for i in range(slots)]
    start = layout["paramHashes"]
    return [commitment(instances[start + i * per_slot: start + (i + 1) * per_slot], False) for i in range(slots)]
