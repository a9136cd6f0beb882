"""`monitor_pipeline`: the pipeline against its declared service levels (monitoring.yaml):
freshness, completeness, CDC and streaming lag, dead letters, dbt test failures.

Thin: the checks and alerts are `pulse_local.monitoring`; this module only says how Prefect runs
them. Checks are never retried (a retry cannot fix staleness; a check that could not run is a
failed check with its cause). The webhook sink retries its own POST with backoff."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from pulse_local.config import load_settings
from pulse_local.monitoring import CheckResult


@task(name="check", task_run_name="check-{group}")
def check(group: str) -> list[CheckResult]:
    """One check group (a task each, so the Prefect UI shows them separately)."""
    from pulse_local.monitoring import run_group

    return run_group(group, load_settings())


@task(name="send-alerts")
def send(results: list[CheckResult]) -> str:
    """An alert per failed check to the configured sinks (log + file; webhook when
    PULSE_ALERT_WEBHOOK_URL is set). A failing sink is logged with its cause; the others
    still get the alerts."""
    from pulse_local.monitoring import alerts_for, send_alerts, sinks_for

    return send_alerts(alerts_for(results), sinks_for(load_settings())).summary()


@flow(name="monitor_pipeline", log_prints=True)
def monitor_pipeline(groups: list[str] | None = None) -> dict[str, Any]:
    """Run every check group (or `groups`), alert on failures, and fail the run with one line
    per failed check when a check of severity error failed."""
    from pulse_local.monitoring import GROUPS, MonitorReport

    report = MonitorReport()
    for group in groups or GROUPS:
        report.extend(check(group))
    print(report.summary())
    alerts = send(report.checks) if report.failures else "no alerts (every check passed)"
    print(alerts)
    report.raise_for_errors()
    return {
        "ok": report.ok,
        "summary": report.totals(),
        "warnings": [c.line() for c in report.warnings],
        "alerts": alerts,
        "checks": {c.name: "ok" if c.ok else c.severity for c in report.checks},
    }
