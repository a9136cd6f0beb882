"""The check groups and `run_checks`.

Every group is a function ``(config, probes) -> list[CheckResult]`` in its own module under
`pulse_local.monitoring.groups`; `Probes` (`pulse_local.monitoring.probes`) holds the
capabilities the checks use (a warehouse query function, the source database, the CDC lag, the
dead-letter reader, the consumer's status, a clock); `probes_for(settings)` builds the real ones
and tests pass fakes. The decisions themselves are the pure ``evaluate_*`` functions.

A check that cannot run (service down, relation missing, warehouse locked) is a failed check of
severity ``error`` whose detail is the cause: monitoring that cannot look is not green.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pulse_local.config import Settings
from pulse_local.monitoring.config import MonitorConfig, load_config
from pulse_local.monitoring.groups.cdc import cdc_checks
from pulse_local.monitoring.groups.completeness import completeness_checks
from pulse_local.monitoring.groups.dbt import dbt_checks
from pulse_local.monitoring.groups.freshness import freshness_checks
from pulse_local.monitoring.groups.streaming import streaming_checks
from pulse_local.monitoring.probes import Probes, probes_for
from pulse_local.monitoring.report import CheckResult, MonitorReport

#: Check groups, in the order `run_checks` runs them (one Prefect task each in the flow).
GROUPS = ("freshness", "completeness", "cdc", "streaming", "dbt")


_GROUP_FUNCTIONS: dict[str, Callable[[MonitorConfig, Probes], list[CheckResult]]] = {
    "freshness": freshness_checks,
    "completeness": completeness_checks,
    "cdc": cdc_checks,
    "streaming": streaming_checks,
    "dbt": dbt_checks,
}


def run_group(group: str, settings: Settings, config: MonitorConfig | None = None, *,
              probes: Probes | None = None) -> list[CheckResult]:
    """The checks of one group (``freshness``, ``completeness``, ``cdc``, ``streaming``,
    ``dbt``); what one task of the monitor_pipeline flow runs."""
    try:
        function = _GROUP_FUNCTIONS[group]
    except KeyError:
        raise ValueError(f"unknown check group {group!r}; groups: {', '.join(GROUPS)}") from None
    return function(config or load_config(), probes or probes_for(settings))


def run_checks(settings: Settings, config: MonitorConfig | None = None, *,
               groups: Sequence[str] | None = None, probes: Probes | None = None) -> MonitorReport:
    """Run every check group (or `groups`) and return the report. Never raises for a failing
    check: a failure, including a check that could not run, is a result in the report."""
    config = config or load_config()
    probes = probes or probes_for(settings)
    report = MonitorReport(checked_at=probes.now())
    for group in groups or GROUPS:
        report.extend(run_group(group, settings, config, probes=probes))
    return report
