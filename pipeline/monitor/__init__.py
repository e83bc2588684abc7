"""Drift monitoring: is what this prover proves still distributed like the data its circuit was built from?

    profile  the calibration profile a build records beside the manifest (DIR/profile.json), and computing
             one for an existing circuit from a data file (`profile_from_data`)
"""

from __future__ import annotations

from .profile import PROFILE, attach_profile
from .profile import from_data as profile_from_data
from .profile import load as load_profile

__all__ = ["PROFILE", "attach_profile", "load_profile", "profile_from_data"]
