"""Crash points for the reliability checks: a process can be told to SIGKILL itself at a named moment.

    ZKINFER_CRASH_AT=store-commit@3     the third time the store is about to COMMIT, die (SIGKILL, no cleanup)

Points (each a moment a crash is most likely to leave something half done):

* `proof-temp-written`: a proof file's temporary copy is written and fsynced, not yet renamed into place;
* `proof-published`: a proof file is in place, its jobs not yet recorded as proved;
* `store-commit`: a store transaction has written its rows and is about to COMMIT;
* `build-install`: a circuit build is moving its finished artifacts into place (after each file).

Unset (always, outside `pipeline.reliability`), `point` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "ZKINFER_CRASH_AT"
POINTS = ("proof-temp-written", "proof-published", "store-commit", "build-install")
_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(ENV)
    if not spec:
        return None
    name, _, n = spec.partition("@")
    return name, int(n or 1)


def point(name: str) -> None:
    """Die here if ZKINFER_CRASH_AT names this point and this is its n-th hit in this process."""
    target = _target()
    if target is None or target[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
