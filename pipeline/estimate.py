"""Cost before you build: logrows, proving-key bytes, peak memory, prove seconds and verification gas.

    est = estimate_circuit("model.onnx", "calibration.json", BuildOptions(...))   # no keys are made
    print(est.describe())

`estimate_circuit` does the cheap part of a build (read and prepare the graph, ezkl settings, calibration
with the build's first ladder attempt, compilation) and predicts the rest from the calibrated settings;
`from_settings` is the model alone (`circuit build` prints its line before key generation).

The model, and where its constants come from:

- logrows: the calibrated settings' own value (exact for the first attempt; a build whose fidelity gate
  climbs the calibration ladder may end larger).
- pk bytes and peak memory: `pipeline.resources.estimate` (32 bytes x 2**logrows x polynomial
  equivalents from the tables, dynamic lookups, advice columns and, for hashed visibility, the Poseidon
  chip; peak = 2 x pk + 300 MB).
- prove seconds: linear in the proving key, which is linear in 2**logrows x columns:
  ``prove_s = PROVE_S_FIXED + PROVE_S_PER_GIB_PK x pk_GiB x REFERENCE_CPUS / cpus``. The constants are
  fitted to proofs measured on the project's 2-core reference machine (`make bench`, sections batching
  and estimates, 2 Dec 2026: ~28 s per GiB of key from 0.13 GiB (digits_cnn, 5.4 s) to 3.3 GiB
  (credit_risk at K = 128, 94 s); an earlier session on the same machine proved K = 64 in 27 s against
  47 s that day, so the constant sits between the two). Fewer or more cores scale the variable part, as
  halo2's FFTs and MSMs parallelise. The fixed part is witness generation, the mock check and file I/O.
- verification gas: ``VERIFY_GAS_BASE + VERIFY_GAS_PER_INSTANCE x instances`` (+ REUSABLE_EXTRA_GAS for
  ezkl's reusable verifier, which reads its key from calldata). Fitted to credit_risk with hashed inputs
  (README's batching table: 797,568 gas at K = 4 with 8 instances, 926,505 at K = 64 with 128: ~1,075 gas
  per instance, ~790k for the rest: pairing check, transcript, opening). The standard and split-vk
  verifiers differ by ~2.6k gas, below this model's resolution. Instances come from the settings'
  instance shapes (public inputs and outputs, one Poseidon hash per hashed tensor).

`make bench` (section `estimates`) compares every prediction with the zoo's measured builds, so a drift
in ezkl or a model far from credit_risk shows up there; the target is within 2x.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import resources
from .compile import CircuitSettings

REFERENCE_CPUS = 2
PROVE_S_FIXED = 1.5
PROVE_S_PER_GIB_PK = 24.0
VERIFY_GAS_BASE = 790_000
VERIFY_GAS_PER_INSTANCE = 1_075
REUSABLE_EXTRA_GAS = 330_000


@dataclass(frozen=True)
class CostEstimate:
    logrows: int
    advice_columns: int
    instances: int
    pk_bytes: int
    peak_bytes: int
    prove_s: float
    verify_gas: int
    verifier_mode: str  # the mode the gas is predicted for
    # Rows the circuit fills of its 2**logrows (ezkl's num_rows; None if the settings lack it). A batched
    # circuit that leaves many empty could take more inferences per proof for the same key and prove time.
    rows_used: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        mem = resources.MemoryEstimate(self.logrows, self.pk_bytes, self.peak_bytes).describe()
        fill = (f" ({self.rows_used:,} of {2**self.logrows:,} rows used)" if self.rows_used else "")
        return (f"estimate: logrows {self.logrows}{fill}, {self.advice_columns} advice column(s), {mem}, "
                f"prove ~{self.prove_s:.1f} s, verification ~{self.verify_gas:,} gas "
                f"({self.instances} instances, {self.verifier_mode} verifier)")


def instance_count(settings: CircuitSettings) -> int:
    """Public instances a proof carries: the settings' instance shapes (public inputs and outputs) plus one
    Poseidon hash per hashed input or output tensor. (Hashed weights add one per weight tensor, which the
    settings do not count; the manifest's instance layout, made from a witness, is exact.)"""
    hashes = (len(settings.input_scales) * (settings.visibility.get("input") == "hashed")
              + len(settings.output_scales) * (settings.visibility.get("output") == "hashed"))
    return sum(math.prod(shape) for shape in settings.instance_shapes) + hashes


def from_settings(settings: CircuitSettings, verifier_mode: str = "standard",
                  cpus: int | None = None) -> CostEstimate:
    """The cost model applied to calibrated (compiled) settings; see the module docstring."""
    mem = resources.estimate(settings)
    cpus = cpus or os.cpu_count() or REFERENCE_CPUS
    prove_s = PROVE_S_FIXED + PROVE_S_PER_GIB_PK * mem.pk_bytes / 2**30 * REFERENCE_CPUS / cpus
    n = instance_count(settings)
    gas = VERIFY_GAS_BASE + VERIFY_GAS_PER_INSTANCE * n + (REUSABLE_EXTRA_GAS if verifier_mode == "reusable" else 0)
    return CostEstimate(logrows=settings.logrows, advice_columns=resources.advice_columns(settings.raw,
                                                                                          settings.logrows),
                        instances=n, pk_bytes=mem.pk_bytes, peak_bytes=mem.peak_bytes, prove_s=round(prove_s, 2),
                        verify_gas=int(gas), verifier_mode=verifier_mode,
                        rows_used=int(settings.raw["num_rows"]) if settings.raw.get("num_rows") else None)


def estimate_circuit(onnx_path: str | os.PathLike, data_path: str | os.PathLike, options=None,
                     verifier_mode: str = "standard", progress: Callable[[str], None] | None = None) -> CostEstimate:
    """Prepare, calibrate (the build's first ladder attempt) and compile in a scratch folder, then predict the
    cost of the keys and proofs from the settings. No keys, no SRS, no fidelity gate. Raises like
    `build_circuit` for bad input (UsageError for a missing file, UnsupportedModelError ...)."""
    from . import build

    options = options or build.BuildOptions()
    plan = build.plan_build(Path(onnx_path), Path(data_path), None, options)
    with tempfile.TemporaryDirectory(prefix="zkinfer-estimate-") as tmp:
        settings = build.first_calibration(Path(tmp), plan, options, progress)
    return from_settings(settings, verifier_mode)
