"""Monitoring of the pipeline: declared SLAs checked against the running pipeline, and alerts.

    from pulse_local.monitoring import run_checks, alerts_for, send_alerts, sinks_for

    report = run_checks(settings)               # -> MonitorReport (never raises for a failure)
    print(report.summary())                     # one line per check
    send_alerts(alerts_for(report), sinks_for(settings))
    if not report.ok: ...                       # a check of severity "error" failed

Checks (groups, as declared in ``monitoring.yaml`` at the repository root):

* ``freshness``: newest row of raw and modelled tables vs warn/error ages;
* ``completeness``: source row counts (PostgreSQL, owner role) vs the raw layer merged to its
  latest state, and vs warehouse facts;
* ``cdc``: `pulse_local.cdc.lag` (WAL bytes and seconds behind) vs thresholds;
* ``streaming``: the consumer's status file, source-to-raw-sink lag, dead-letter backlog
  (peeked, never acked);
* ``dbt``: failed / errored tests and models of dbt's last ``run_results.json``.

The same code runs on both profiles: warehouse queries are BigQuery SQL (translated for DuckDB
locally), and the backends come from `pulse_local.backends.for_profile`. Command line:
``python -m pulse_local.monitoring [--group G] [--no-alerts] [--json]``. See docs/monitoring.md.
"""

from __future__ import annotations

from pulse_local.monitoring.alerts import (
    Alert,
    AlertDeliveryError,
    AlertOptions,
    AlertOutcome,
    AlertSink,
    FileSink,
    LogSink,
    WebhookSink,
    alerts_for,
    alerts_path,
    notify_success,
    send_alerts,
    sinks_for,
)
from pulse_local.monitoring.checks import GROUPS, run_checks, run_group
from pulse_local.monitoring.config import (
    MONITORING_FILE,
    MonitorConfig,
    MonitorConfigError,
    MonitorOptions,
    load_config,
)
from pulse_local.monitoring.probes import Probes, probes_for
from pulse_local.monitoring.report import CheckResult, ChecksFailed, MonitorReport, Severity
from pulse_local.monitoring.warehouse import (
    WarehouseLocked,
    WarehouseMissing,
    query_bigquery_sql,
)

__all__ = [
    "GROUPS", "MONITORING_FILE", "Alert", "AlertDeliveryError", "AlertOptions", "AlertOutcome",
    "AlertSink", "CheckResult", "ChecksFailed", "FileSink", "LogSink", "MonitorConfig", "MonitorConfigError",
    "MonitorOptions", "MonitorReport", "Probes", "Severity", "WarehouseLocked",
    "WarehouseMissing", "WebhookSink", "alerts_for", "alerts_path", "load_config", "notify_success", "probes_for",
    "query_bigquery_sql", "run_checks", "run_group", "send_alerts", "sinks_for",
]
