"""The audit's report: one `Check` per line, its severities, the verdict (exit code) and its text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Check:
    """One line of an audit: `ok` or not; a failed check of severity "error" fails the audit."""

    name: str
    ok: bool
    detail: str
    severity: str = ERROR

    def line(self) -> str:
        tag = "PASS" if self.ok else {ERROR: "FAIL", WARNING: "WARN", INFO: "INFO"}[self.severity]
        return f"{tag}  {self.name}: {self.detail}"


@dataclass
class AuditReport:
    artifacts_dir: Path
    chain_id: int
    registry: str
    model_id: int
    circuit: str
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str, severity: str = ERROR) -> bool:
        self.checks.append(Check(name, bool(ok), detail, severity))
        return bool(ok)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.severity == ERROR]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def text(self) -> str:
        head = (f"audit of model {self.model_id} ({self.circuit}) on chain {self.chain_id}, registry "
                f"{self.registry}, from {self.artifacts_dir}")
        warnings = sum(not c.ok and c.severity == WARNING for c in self.checks)
        tail = (f"result: PASS ({len(self.checks)} checks, {warnings} warning(s))" if self.passed else
                f"result: FAIL ({len(self.failures)} of {len(self.checks)} checks failed: "
                f"{', '.join(c.name for c in self.failures)})")
        return "\n".join([head, *(c.line() for c in self.checks), tail])
