"""The doctor's checklist: one result per check, and its text and JSON renderings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of one check. Only `fail` makes the deployment not ready."""

    passed = "pass"
    failed = "fail"
    skipped = "skip"
    """Not run: an earlier check it depends on failed."""
    not_applicable = "n/a"
    """Does not apply to this deployment (e.g. a persona check when only a replica is set)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check found, and for a failure what to do about it."""

    id: str
    """Stable identifier (JSON)."""
    title: str
    status: Status
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Check:
    """A check's identity; its methods make its result."""

    id: str
    title: str

    def passed(self, detail: str) -> CheckResult:
        """It passed; `detail` says what was found."""
        return CheckResult(self.id, self.title, Status.passed, detail)

    def failed(self, detail: str, fix: str) -> CheckResult:
        """It failed: what is wrong, and how to fix it."""
        return CheckResult(self.id, self.title, Status.failed, detail, fix)

    def skipped(self, detail: str) -> CheckResult:
        """Not run; `detail` says which failure it needs fixed first."""
        return CheckResult(self.id, self.title, Status.skipped, detail)

    def not_applicable(self, detail: str) -> CheckResult:
        """Does not apply here; `detail` says why."""
        return CheckResult(self.id, self.title, Status.not_applicable, detail)


@dataclass(slots=True)
class Report:
    """Every check of one doctor run, in order."""

    headline: str
    """What was checked: environment, database kind, Tavus target."""
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed (skipped ones only follow a failure)."""
        return all(check.status is not Status.failed for check in self.checks)

    def counts(self) -> dict[str, int]:
        """How many checks ended in each status."""
        return {status.value: sum(c.status is status for c in self.checks) for status in Status}

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "ok": self.ok,
            "headline": self.headline,
            "counts": self.counts(),
            "checks": [check.to_json() for check in self.checks],
        }


_LABELS = {
    Status.passed: "PASS",
    Status.failed: "FAIL",
    Status.skipped: "SKIP",
    Status.not_applicable: "N/A",
}


def render_text(report: Report) -> str:
    """The checklist for people: one line per check, a `fix:` line under each failure."""
    width = max((len(check.title) for check in report.checks), default=0)
    lines = [f"facetoface doctor · {report.headline}", ""]
    for check in report.checks:
        lines.append(f"{_LABELS[check.status]:<5} {check.title:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"{'':<5} {'':<{width}}  fix: {check.fix}")
    counts = report.counts()
    lines.append("")
    applicable = len(report.checks) - counts[Status.not_applicable.value]
    not_applicable = counts[Status.not_applicable.value]
    suffix = f" ({not_applicable} not applicable)" if not_applicable else ""
    if report.ok:
        lines.append(f"All {applicable} checks passed{suffix}: ready.")
    else:
        lines.append(
            f"{counts[Status.failed.value]} failed, {counts[Status.passed.value]} passed, "
            f"{counts[Status.skipped.value]} skipped{suffix}: not ready."
        )
    return "\n".join(lines)


def render_json(report: Report) -> str:
    """The report for machines."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False)
