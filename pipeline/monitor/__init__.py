"""Drift monitoring: is what this prover proves still distributed like the data its circuit was built from?

    (pipeline.profile, a build stage: the data profile a build records beside the manifest, DIR/profile.json,
    and computing one for an existing circuit from a data file: `profile_from_data`)
    drift    `monitor`: PSI per input feature and output, out-of-range refusals, verdict, drift.json
    plot     drift.png

A statistical alarm on the rows one prover proved, not a proof about the model: see `drift`'s doc.
"""

from __future__ import annotations

from ..profile import PROFILE, attach_profile
from ..profile import from_data as profile_from_data
from ..profile import load as load_profile
from .drift import DRIFT_JSON, DRIFT_PNG, DriftReport, Thresholds, Trip, find_store, monitor, psi

__all__ = ["DRIFT_JSON", "DRIFT_PNG", "PROFILE", "DriftReport", "Thresholds", "Trip", "attach_profile",
           "find_store", "load_profile", "monitor", "profile_from_data", "psi"]
