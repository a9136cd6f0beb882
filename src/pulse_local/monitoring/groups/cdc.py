"""CDC lag: how far the landed raw layer is behind the source (local capture or Datastream)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pulse_local.monitoring.config import (
    CdcSpec,
    FailSeverity,
    MonitorConfig,
)
from pulse_local.monitoring.groups.common import (
    could_not,
    limit_text,
)
from pulse_local.monitoring.probes import Probes
from pulse_local.monitoring.report import CheckResult, format_age, format_time


def evaluate_cdc_lag(spec: CdcSpec, lag: Any, now: datetime) -> CheckResult:
    """`pulse_local.cdc.Lag` against the byte and second thresholds."""
    name = "cdc:lag"
    where = spec.where_to_look or "`pulse-local logs cdc`; `python -m pulse_local.cdc lag`"
    if lag.confirmed_flush_lsn is None:
        return CheckResult(name, False, "error", lag.summary(), None, where, "cdc")
    secs, behind = lag.seconds_behind, lag.bytes_behind
    state = "active" if lag.slot_active else "idle (no CDC process attached)"
    measured = (f"slot {lag.slot} {state}: {behind} WAL bytes and "
                f"{'n/a' if secs is None else format_age(secs)} behind")
    if secs is None:
        return CheckResult(name, False, "error", f"{measured}: the CDC has landed nothing yet",
                           None, where, "cdc")
    complete_at = now - timedelta(seconds=secs)
    problems: list[tuple[FailSeverity, str]] = []
    limit_s: list[tuple[FailSeverity, timedelta | None]] = [
        ("error", spec.error_seconds_behind), ("warning", spec.warn_seconds_behind)]
    for level, limit in limit_s:
        if limit is not None and secs > limit.total_seconds():
            problems.append((level, f"> {limit_text(limit)}"))
            break
    limit_b: list[tuple[FailSeverity, int | None]] = [
        ("error", spec.error_bytes_behind), ("warning", spec.warn_bytes_behind)]
    for level, limit_bytes in limit_b:
        if limit_bytes is not None and behind is not None and behind > limit_bytes:
            problems.append((level, f"> {limit_bytes} bytes"))
            break
    if not problems:
        return CheckResult(name, True, "info", measured, None, where, "cdc")
    severity: FailSeverity = "error" if any(s == "error" for s, _ in problems) else "warning"
    return CheckResult(name, False, severity,
                       f"{measured} ({', '.join(p for _, p in problems)}); raw layer complete "
                       f"up to {format_time(complete_at)}", complete_at, where, "cdc")


def cdc_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    spec = config.cdc
    if spec is None:
        return []
    try:
        lag = probes.cdc_lag()
    except Exception as exc:  # noqa: BLE001
        return [could_not("cdc:lag", "cdc", exc,
                          spec.where_to_look or "`pulse-local logs cdc`")]
    if hasattr(lag, "states"):  # Datastream (gcp): stream states and slot bytes
        return [evaluate_datastream_lag(spec, lag)]
    return [evaluate_cdc_lag(spec, lag, probes.now())]


def evaluate_datastream_lag(spec: CdcSpec, lag: Any) -> CheckResult:
    """`cdc.provision.DatastreamLag`: every stream RUNNING, every slot present and within
    the byte thresholds. (Seconds behind need Datastream's own metrics: not measured here.)"""
    name = "cdc:lag"
    where = spec.where_to_look or ("`gcloud datastream streams describe <id>`; "
                                   "`python -m pulse_local.cdc lag`")
    measured = lag.summary()
    if any(state != "RUNNING" for state in lag.states.values()):
        return CheckResult(name, False, "error", f"{measured}: a stream is not running", None,
                           where, "cdc")
    if any(b is None for b in lag.bytes_behind.values()):
        return CheckResult(name, False, "error", f"{measured}: a replication slot is missing "
                           "or Datastream never confirmed a position on it", None, where, "cdc")
    worst = max((b for b in lag.bytes_behind.values() if b is not None), default=0)
    for severity, limit in (("error", spec.error_bytes_behind),
                            ("warning", spec.warn_bytes_behind)):
        if limit is not None and worst > limit:
            return CheckResult(name, False, severity,  # type: ignore[arg-type]
                               f"{measured} (> {limit} bytes)", None, where, "cdc")
    return CheckResult(name, True, "info", measured, None, where, "cdc")
