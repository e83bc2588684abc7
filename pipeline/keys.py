"""Proving and verifying keys.

`setup` fixes the circuit's constraint system, the fixed (parameter) columns and the SRS into a proving
key (large: 164 MB for an 8-16-1 MLP, 4.4 GB for LeNet-5) and a verifying key (tens of KB). Given the
same compiled circuit and SRS file, setup is deterministic: the vk is byte-identical, which is what
reproducibility claims should be checked on.
"""

from __future__ import annotations

from pathlib import Path

from . import native
from .artifacts import atomic_path
from .errors import ZkinferError
from .native import NativeFailure


def setup(compiled_path: Path, srs_path: Path, vk_path: Path, pk_path: Path, log_path: Path | None = None) -> None:
    """Write vk and pk atomically: a killed setup never leaves a half-written key. Which vk and pk belong
    together is recorded by the manifest, written after both."""
    import ezkl

    with atomic_path(vk_path) as vk_tmp, atomic_path(pk_path) as pk_tmp:
        try:
            ok = native.call(ezkl.setup, str(compiled_path), str(vk_tmp), str(pk_tmp), str(srs_path),
                             log_path=log_path)
        except NativeFailure as e:
            raise ZkinferError(f"key generation failed: {e.describe()}") from None
        if not ok:
            raise ZkinferError("key generation failed: ezkl.setup returned false")
