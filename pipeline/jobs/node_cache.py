"""Circuit artifacts on a Ray node: fetched and checked once per node, not once per job or per actor.

Each node keeps a cache of circuit directories keyed by manifest sha256:

    $ZKINFER_CIRCUIT_CACHE (default ~/.cache/zkinfer/circuits)/<manifest sha256>/
        manifest.json settings.json network.compiled pk.key kzg.srs

The first actor on a node to need a circuit fills the entry, under a file lock that makes the node's other
actors wait for it and then use it:

1. If the circuit directory the batch was started with exists on this node (the driver's own machine, or
   a shared filesystem) and its manifest has the right hash, the files are hard-linked (copied where links
   are impossible) into the cache.
2. Otherwise the actor asks for the files through Ray's object store: the driver puts each file there once,
   in chunks, and Ray moves each chunk to a node at most once however many actors on it read it. The actor
   writes the chunks one at a time, so memory stays bounded for multi-GB proving keys.

Either way the files are hashed against the manifest before the entry is published by renaming its staging
directory into place: an entry that exists is complete and checked, and later actors use it as is.
Proving keys are not portable across ezkl versions, so every node must run the ezkl version the circuit was
built with (the manifest's `ezkl_version`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from .. import manifest as manifest_mod
from ..errors import ArtifactMismatchError, UsageError

CACHE_ENV = "ZKINFER_CIRCUIT_CACHE"
# What a prover needs: the manifest (its hash identifies the circuit) and the files proving reads.
NODE_FILES = (manifest_mod.MANIFEST, *manifest_mod.PROVE_FILES)
CHUNK_BYTES = 64 << 20


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "zkinfer" / "circuits")


@contextmanager
def _node_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # blocks while another actor on this node fills the entry
        yield


def cached_circuit(circuit_id: str, source_dir: str | None,
                   fetch: Callable[[str], Iterable[bytes]] | None = None) -> Path | None:
    """This node's copy of the circuit, creating it if needed.

    With `fetch` None, only a local `source_dir` can fill a missing entry; returns None if it cannot (the
    caller then asks the driver for the files). With `fetch`, `fetch(name)` yields the file's chunks.
    """
    root = cache_root()
    entry = root / circuit_id
    with _node_lock(root / f"{circuit_id}.lock"):
        if entry.is_dir():
            return entry
        staging = root / f".{circuit_id}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if fetch is not None:
                _write_chunks(staging, fetch)
            elif not _link_local(circuit_id, source_dir, staging):
                return None
            m = manifest_mod.load(staging)
            if m.circuit_id != circuit_id:
                raise ArtifactMismatchError(f"circuit files for circuit id {circuit_id[:16]}... arrived with "
                                            f"circuit id {m.circuit_id[:16]}...")
            manifest_mod.verify_artifacts(m, manifest_mod.PROVE_FILES)
            os.rename(staging, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return entry


def _link_local(circuit_id: str, source_dir: str | None, staging: Path) -> bool:
    if not source_dir:
        return False
    src = Path(source_dir)
    try:
        if manifest_mod.load(src).circuit_id != circuit_id:
            return False
    except (UsageError, OSError):  # absent or unreadable on this node: fetch it instead
        return False
    for name in NODE_FILES:
        try:
            os.link(src / name, staging / name)
        except OSError:
            shutil.copyfile(src / name, staging / name)
    return True


def _write_chunks(staging: Path, fetch: Callable[[str], Iterable[bytes]]) -> None:
    for name in NODE_FILES:
        with open(staging / name, "wb") as f:
            for chunk in fetch(name):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())


def file_chunks(path: Path):
    """A file's bytes in CHUNK_BYTES pieces (what the driver puts into the object store)."""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk
