"""`bench/reliability.json`: one entry per check, merged by name so several writers share the file.

    {"tests": [{"name": "proof_mutation_offchain", "cases": 212, "failures": 0, "notes": "..."}, ...]}

`failures` counts what must be zero (accepted mutants, tracebacks, hangs, lost or duplicated proofs,
undetected tampering). Writers (this package, the Solidity invariant suite) call `merge`: an entry replaces
the one of the same name and every other entry is kept, so each check can be rerun alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..artifacts import write_json_atomic

DEFAULT_PATH = Path("bench/reliability.json")
NAMES = ("proof_mutation_offchain", "proof_mutation_onchain", "malformed_inputs", "crash_resume",
         "ray_node_loss", "artifact_tampering", "solidity_invariants")


@dataclass
class CheckResult:
    name: str
    cases: int = 0
    failures: int = 0
    notes: str = ""
    details: dict = field(default_factory=dict)  # per-kind counts, retried jobs, examples of failures
    seconds: float = 0.0

    def count(self, kind: str) -> int:
        """How many cases of `kind` were tried."""
        return self.details.get("by_kind", {}).get(kind, {}).get("cases", 0)

    def case(self, ok: bool, kind: str = "cases", example: str | None = None) -> None:
        """Count one case (of `kind`) and whether it held; keep the first few failures' descriptions."""
        self.cases += 1
        d = self.details.setdefault("by_kind", {}).setdefault(kind, {"cases": 0, "failures": 0})
        d["cases"] += 1
        if not ok:
            self.failures += 1
            d["failures"] += 1
            if example:
                ex = self.details.setdefault("failure_examples", [])
                if len(ex) < 10:
                    ex.append(example[:300])

    def to_json(self) -> dict:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 1)
        return out


def load(path: str | os.PathLike = DEFAULT_PATH) -> dict:
    p = Path(path)
    if not p.exists():
        return {"tests": []}
    try:
        data = json.loads(p.read_text())
    except (ValueError, OSError):
        return {"tests": []}
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        return {"tests": []}
    return data


def merge(entries: list[dict | CheckResult], path: str | os.PathLike = DEFAULT_PATH, **extra) -> dict:
    """Write `entries` into the report at `path`, replacing same-named entries, keeping the others (in
    NAMES order, unknown names after). `extra` top-level fields (e.g. the run's parameters) are set."""
    data = load(path)
    by_name = {t["name"]: t for t in data["tests"] if isinstance(t, dict) and "name" in t}
    for e in entries:
        e = e.to_json() if isinstance(e, CheckResult) else dict(e)
        by_name[e["name"]] = e
    order = {n: i for i, n in enumerate(NAMES)}
    data["tests"] = sorted(by_name.values(), key=lambda t: (order.get(t["name"], len(order)), t["name"]))
    data.update(extra)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)
    return data


def table(data: dict) -> list[str]:
    """The report as a text table: name, cases, failures, notes."""
    rows = [("test", "cases", "failures", "notes")]
    for t in data.get("tests", []):
        rows.append((t["name"], str(t.get("cases", "")), str(t.get("failures", "")), t.get("notes", "")))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    return [f"{a:<{w0}}  {b:>{w1}}  {c:>{w2}}  {d}" for a, b, c, d in rows]


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.reliability.report ENTRY.json [--out bench/reliability.json]`: merge one entry
    (or a list of entries) written by another tool, e.g. the Solidity suite's `solidity_invariants`."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    out = DEFAULT_PATH
    if "--out" in args:
        i = args.index("--out")
        out = Path(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print("usage: python -m pipeline.reliability.report ENTRY.json [--out FILE]", file=sys.stderr)
        return 2
    try:
        entries = json.loads(Path(args[0]).read_text())
    except (OSError, ValueError) as e:
        print(f"error: cannot read {args[0]}: {e}", file=sys.stderr)
        return 2
    entries = entries if isinstance(entries, list) else [entries]
    if not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries):
        print(f"error: {args[0]}: each entry needs a \"name\"", file=sys.stderr)
        return 2
    for line in table(merge(entries, out)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
