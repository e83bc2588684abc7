"""The data profile: how each input feature and each output was distributed in the data a circuit was built
from, for `pipeline.monitor` to compare what a prover proves against. A build stage (the build writes it),
so it lives before `monitor`, which only reads it.

Which data: the build's held-out validation data when it was given one (the model's own distribution),
else its calibration data. Calibration sets are often range-stressing on purpose (the zoo's start with
samples pushing each lookup to its bounds), so they describe the circuit's range, not the population.

`DIR/profile.json` (schema ``zkinfer/profile@1``) is written by the build beside the manifest and listed with
its sha256 among the manifest's artifacts, so it is authenticated like every other file of the circuit; it
is not part of the circuit's identity (`manifest.identity` hashes only the graphs, the verifying key and the
settings), so adding or recomputing it never changes `circuit_id`::

    {
      "schema": "zkinfer/profile@2",
      "source": "calibration data: data/credit.json (200 samples)",
      "count": 200,                 # inferences profiled (a K-slot sample counts K)
      "bins": 10,                   # quantile bins asked for (fewer where values repeat)
      "binning": "...",             # how a value is assigned a bin (below)
      "calibrated": {"lookup_range": [-4582, 0], "input_scales": [13], "note": "..."},
      "inputs":  [{"name": "x[0]", "count": 200, "edges": [...], "shares": [...], "min": ..., "max": ...,
                   "mean": ..., "std": ..., "quantiles": {"p01": ..., ..., "p99": ...}}, ...],
      "outputs": [{"name": "y[0]", ...same fields...}, ...]
    }

A feature is one value of one inference's input (input tensor `x`'s j-th element is ``x[j]``, row-major),
an output one value of its outputs. `edges` are the distinct interior quantiles at 1/bins, ..., (bins-1)/bins
of the profiled values; bin j holds edges[j-1] < v <= edges[j], the first and last bins are open-ended, so
len(shares) == len(edges) + 1 and any value falls in exactly one bin. `shares` are the profiled values'
fractions per bin.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from . import layout as layout_mod
from . import manifest as manifest_mod
from .artifacts import read_json, sha256_file, write_json_atomic
from .errors import ArtifactMismatchError, UsageError

PROFILE = "profile.json"
SCHEMA = "zkinfer/profile@2"  # 2: held-out validation data preferred over calibration data
DEFAULT_BINS = 10  # deciles
# Inferences a build profiles at most (each is one reference run of the model).
MAX_SAMPLES = 20000
BINNING = ("bin j holds edges[j-1] < v <= edges[j] (first and last bins open-ended); edges are the distinct "
           "interior quantiles of the profiled values")
HELD_OUT = "held-out"  # how build_plan names validation data given apart from the calibration data
QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}


def bin_shares(values, edges) -> np.ndarray:
    """The fraction of `values` in each bin that `edges` define (len(edges) + 1 bins; see the module doc)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
    return counts / v.size if v.size else counts


def describe(values, name: str, bins: int = DEFAULT_BINS) -> dict:
    """One feature's (or output's) profile entry from its values."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise UsageError(f"no values to profile for {name}")
    edges = np.unique(np.quantile(v, np.arange(1, bins) / bins)) if bins > 1 else np.zeros(0)
    return {"name": name, "count": int(v.size), "edges": edges.tolist(), "shares": bin_shares(v, edges).tolist(),
            "min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()), "std": float(v.std()),
            "quantiles": {k: float(np.quantile(v, q)) for k, q in QUANTILES.items()}}


def feature_names(names: list[str], sizes: list[int]) -> list[str]:
    return [f"{n}[{j}]" for n, size in zip(names, sizes, strict=True) for j in range(size)]


def _slot_names(names: list[str], n_tensors: int) -> list[str]:
    """A slot's tensor names: the model's for one-slot or stacked circuits; a split circuit's K inputs
    (or outputs) are one tensor per slot, named after the first."""
    return list(names[:n_tensors]) if len(names) >= n_tensors else [f"t{i}" for i in range(n_tensors)]


def compute(circuit: dict, samples: list, references: list | None, output_names: list[str], source: str,
            bins: int = DEFAULT_BINS) -> dict:
    """The profile of `samples` (ezkl input_data values of whole circuit inputs, as a build reads its data)
    and their reference outputs (`references`: one flat vector per sample, the model's outputs; None: no
    output profile). A K-slot sample is K inferences, split as the circuit's `SlotLayout` says."""
    if not isinstance(bins, int) or bins < 2:
        raise UsageError(f"a profile needs at least 2 bins, got {bins}")
    slots = layout_mod.slot_layout(circuit)
    in_names = feature_names(_slot_names(circuit.get("input_names") or [], len(slots.sizes)), list(slots.sizes))
    out_sizes = [math.prod(s) for s in circuit["output_shapes"]]
    rows, outs = [], []
    for i, sample in enumerate(samples[:MAX_SAMPLES]):
        for slot, row in enumerate(slots.unpack(sample)):
            rows.append([float(x) for t in row for x in t])
            if references is not None:
                vec = np.asarray(references[i], dtype=np.float64).ravel()
                if vec.size != sum(out_sizes):
                    references = None  # outputs that do not split as the circuit's: no output profile
                    continue
                tensors, pos = [], 0
                for n in out_sizes:
                    tensors.append(vec[pos:pos + n].tolist())
                    pos += n
                outs.append([x for t in slots.outputs_of(tensors, slot) for x in t])
    x = np.asarray(rows, dtype=np.float64)
    profile = {"schema": SCHEMA, "source": source, "count": len(rows), "bins": bins, "binning": BINNING,
               "calibrated": {"lookup_range": circuit.get("lookup_range"), "input_scales": circuit.get("input_scales"),
                              "note": "the circuit refuses a row whose lookup inputs leave lookup_range (fixed-point, "
                                      "after scaling); each feature's min/max is the range its profile data spans"},
               "inputs": [describe(x[:, j], name, bins) for j, name in enumerate(in_names)],
               "outputs": []}
    if references is not None and outs:
        y = np.asarray(outs, dtype=np.float64)
        slot_out_sizes = [len(t) for t in slots.outputs_of([[0.0] * n for n in out_sizes], 0)]
        names = feature_names(_slot_names(output_names, len(slot_out_sizes)), slot_out_sizes)
        profile["outputs"] = [describe(y[:, j], name, bins) for j, name in enumerate(names)]
    return profile


