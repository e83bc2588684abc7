"""Memory: what this machine has, and what a circuit will need to mock-prove, set up and prove.

A halo2 proving key holds every fixed and permutation polynomial of the circuit over 2**logrows rows, in
several forms (values, coefficients, the extended domain): its size is 32 bytes x 2**logrows x a number of
"polynomial equivalents" that grows with the lookup tables, range checks and advice columns the circuit
uses. Setting up and proving hold the key and about as much again. The model below is fitted to builds
measured on this project's machines (`make bench` compares its predictions with measurements); it is
meant to stop a build before it asks for memory the machine does not have (the kernel's OOM killer ends
such a build with no message), not to budget tightly.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from .errors import UsageError

FIELD_BYTES = 32
# Polynomial equivalents per row: a base for the permutation argument, blinding and selectors, plus a
# share per lookup table / range check, per dynamic lookup and shuffle, and per advice column.
BASE_POLYS = 60
POLYS_PER_TABLE = 30
POLYS_PER_DYNAMIC = 12
POLYS_PER_ADVICE_COLUMN = 6
# Hashed inputs, outputs or weights add ezkl's Poseidon chip (its own advice, fixed round-constant and
# permutation columns). Fitted to one build: credit_risk at K = 64 with hashed inputs and one advice column
# has a 1.8 GB key at logrows 17, where the terms above alone give 0.74 GB.
POLYS_FOR_POSEIDON = 260
# Peak resident memory while proving, against the key's size: measured (the prover process's own VmHWM,
# `make bench`) 1.85x the key plus the process at K = 64 and K = 128 (3.3 GB and 6.5 GB peaks for 1.7 GB
# and 3.4 GB keys); rounded up. (An earlier 3.0 came from rusage figures that counted the parent's memory.)
PEAK_OVER_PK = 2.0
PROCESS_BYTES = 300 << 20
# Use at most this share of the memory available, leaving the rest for everything else.
HEADROOM = 0.9
# An operator's cap on what zkinfer may plan to use, in bytes or with a K/M/G suffix ("8G").
MEMORY_LIMIT_ENV = "ZKINFER_MEMORY_LIMIT"


@dataclass(frozen=True)
class MemoryEstimate:
    logrows: int
    pk_bytes: int
    peak_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return f"proving key ~{_gb(self.pk_bytes)}, peak memory ~{_gb(self.peak_bytes)}"


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def advice_columns(raw: dict, logrows: int) -> int:
    """Advice columns ezkl lays the circuit out in: its assignments folded into 2**logrows rows, at least
    `num_inner_cols` wide."""
    inner = int(raw.get("run_args", {}).get("num_inner_cols", 2))
    rows = max(1, (1 << logrows) - 64)
    blocks = -(-int(raw.get("total_assignments", 0)) // (inner * rows)) or 1
    return inner * blocks


def estimate(settings) -> MemoryEstimate:
    """Predicted proving-key size and peak memory of a compiled circuit, from its settings alone."""
    raw = settings.raw
    k = settings.logrows
    tables = len(raw.get("required_lookups") or []) + len(raw.get("required_range_checks") or [])
    dynamic = int(raw.get("num_dynamic_lookups") or 0) + int(raw.get("num_shuffles") or 0)
    hashed = any(str(v).startswith("hashed") for v in (settings.visibility or {}).values())
    polys = (BASE_POLYS + POLYS_PER_TABLE * tables + POLYS_PER_DYNAMIC * dynamic
             + POLYS_PER_ADVICE_COLUMN * advice_columns(raw, k) + POLYS_FOR_POSEIDON * hashed)
    pk = FIELD_BYTES * (1 << k) * polys
    return MemoryEstimate(logrows=k, pk_bytes=pk, peak_bytes=int(PEAK_OVER_PK * pk) + PROCESS_BYTES)


def memory_limit() -> int | None:
    """$ZKINFER_MEMORY_LIMIT in bytes, or None when unset."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not text:
        return None
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    mult = units.get(text[-1].upper(), 1)
    number = text[:-1] if text[-1].upper() in units else text
    try:
        value = float(number) * mult
    except ValueError:
        raise UsageError(f"{MEMORY_LIMIT_ENV}={text!r}: expected bytes or a number with K, M, G or T") from None
    return int(value)


def available_bytes() -> int:
    """Memory this process can still use: MemAvailable, capped by a cgroup limit and $ZKINFER_MEMORY_LIMIT."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = open(limit_file).read().strip()
            usage = int(open(usage_file).read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            avail = min(avail, int(limit) - usage)
    cap = memory_limit()
    if cap is not None:
        avail = min(avail, cap)
    return max(avail, 0)


def shortfall(need: MemoryEstimate, available: int | None = None) -> str | None:
    """Why this machine cannot afford `need` (one line), or None when it can."""
    have = available_bytes() if available is None else available
    if need.peak_bytes <= HEADROOM * have:
        return None
    return (f"it would need ~{_gb(need.peak_bytes)} of memory (proving key ~{_gb(need.pk_bytes)} at logrows "
            f"{need.logrows}) and this machine has {_gb(have)} available; build on a larger machine, or cap the "
            "circuit with --max-logrows")


def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextmanager
def watchdog(what: str, poll_s: float = 0.5):
    """The estimate's safety net: while `what` runs, if this process grows to within a few percent of the
    memory it had room for, stop it with a one-line message (exit code 1) before the kernel's OOM killer
    ends it with none. A build stopped so leaves only its staging folder, which the next build removes."""
    budget = _rss_bytes() + available_bytes()
    limit = int(budget * 0.97)
    done = threading.Event()

    def watch():
        while not done.wait(poll_s):
            rss = _rss_bytes()
            if rss > limit:
                sys.stderr.write(f"error: stopped while {what}: memory use reached {_gb(rss)} of the {_gb(budget)} "
                                 "this machine had available; build on a larger machine, or cap the circuit with "
                                 "--max-logrows\n")
                sys.stderr.flush()
                os._exit(1)

    thread = threading.Thread(target=watch, name="zkinfer-memory-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
