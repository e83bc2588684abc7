"""The same work done with ezkl alone: the baseline the benchmarks hold zkinfer to.

What an ezkl user writes by hand: gen_settings (inputs and outputs public, parameters fixed, as zkinfer's
defaults), calibrate_settings with target "resources", compile_circuit, setup, then gen_witness, prove
and verify for one input. No graph preparation, no fidelity gate. Used by `make bench` to measure
zkinfer's overhead and to see whether plain ezkl's proven outputs are right.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import native
from .native import NativeFailure


@dataclass
class PlainRun:
    stage: str = "start"  # the last stage that completed
    error: str | None = None
    logrows: int | None = None
    build_s: float | None = None  # settings + calibrate + compile + setup
    prove_s: float | None = None  # witness + prove
    verify_s: float | None = None
    verified: bool = False
    outputs: list[list[float]] = field(default_factory=list)  # ezkl's rescaled public outputs

    def to_dict(self) -> dict:
        return asdict(self)


def run(onnx_path: str | os.PathLike, data_path: str | os.PathLike, input_data: list[list[float]],
        work_dir: str | os.PathLike) -> PlainRun:
    """Build with `data_path` (ezkl input.json), then prove and verify `input_data`. Never raises for an ezkl
    failure: the run records the stage it reached and the error."""
    import ezkl

    from . import srs as srs_mod

    w = Path(work_dir)
    w.mkdir(parents=True, exist_ok=True)
    log = w / "ezkl.log"
    res = PlainRun()
    settings, compiled = w / "settings.json", w / "network.compiled"
    t0 = time.perf_counter()
    try:
        ra = ezkl.PyRunArgs()
        ra.input_visibility, ra.output_visibility, ra.param_visibility = "public", "public", "fixed"
        native.call(ezkl.gen_settings, str(onnx_path), str(settings), py_run_args=ra, log_path=log)
        res.stage = "settings"
        native.call(ezkl.calibrate_settings, str(data_path), str(onnx_path), str(settings), "resources",
                    log_path=log)
        res.stage = "calibrate"
        native.call(ezkl.compile_circuit, str(onnx_path), str(compiled), str(settings), log_path=log)
        res.stage = "compile"
        res.logrows = json.loads(settings.read_text())["run_args"]["logrows"]
        srs = srs_mod.dev_srs(res.logrows).path
        native.call(ezkl.setup, str(compiled), str(w / "vk.key"), str(w / "pk.key"), str(srs), log_path=log)
        res.stage = "setup"
        res.build_s = time.perf_counter() - t0
        (w / "input.json").write_text(json.dumps({"input_data": input_data}))
        t1 = time.perf_counter()
        native.call(ezkl.gen_witness, str(w / "input.json"), str(compiled), str(w / "witness.json"), log_path=log)
        native.call(ezkl.prove, str(w / "witness.json"), str(compiled), str(w / "pk.key"), str(w / "proof.json"),
                    str(srs), log_path=log)
        res.stage = "prove"
        res.prove_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        res.verified = bool(native.call(ezkl.verify, str(w / "proof.json"), str(settings), str(w / "vk.key"),
                                        str(srs), log_path=log))
        res.verify_s = time.perf_counter() - t2
        res.stage = "verify"
        proof = json.loads((w / "proof.json").read_text())
        res.outputs = [[float(x) for x in t] for t in proof["pretty_public_inputs"]["rescaled_outputs"]]
    except NativeFailure as e:
        res.error = e.describe()
    finally:
        (w / "pk.key").unlink(missing_ok=True)  # hundreds of MB, never needed again
    return res


# The same proof on a circuit zkinfer built: gen_witness + prove, then verify, on its files (compiled
# circuit, keys, SRS, settings) and nothing else. `make bench`'s `overhead` section holds zkinfer's prover
# to these, in this process (library against library) and as a script of its own (CLI against CLI).
BARE_PROVE_SCRIPT = """\
import sys, ezkl
data, compiled, pk, srs, witness, proof = sys.argv[1:]
ezkl.gen_witness(data, compiled, witness)
ezkl.prove(witness, compiled, pk, proof, srs)
"""
BARE_VERIFY_SCRIPT = """\
import sys, ezkl
proof, settings, vk, srs = sys.argv[1:]
sys.exit(0 if ezkl.verify(proof, settings, vk, srs) else 1)
"""


def prove_files(data_path: str | os.PathLike, circuit_dir: str | os.PathLike, witness_path: str | os.PathLike,
                proof_path: str | os.PathLike) -> None:
    """gen_witness + prove with ezkl alone on a built circuit's files (`data_path`: ezkl's input.json, the
    values as the circuit takes them)."""
    import ezkl

    d = Path(circuit_dir)
    ezkl.gen_witness(str(data_path), str(d / "network.compiled"), str(witness_path))
    ezkl.prove(str(witness_path), str(d / "network.compiled"), str(d / "pk.key"), str(proof_path), str(d / "kzg.srs"))


def verify_files(proof_path: str | os.PathLike, circuit_dir: str | os.PathLike) -> bool:
    """ezkl.verify alone on a proof of `prove_files` and a built circuit's settings, key and SRS."""
    import ezkl

    d = Path(circuit_dir)
    return bool(ezkl.verify(str(proof_path), str(d / "settings.json"), str(d / "vk.key"), str(d / "kzg.srs")))


def prove_args(data_path, circuit_dir, witness_path, proof_path) -> list[str]:
    """BARE_PROVE_SCRIPT's arguments for the same files as `prove_files`."""
    d = Path(circuit_dir)
    return [str(data_path), str(d / "network.compiled"), str(d / "pk.key"), str(d / "kzg.srs"), str(witness_path),
            str(proof_path)]


def verify_args(proof_path, circuit_dir) -> list[str]:
    d = Path(circuit_dir)
    return [str(proof_path), str(d / "settings.json"), str(d / "vk.key"), str(d / "kzg.srs")]
