"""The result model: one `CheckResult` per check, gathered in a `MonitorReport`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pulse_local.errors import PulseError

#: ``error`` fails the monitor_pipeline flow; ``warning`` alerts but does not fail it;
#: ``info`` is the severity of a passing check.
Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    `detail` is one line: what was measured against which threshold, or why the check could not
    run. `since` is when the problem started when that is knowable (a freshness SLA breached at
    newest row + threshold, the oldest dead letter, the last moment the CDC was complete), else
    None. `where_to_look` names the command, table, subscription or dbt test to look at.
    """

    name: str
    ok: bool
    severity: Severity
    detail: str
    since: datetime | None = None
    where_to_look: str = ""
    group: str = ""

    def line(self) -> str:
        """One line: status, name, detail (and since, for a failure)."""
        status = "ok" if self.ok else self.severity.upper()
        since = f" (since {format_time(self.since)})" if self.since and not self.ok else ""
        return f"{status:<7} {self.name}: {self.detail}{since}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        return data


class ChecksFailed(PulseError):
    """Checks of severity error failed; the message has one line per failed check."""

    def __init__(self, failed: list[CheckResult]) -> None:
        self.failed = failed
        lines = [f"{len(failed)} monitoring check(s) failed:"]
        lines += [f"  - {c.name}: {c.detail}" + (f" (look at: {c.where_to_look})"
                                                  if c.where_to_look else "") for c in failed]
        super().__init__("\n".join(lines))


@dataclass
class MonitorReport:
    """Every check of one monitoring run.

    ``ok`` is true when no check of severity ``error`` failed (warnings alert but leave the
    pipeline healthy); ``failures`` lists every failed check, warnings included.
    """

    checks: list[CheckResult] = field(default_factory=list)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]

    @property
    def errors(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok and c.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok and c.severity == "warning"]

    def check(self, name: str) -> CheckResult:
        """The result called `name` (KeyError naming the checks that ran otherwise)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def extend(self, results: Iterable[CheckResult]) -> None:
        self.checks.extend(results)

    def raise_for_errors(self) -> None:
        """Raise `ChecksFailed` naming every failed check of severity error (if any)."""
        if self.errors:
            raise ChecksFailed(self.errors)

    def totals(self) -> str:
        """``19 checks: 18 ok, 1 warnings, 0 errors``."""
        return (f"{len(self.checks)} checks: {len(self.checks) - len(self.failures)} ok, "
                f"{len(self.warnings)} warnings, {len(self.errors)} errors")

    def summary(self) -> str:
        """One line per check, then a total line."""
        return "\n".join([*(c.line() for c in self.checks), self.totals()])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what the monitor_pipeline flow returns)."""
        return {
            "ok": self.ok,
            "checked_at": self.checked_at.isoformat(),
            "checks": len(self.checks),
            "errors": [c.line() for c in self.errors],
            "warnings": [c.line() for c in self.warnings],
            "results": [c.as_dict() for c in self.checks],
        }

    def rich_table(self) -> Any:
        """A rich Table of the checks (for a terminal)."""
        from rich.table import Table

        table = Table("check", "result", "detail", "since", "where to look",
                      title="pulse-local monitoring")
        colour = {"info": "green", "warning": "yellow", "error": "red"}
        for c in self.checks:
            status = "ok" if c.ok else c.severity
            table.add_row(c.name, f"[{colour[c.severity if not c.ok else 'info']}]{status}[/]",
                          c.detail, format_time(c.since) if c.since and not c.ok else "",
                          "" if c.ok else c.where_to_look)
        return table


def format_time(value: datetime) -> str:
    """``2024-09-05 10:00:00Z`` (UTC, seconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_age(value: timedelta | float) -> str:
    """A short human duration: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{sign}{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{sign}{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"