def for_build(plan, circuit: dict, bins: int = DEFAULT_BINS) -> dict:
    """The profile a build records: its held-out validation data if it has some (`build_plan._Plan`), else its
    calibration data, with the user's model's outputs on it (the build's reference: onnxruntime, onnx's
    evaluator or the data's recorded outputs)."""
    from . import fidelity as fidelity_mod

    held_out = plan.validation_source.startswith(HELD_OUT)
    samples = (plan.validation if held_out else plan.calibration)[:MAX_SAMPLES]
    refs = fidelity_mod.reference_outputs(plan.reference, plan.sig, samples, plan.variables)
    what = "held-out validation data" if held_out else "calibration data"
    source = f"{what}: {plan.validation_source if held_out else plan.data_path} ({len(samples)} samples; " \
             f"outputs: {plan.reference.kind})"
    return compute(circuit, samples, refs, [t.name for t in plan.sig.outputs], source, bins)


def is_current(circuit_dir: str | os.PathLike) -> bool:
    """Whether DIR's recorded profile is of this version (an older one is recomputed by the next build)."""
    path = Path(circuit_dir) / PROFILE
    try:
        return read_json(path, "profile").get("schema") == SCHEMA
    except (UsageError, OSError, AttributeError):
        return False


def from_data(circuit_dir: str | os.PathLike, data_path: str | os.PathLike, bins: int = DEFAULT_BINS,
              attach: bool = True) -> dict:
    """(Re)compute a built circuit's profile from an ezkl input.json-style data file (`{"input_data": ...}`,
    samples back to back, optional `output_data`), with its model (source.onnx) as the outputs' reference.
    With `attach` it becomes the circuit's profile.json, listed in the manifest (`attach`)."""
    from . import reference as reference_mod
    from .build_plan import _load_samples
    from .export import inspect

    m = manifest_mod.load(circuit_dir)
    manifest_mod.verify_artifacts(m, (manifest_mod.SOURCE_ONNX,))
    onnx_path = m.artifact(manifest_mod.SOURCE_ONNX)
    data_path = Path(data_path)
    if not data_path.is_file():
        raise UsageError(f"profile data not found: {data_path}")
    sig = inspect(onnx_path)
    variables = dict(m.circuit.get("variables") or {})
    data = _load_samples(data_path, sig, variables, "profile data")
    samples = data.samples[:MAX_SAMPLES]
    probe = reference_mod.feeds(sig, samples[0], variables)
    ref = reference_mod.open_reference(onnx_path, sig, probe, data.output_data, len(data.samples))
    refs = [ref.outputs(reference_mod.feeds(sig, s, variables), i) for i, s in enumerate(samples)]
    profile = compute(m.circuit, samples, refs, [t.name for t in sig.outputs],
                      f"data file: {data_path} ({len(samples)} samples; outputs: {ref.kind})", bins)
    if attach:
        attach_profile(m.dir, profile)
    return profile


def attach_profile(circuit_dir: str | os.PathLike, profile: dict) -> Path:
    """Write DIR/profile.json and list it (sha256, bytes) among the manifest's artifacts, both atomically,
    profile first. The circuit's id is unchanged (checked): a profile is not part of its identity."""
    m = manifest_mod.load(circuit_dir)
    path = write_json_atomic(m.dir / PROFILE, profile)
    data = {**m.data, "artifacts": {**m.data["artifacts"],
                                    PROFILE: {"sha256": sha256_file(path), "bytes": path.stat().st_size}}}
    settings = read_json(m.artifact(manifest_mod.SETTINGS), "circuit settings")
    if manifest_mod.circuit_id(data, settings) != m.circuit_id:  # would mean identity came to cover the profile
        raise AssertionError("attaching a profile changed the circuit id")
    write_json_atomic(m.path, data)
    return path


def load(m: manifest_mod.Manifest) -> dict:
    """The circuit's profile, checked against the sha256 its manifest records. UsageError naming the file
    and the fix when the circuit has none (built before profiles were recorded) or it is not listed."""
    path = m.artifact(PROFILE)
    fix = ("rebuild it with `zkinfer circuit build` (same arguments: an up-to-date circuit only gains its "
           "profile) or compute one from data: `zkinfer monitor RUN_DIR --profile-from DATA.json`")
    if PROFILE not in m.data.get("artifacts", {}):
        if path.exists():
            raise UsageError(f"{path} is not listed in {m.path}, so it is not authenticated: {fix}")
        raise UsageError(f"{path} not found: circuit {m.name!r} was built before drift monitoring recorded a "
                         f"calibration profile; {fix}")
    try:
        manifest_mod.verify_artifacts(m, (PROFILE,))
    except ArtifactMismatchError as e:
        raise ArtifactMismatchError(f"{e.message}; or recompute it: `zkinfer monitor RUN_DIR --profile-from "
                                    "DATA.json`") from None
    data = read_json(path, "calibration profile")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a zkinfer profile (expected schema {SCHEMA!r})")
    return data
