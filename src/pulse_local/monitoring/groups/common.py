"""What every check group uses: a check that could not run, timestamps read as UTC, declared
thresholds written as in monitoring.yaml."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pulse_local.errors import NotAvailableOnProfile
from pulse_local.monitoring.report import CheckResult


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def could_not(name: str, group: str, exc: BaseException, where_to_look: str) -> CheckResult:
    """A check that could not run: failed, severity error, the cause as detail. What does not
    exist on this profile is said so, as a warning: never green, never a false alarm."""
    if isinstance(exc, NotAvailableOnProfile):
        return CheckResult(name, False, "warning", str(exc), None, where_to_look, group)
    return CheckResult(name, False, "error", f"could not check: {_first_line(exc)}", None,
                       where_to_look, group)


def as_utc(value: Any) -> datetime | None:
    """A warehouse/driver timestamp as an aware UTC datetime (naive values are UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return as_utc(datetime.fromisoformat(value))  # Python 3.11 reads a trailing Z
    raise TypeError(f"expected a timestamp, got {type(value).__name__} {value!r}")


def limit_text(value: timedelta) -> str:
    """A declared threshold as written in monitoring.yaml (``90s``, ``15m``, ``1d``)."""
    from pulse_local.resources.models import format_duration

    return format_duration(value)


def thresholds_text(warn: timedelta | None, error: timedelta | None) -> str:
    parts = ([f"warn after {limit_text(warn)}"] if warn else []) + (
        [f"error after {limit_text(error)}"] if error else [])
    return ", ".join(parts)


def single_value(rows: list[tuple[Any, ...]]) -> Any:
    return rows[0][0] if rows and rows[0] else None
