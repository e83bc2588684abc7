"""Reliability and adversarial checks (`make reliability`, `zkinfer reliability`): counted results from real
components, written to `bench/reliability.json` (see `report`) and printed as a table.

    proof_mutation_offchain   mutation.offchain   mutants of a real proof through `zkinfer verify`
    proof_mutation_onchain    mutation.onchain    the same through the deployed verifier and gate (anvil)
    malformed_inputs          fuzz.run            hypothesis data files for prove, batch (JSONL, CSV), build
    crash_resume              crash.*             SIGKILLed batches resumed; SIGKILLed builds
    ray_node_loss             ray_loss.run        a worker node of a real Ray cluster killed mid-batch
    artifact_tampering        tampering.run       one byte changed in each artifact

Every check runs against `subject`, a small real circuit built by zkinfer's own build. `Sizes` sets how
many cases each tries: `FULL` for `make reliability`, `SHORT` for the test suite.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .report import DEFAULT_PATH, CheckResult, merge, table

CHECKS = ("proof_mutation_offchain", "proof_mutation_onchain", "malformed_inputs", "crash_resume",
          "ray_node_loss", "artifact_tampering")


@dataclass(frozen=True)
class Sizes:
    mutant_bytes: int = 200        # random single-byte mutants (off and on chain)
    fuzz_examples: int = 1000      # hypothesis cases
    batch_kills: int = 5           # SIGKILLs of a batch
    batch_rows: int = 8
    build_kills: int = 3           # SIGKILLs of a build at random moments
    install_crash: bool = True     # plus one at the build-install crash point (reported apart)
    ray_rows: int = 6
    tamper_rounds: int = 3         # random bytes per artifact
    seed: int = 13


FULL = Sizes()
SHORT = Sizes(mutant_bytes=20, fuzz_examples=100, batch_kills=2, batch_rows=3, build_kills=1, install_crash=False,
              ray_rows=3, tamper_rounds=1)


def run(out_path: str | os.PathLike = DEFAULT_PATH, sizes: Sizes = FULL,
        work: str | os.PathLike = ".zkinfer/reliability", only: tuple[str, ...] = (),
        say: Callable[[str], None] = print) -> dict:
    """Run the checks (all, or `only`), merge each result into `out_path` as it completes, return the report."""
    from .. import chain, prove
    from . import crash, fuzz, mutation, ray_loss, subject, tampering

    chosen = only or CHECKS
    unknown = [c for c in chosen if c not in CHECKS]
    if unknown:
        from ..errors import UsageError

        raise UsageError(f"unknown check(s) {', '.join(unknown)}: choose from {', '.join(CHECKS)}")
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    say(f"building the subject circuit in {work}")
    s = subject.build(work)
    sample = tampering.sample_input(s.dir, work / "sample.json")
    proof_path = work / "proof.json"
    prove.Prover(s.dir).prove(json.loads(sample.read_text())["input_data"], proof_path)
    rng = np.random.default_rng(sizes.seed)
    params = {"sizes": asdict(sizes), "subject": str(s.dir)}

    def record(r: CheckResult) -> None:
        merge([r], out_path, parameters=params)
        say(f"{r.name}: {r.cases} cases, {r.failures} failures ({r.seconds:.0f} s)")

    if "proof_mutation_offchain" in chosen:
        record(mutation.offchain(s.dir, proof_path, sizes.mutant_bytes, sizes.seed, work))
    if "artifact_tampering" in chosen:
        record(tampering.run(s.dir, proof_path, sample, sizes.tamper_rounds, sizes.seed, work))
    if "proof_mutation_onchain" in chosen:
        state = work / "anvil"
        node = chain.chain_up(state=state)
        try:
            record(mutation.onchain(s.dir, node.rpc_url, _fresh(work / "onchain"), sizes.mutant_bytes, sizes.seed))
        finally:
            chain.chain_down(state=state)
    if "crash_resume" in chosen:
        t0 = time.perf_counter()
        b = crash.batch_kills(s.dir, s.features(rng, sizes.batch_rows), _fresh(work / "crash"), sizes.batch_kills,
                              sizes.seed)
        k = crash.build_kills(_fresh(work / "buildkill"), sizes.build_kills, sizes.seed,
                              crash_install=sizes.install_crash)
        record(_combine_crash(b, k, time.perf_counter() - t0))
    if "ray_node_loss" in chosen:
        record(ray_loss.run(s.dir, s.features(rng, sizes.ray_rows), _fresh(work / "ray")))
    if "malformed_inputs" in chosen:
        record(fuzz.run(s.dir, s.onnx, s.calibration, _fresh(work / "fuzz"), sizes.fuzz_examples, sizes.seed))
    data = merge([], out_path, parameters=params)
    for line in table(data):
        say(line)
    return data


def _fresh(d: Path) -> Path:
    import shutil

    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def _combine_crash(batch: CheckResult, build: CheckResult, seconds: float) -> CheckResult:
    """One `crash_resume` entry: cases are the kills (batch and build) plus the end-state checks."""
    r = replace(batch, cases=batch.cases + build.cases, failures=batch.failures + build.failures,
                details={"batch": batch.details, "build": build.details}, seconds=seconds)
    bk = build.details.get("by_kind", {})
    kills = bk.get("build-kill", {}).get("cases", 0)
    ok = kills - bk.get("build-kill", {}).get("failures", 0)
    inst = build.details.get("install_window")
    rebuild = "clean" if not bk.get("rebuild", {}).get("failures") else "FAILED"
    r.notes = (f"{batch.notes}. Builds: {kills} killed at random moments"
               + (" and 1 at the crash point inside the install (files being moved into place)" if inst else "")
               + f": a usable circuit (the previous or the finished one) after "
               f"{ok + bool(inst and inst['usable_after'])} of {kills + bool(inst)}; rebuild {rebuild}")
    return r
