"""dbt: the newest build/test's run_results.json (failures, warnings, age)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulse_local.monitoring.config import (
    DbtSpec,
    MonitorConfig,
)
from pulse_local.monitoring.groups.common import (
    as_utc,
    could_not,
)
from pulse_local.monitoring.probes import Probes
from pulse_local.monitoring.report import CheckResult, format_time

_FAILED = {"fail": "error", "error": "error", "runtime error": "error", "warn": "warning"}


def _node_name(unique_id: str) -> str:
    parts = unique_id.split(".")
    if parts[0] == "test" and len(parts) >= 3:
        return parts[2]
    return parts[-1]


def evaluate_run_results(spec: DbtSpec, data: dict[str, Any] | None,
                         path: Path | None) -> list[CheckResult]:
    """Failed / errored / warning nodes of dbt's ``run_results.json`` (one check each), or one
    passing summary check ``dbt:run_results``."""
    where = spec.where_to_look or (f"{path}; dbt's log (<state_dir>/dbt/logs/dbt.log)" if path
                                   else "the dbt_build / etl_pipeline flow runs")
    if data is None:
        if spec.missing is None:
            return []
        found = f"at {path}" if path else "for this state directory"
        return [CheckResult("dbt:run_results", False, spec.missing,
                            f"no dbt results {found}: dbt has not run here (build with the "
                            "etl_pipeline or dbt_build flow, or `run_dbt(settings, ['build'])`)",
                            None, where, "dbt")]
    metadata = data.get("metadata") or {}
    generated = as_utc(metadata.get("generated_at"))
    command = str((data.get("args") or {}).get("which", "?"))
    nodes = data.get("results") or []
    results: list[CheckResult] = []
    by_status: dict[str, int] = {}
    for node in nodes:
        status = str(node.get("status", "?"))
        by_status[status] = by_status.get(status, 0) + 1
        severity = _FAILED.get(status)
        if severity is None:
            continue
        uid = str(node.get("unique_id", "?"))
        kind, node_name = uid.split(".")[0], _node_name(uid)
        failures = node.get("failures")
        message = " ".join(str(node.get("message") or "").split())[:300]
        rows = f"{failures} failing rows; " if failures else ""
        results.append(CheckResult(
            f"dbt:{node_name}", False, severity,  # type: ignore[arg-type]
            f"{kind} {node_name} {status} in dbt {command}: {rows}{message}".rstrip("; "),
            generated, f"`dbt build --select {node_name}` in dbt/; {where}", "dbt"))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "no nodes"
    when = format_time(generated) if generated else "unknown time"
    summary = f"dbt {command} at {when}: {counts}"
    if command not in ("build", "test"):
        results.insert(0, CheckResult(
            "dbt:run_results", False, "warning",
            f"{summary}: the last dbt invocation was not a build or test, so no test results "
            "are available", generated, where, "dbt"))
    elif not results:  # with failures, the failing nodes are the checks
        results.append(CheckResult("dbt:run_results", True, "info", summary, None, where, "dbt"))
    return results


def dbt_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    spec = config.dbt
    if spec is None:
        return []
    try:
        path = spec.explicit_path() or probes.dbt_run_results()
    except Exception as exc:  # noqa: BLE001
        return [could_not("dbt:run_results", "dbt", exc, spec.where_to_look)]
    if path is None:
        return evaluate_run_results(spec, None, None)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = None
    except (OSError, ValueError) as exc:
        return [could_not("dbt:run_results", "dbt", exc, str(path))]
    return evaluate_run_results(spec, data, path)
