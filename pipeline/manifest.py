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

`batch_size` is K, the inferences one proof covers; `instance_layout` counts the proof's public values.
Both are read through `pipeline.layout` (which instance is which, which slot takes which input and outputs).

`circuit_id` identifies a circuit version: on chain (the registry), in job ids and in node caches. It is a
sha256 over the circuit's semantic content only (`identity`): the hashes of the graphs and the verifying key,
ezkl's settings (less their timestamp), the `circuit` and `prepare` sections, the SRS's identity and the
ezkl version as installed at build. Names, paths and timings stay in the manifest but outside it, so the
same inputs rebuilt in another folder or on another machine (with the same SRS) give the same id.

`load` authenticates the manifest before anything in it is used: its content must give its recorded id,
and its circuit fields must agree with settings.json. `verify_artifacts` then checks every file a step uses
against the recorded sha256, hashing each once per process and circuit (a LeNet-5 proving key is 4.4 GB):
the result is cached keyed by each file's (size, mtime, inode), so a file replaced or edited in place after
the check is hashed again.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .artifacts import canonical_json, read_json, sha256_bytes, sha256_file
from .errors import ArtifactMismatchError, UsageError
from .layout import slot_layout  # noqa: F401  (the old home of `layout.slot_layout`, which tests still use)

SCHEMA = "zkinfer/manifest@1"
MANIFEST = "manifest.json"
# Where a build works, inside the circuit folder; its finished files are moved out of it, manifest last.
STAGING = ".staging"

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
# What each use of a circuit checks: what it reads, and the graphs that say what the circuit is.
PROVE_FILES = (SOURCE_ONNX, ONNX, SETTINGS, COMPILED, PK, SRS)
VERIFY_FILES = (SOURCE_ONNX, ONNX, SETTINGS, VK, SRS)
# The files whose content is the circuit's identity (the compiled circuit's bytes vary between identical
# builds, and the proving key follows from it and the verifying key's SRS; see `identity`).
IDENTITY_FILES = (SOURCE_ONNX, ONNX, VK)
# circuit fields that restate settings.json (checked against it on load)
SETTINGS_FIELDS = ("logrows", "input_scales", "output_scales", "param_scale", "lookup_range", "instance_shapes")


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
    def circuit_id(self) -> str:
        """The circuit version's reproducible identity (see the module doc)."""
        return self.data["circuit_id"]

    @property
    def srs(self) -> dict:
        return self.data["srs"]

    @property
    def insecure_srs(self) -> bool:
        return bool(self.data["srs"].get("insecure", True))

    def artifact(self, name: str) -> Path:
        return self.dir / name

    def summary_lines(self, rebuilt: bool) -> list[str]:
        """What `zkinfer circuit build` prints about the circuit: where, which version, size, fidelity, SRS."""
        c, f = self.circuit, self.data["fidelity"]
        agree = f", label agreement {f['label_agreement']:.4f}" if f.get("label_agreement") is not None else ""
        return [f"circuit:   {self.dir} ({'built' if rebuilt else 'up to date'})",
                f"circuit id: {self.circuit_id}",
                f"logrows:   {c['logrows']}  instances: {c['num_instances']}  visibility: {c['visibility']}",
                f"fidelity:  max abs error {f['max_abs_error']:.6g}, mean {f['mean_abs_error']:.6g}{agree} "
                f"(tolerance {f['tolerance']}; {f['validation_source']})",
                f"srs:       {self.srs['origin']}"]


def finish_install(circuit_dir: str | os.PathLike) -> bool:
    """Finish a build that was killed while moving its artifacts into place (its manifest is staged, the old
    one already gone): move the staged files in, manifest last. True if there was one to finish. What it
    moves is then checked like any circuit (`authenticate`, `verify_artifacts`)."""
    d = Path(circuit_dir)
    staged = d / STAGING / MANIFEST
    if (d / MANIFEST).exists() or not staged.exists():
        return False
    try:
        names = list(read_json(staged, "staged manifest").get("artifacts", {}))
    except (UsageError, AttributeError):
        return False
    for name in names:
        if (d / STAGING / name).exists() and name == Path(name).name:
            try:
                os.replace(d / STAGING / name, d / name)
            except FileNotFoundError:  # another reader moved it first
                pass
    try:
        os.replace(staged, d / MANIFEST)
    except FileNotFoundError:
        pass
    return True


def load(circuit_dir: str | os.PathLike) -> Manifest:
    """Read DIR/manifest.json; a missing or foreign file is a UsageError naming it. A build killed while
    publishing its files is finished first (`finish_install`)."""
    d = Path(circuit_dir)
    if not d.is_dir():
        raise UsageError(f"circuit directory not found: {d}")
    finish_install(d)
    p = d / MANIFEST
    if not p.exists():
        raise UsageError(f"{p} not found: {d} is not a built circuit (run `zkinfer circuit build` first)")
    data = read_json(p, "manifest")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{p} is not a zkinfer manifest (expected schema {SCHEMA!r})")
    m = Manifest(path=p, data=data, sha256=sha256_file(p))
    authenticate(m)
    return m


def settings_identity(settings: dict) -> dict:
    """ezkl's settings as they bear on the circuit: all but the time they were written."""
    return {k: v for k, v in settings.items() if k != "timestamp"}


def identity(data: dict, settings: dict) -> dict:
    """What a circuit's id is a hash of: content only, never names, paths or timings."""
    artifacts = data["artifacts"]
    return {
        "schema": SCHEMA,
        "ezkl_version": data["ezkl_version"],
        "files": {n: artifacts[n]["sha256"] for n in IDENTITY_FILES},
        "settings": settings_identity(settings),
        "circuit": data["circuit"],
        "prepare": data.get("prepare"),
        "srs": {k: data["srs"].get(k) for k in ("origin", "sha256", "logrows")},
    }


def circuit_id(data: dict, settings: dict) -> str:
    return sha256_bytes(canonical_json(identity(data, settings)))


def authenticate(m: Manifest) -> None:
    """ArtifactMismatchError unless the manifest's content gives its recorded circuit id and its circuit
    fields agree with settings.json: an edited manifest is never used."""
    settings_path = m.artifact(SETTINGS)
    verify_artifacts(m, (SETTINGS,))  # the id is recomputed from it: a changed settings.json is named as such
    settings = read_json(settings_path, "circuit settings")
    try:
        recomputed = circuit_id(m.data, settings)
        recorded = m.data["circuit_id"]
        mismatched = [f for f in SETTINGS_FIELDS if m.circuit.get(f) != _settings_value(settings, f)]
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ArtifactMismatchError(f"{m.path} is incomplete or malformed ({type(e).__name__}: {e}); rebuild "
                                    "with `zkinfer circuit build`") from None
    if recomputed != recorded:
        raise ArtifactMismatchError(f"{m.path} was modified: its content gives circuit id {recomputed[:16]}..., it "
                                    f"records {str(recorded)[:16]}... (rebuild with `zkinfer circuit build`)")
    if mismatched:
        raise ArtifactMismatchError(f"{m.path} disagrees with {settings_path.name} on {', '.join(mismatched)} "
                                    "(rebuild with `zkinfer circuit build`)")


def _settings_value(settings: dict, field: str):
    ra = settings["run_args"]
    return {"logrows": lambda: int(ra["logrows"]), "input_scales": lambda: list(settings["model_input_scales"]),
            "output_scales": lambda: list(settings["model_output_scales"]),
            "param_scale": lambda: int(ra["param_scale"]), "lookup_range": lambda: list(ra["lookup_range"]),
            "instance_shapes": lambda: [list(x) for x in settings["model_instance_shapes"]]}[field]()


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
