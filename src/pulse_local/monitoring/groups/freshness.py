"""Freshness: the newest row of each declared table against its SLA."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pulse_local.monitoring.config import (
    FailSeverity,
    FreshnessSpec,
    MonitorConfig,
)
from pulse_local.monitoring.groups.common import (
    as_utc,
    could_not,
    limit_text,
    single_value,
    thresholds_text,
)
from pulse_local.monitoring.probes import Probes
from pulse_local.monitoring.report import CheckResult, format_age, format_time


def evaluate_freshness(spec: FreshnessSpec, newest: Any, now: datetime) -> CheckResult:
    """The newest row's age against the table's warn/error thresholds."""
    name = f"freshness:{spec.table}"
    where = spec.where_to_look or f"table {spec.table}"
    worst: FailSeverity = "error" if spec.error_after else "warning"
    newest_at = as_utc(newest)
    if newest_at is None:
        return CheckResult(name, False, worst, f"{spec.table} has no rows (nothing landed or "
                           f"built yet); SLA {thresholds_text(spec.warn_after, spec.error_after)}",
                           None, where, "freshness")
    age = now - newest_at
    measured = (f"newest row {format_age(age)} old (max({spec.timestamp}) = "
                f"{format_time(newest_at)})")
    if spec.error_after and age > spec.error_after:
        return CheckResult(name, False, "error", f"{measured}, SLA error after "
                           f"{limit_text(spec.error_after)}", newest_at + spec.error_after,
                           where, "freshness")
    if spec.warn_after and age > spec.warn_after:
        return CheckResult(name, False, "warning", f"{measured}, SLA warn after "
                           f"{limit_text(spec.warn_after)}", newest_at + spec.warn_after,
                           where, "freshness")
    return CheckResult(name, True, "info",
                       f"{measured}; {thresholds_text(spec.warn_after, spec.error_after)}",
                       None, where, "freshness")


def freshness_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    """One check per declared table: ``select max(<timestamp>) from <table>``."""
    results = []
    for spec in config.freshness:
        try:
            newest = single_value(probes.warehouse(
                f"select max({spec.timestamp}) from {probes.raw_relation(spec.table)}"))
        except Exception as exc:  # noqa: BLE001 - the cause becomes the failed check's detail
            results.append(could_not(f"freshness:{spec.table}", "freshness", exc,
                                     spec.where_to_look or f"table {spec.table}"))
            continue
        results.append(evaluate_freshness(spec, newest, probes.now()))
    return results
