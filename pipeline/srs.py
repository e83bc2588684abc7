"""The KZG structured reference string (SRS) a circuit's keys and proofs are made against.

Three origins, recorded in every manifest:

* **ceremony**: a file given with `--srs PATH` whose sha256 is the public Perpetual Powers of Tau file's for
  its logrows, as ezkl pins them (`pipeline.srs_ceremony`): a secret nobody knows. Its sha256 goes into the
  manifest so anyone can check which file was used.
* **user-supplied, unverified (insecure)**: any other `--srs` file. It may be a ceremony file from elsewhere,
  or the output of `gen_srs` on someone's machine: nothing tells them apart, so it is treated like a dev SRS.
  (Comparing the file's G2 point with the ceremony's would accept re-encoded ceremony files too; the
  ceremony's point is not available offline here, so only the exact files ezkl pins are accepted.)
* **dev-generated, insecure**: `ezkl.gen_srs` on this machine. Whoever ran it could know the toxic
  waste and forge proofs, so it is for development and tests only. zkinfer generates one per logrows
  into a cache (``~/.cache/zkinfer/srs``, or ``$ZKINFER_SRS_DIR``) and reuses it, and refuses to deploy
  circuits built on it to a public chain unless told otherwise.

ezkl's `get_srs` downloads the ceremony file; it needs the network and is not used here.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

from .artifacts import read_json, sha256_file, write_json_atomic, write_with
from .errors import UsageError
from .srs_ceremony import PUBLIC_SRS_SHA256

log = logging.getLogger(__name__)

SRS_DIR_ENV = "ZKINFER_SRS_DIR"
DEV_ORIGIN = "dev-generated, insecure"
CEREMONY_ORIGIN = "ceremony"
UNVERIFIED_ORIGIN = "user-supplied, unverified (insecure)"
# ezkl/halo2 circuits go up to 2^26 rows.
MAX_LOGROWS = 26
# A halo2 KZG params file: u32 k (little-endian), then 2^k G1 points in two bases (64 bytes each,
# uncompressed affine), then the G2 points: 2 * 2^k * 64 bytes + a small header and tail.
_G1_BYTES = 64

INSECURE_WARNING = (
    "WARNING: this circuit uses a locally generated dev SRS (insecure): whoever generated it can forge "
    "proofs. Use it for development and tests only; build with --srs <ceremony file> for production."
)


@dataclass(frozen=True)
class SrsInfo:
    path: Path
    logrows: int
    origin: str
    sha256: str

    @property
    def insecure(self) -> bool:
        return self.origin != CEREMONY_ORIGIN

    def manifest_entry(self, circuit_logrows: int) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["insecure"] = self.insecure
        d["circuit_logrows"] = circuit_logrows
        return d


def cache_dir() -> Path:
    env = os.environ.get(SRS_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "zkinfer" / "srs"


def file_logrows(path: str | os.PathLike) -> int:
    """Read k from an SRS file's header and check the file is at least as long as 2^k points imply."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            header = f.read(4)
    except FileNotFoundError:
        raise UsageError(f"SRS file not found: {p}") from None
    if len(header) < 4:
        raise UsageError(f"SRS file {p} is too short to be a KZG parameters file")
    (k,) = struct.unpack("<I", header)
    if not 1 <= k <= MAX_LOGROWS:
        raise UsageError(f"SRS file {p} does not look like a KZG parameters file (header says 2^{k} rows)")
    if p.stat().st_size < 2 * (1 << k) * _G1_BYTES:
        raise UsageError(f"SRS file {p} is truncated: {p.stat().st_size} bytes for 2^{k} rows")
    return k


def ceremony_srs(path: str | os.PathLike, logrows: int) -> SrsInfo:
    """A user-supplied SRS, checked to have enough rows for the circuit; a ceremony SRS only if its sha256 is
    the public ceremony file's for its logrows, else recorded as unverified (insecure)."""
    p = Path(path).expanduser().resolve()
    k = file_logrows(p)
    if k < logrows:
        raise UsageError(f"SRS file {p} has 2^{k} rows but the circuit needs 2^{logrows} (logrows {logrows})")
    digest = sha256_file(p)
    if digest == PUBLIC_SRS_SHA256.get(k):
        return SrsInfo(path=p, logrows=k, origin=CEREMONY_ORIGIN, sha256=digest)
    log.warning("%s is not the public ceremony SRS for logrows %d (sha256 %s...): treated as insecure, like a "
                "dev SRS", p, k, digest[:16])
    return SrsInfo(path=p, logrows=k, origin=UNVERIFIED_ORIGIN, sha256=digest)


def dev_srs(logrows: int) -> SrsInfo:
    """The cached dev SRS for exactly `logrows`, generated once (under a lock) and reused.

    Exactly, not "at least": ezkl accepts a larger SRS but downsizing it at setup is slow (measured: setup of
    a logrows-15 circuit took 36 s with a 2^17 SRS against 3 s with a 2^15 one).
    """
    if not 1 <= logrows <= MAX_LOGROWS:
        raise UsageError(f"logrows must be between 1 and {MAX_LOGROWS}, got {logrows}")
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"kzg-dev-k{logrows}.srs"
    meta_path = path.with_suffix(".json")
    with open(d / f".kzg-dev-k{logrows}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two builds at once must not both generate (and disagree)
        if path.exists() and meta_path.exists():
            meta = read_json(meta_path, "SRS metadata")
            return SrsInfo(path=path, logrows=logrows, origin=DEV_ORIGIN, sha256=meta["sha256"])
        import ezkl

        log.warning("generating a dev SRS for logrows %d in %s (insecure, development only)", logrows, d)
        write_with(path, lambda tmp: ezkl.gen_srs(str(tmp), logrows))
        digest = sha256_file(path)
        write_json_atomic(meta_path, {"origin": DEV_ORIGIN, "logrows": logrows, "sha256": digest})
        return SrsInfo(path=path, logrows=logrows, origin=DEV_ORIGIN, sha256=digest)


def resolve(logrows: int, srs_path: str | os.PathLike | None = None) -> SrsInfo:
    return ceremony_srs(srs_path, logrows) if srs_path else dev_srs(logrows)
