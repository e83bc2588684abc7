"""Artifact tampering: one byte changed in each artifact of a built circuit must be detected before the
artifact is used, with a message naming the file.

For each of pk.key, vk.key, settings.json, network.compiled, network.onnx, source.onnx, manifest.json and the
SRS (kzg.srs), a copy of the circuit with that one byte changed (at a random offset, seeded) is handed to
the real commands that read it: `zkinfer prove` and `zkinfer verify`. Each must exit 2 with one line naming
the file; the untouched circuit still proves and verifies. Copies are real copies, never hard links: the
SRS in a circuit folder is hard-linked from the shared cache, which must not be touched.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from .. import manifest as manifest_mod
from .common import run_cli
from .report import CheckResult

ARTIFACTS = (manifest_mod.PK, manifest_mod.VK, manifest_mod.SETTINGS, manifest_mod.COMPILED, manifest_mod.ONNX,
             manifest_mod.SOURCE_ONNX, manifest_mod.MANIFEST, manifest_mod.SRS)
# Which command reads which artifact (both read the manifest, settings, the graphs and the SRS).
USED_BY = {manifest_mod.PK: ("prove",), manifest_mod.COMPILED: ("prove",), manifest_mod.VK: ("verify",)}


def _copy_circuit(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, dst / f.name)  # a new inode: never writes through a hard link


def _flip(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    i = rng.randrange(len(data))
    old = data[i]
    data[i] = rng.choice([b for b in range(256) if b != old])
    path.write_bytes(bytes(data))
    return f"byte {i} of {len(data)}: {old:#04x} -> {data[i]:#04x}"


def run(circuit_dir: Path, proof_path: Path, input_path: Path, rounds: int = 1, seed: int = 13,
        work: Path | None = None) -> CheckResult:
    """`rounds` tampered copies per artifact (a different random byte each), each through every command
    that reads the artifact."""
    t0 = time.perf_counter()
    res = CheckResult("artifact_tampering")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="zkinfer-tamper-", dir=work) as tmp:
        tmp = Path(tmp)
        for name in ARTIFACTS:
            for k in range(rounds):
                d = tmp / f"{name}.{k}" / circuit_dir.name
                _copy_circuit(circuit_dir, d)
                what = _flip(d / name, rng)
                manifest_mod.forget_verification_cache()
                for cmd in USED_BY.get(name, ("prove", "verify")):
                    argv = (["prove", str(d), str(input_path), "--out", str(d.parent / "proof.json")]
                            if cmd == "prove" else ["verify", str(d), str(proof_path)])
                    r = run_cli(argv)
                    named = name in r.err or (name == manifest_mod.MANIFEST and "manifest" in r.err)
                    ok = r.code == 2 and not r.traceback and named and r.one_line_error
                    res.case(ok, name, f"{name} ({what}) via {cmd}: {r.describe()}")
                    if ok and len(res.details.setdefault("messages", {})) < len(ARTIFACTS) * 2:
                        res.details["messages"].setdefault(f"{name} via {cmd}", r.err.strip()[:240])
                shutil.rmtree(d.parent)
        manifest_mod.forget_verification_cache()
        proved = run_cli(["prove", str(circuit_dir), str(input_path), "--out", str(tmp / "again.json")])
        verified = run_cli(["verify", str(circuit_dir), str(tmp / "again.json")]) if proved.code == 0 else proved
        res.case(proved.code == 0 and verified.code == 0, "untouched", f"untouched circuit: {verified.describe()}")
    res.seconds = time.perf_counter() - t0
    res.notes = (f"{len(ARTIFACTS)} artifacts ({', '.join(ARTIFACTS)}) x {rounds} random byte(s), through "
                 f"zkinfer prove and/or verify: {res.cases - 1 - res.failures + (res.failures and 0)} of "
                 f"{res.cases - 1} refused before use, exit 2, naming the file; untouched circuit proves and "
                 "verifies; failures = undetected tampering, tracebacks, messages not naming the file")
    return res


def sample_input(circuit_dir: Path, dest: Path) -> Path:
    """The circuit's first saved validation sample as an input file."""
    line = (circuit_dir / manifest_mod.SAMPLES).read_text().splitlines()[0]
    dest.write_text(json.dumps({"input_data": json.loads(line)["input_data"]}))
    return dest
