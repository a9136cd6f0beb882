"""`etl_pipeline` (daily): source checks -> CDC drain -> dbt build -> validation -> notification.

Thin: every step is a function of `pulse_local.etl` (or the `dbt_build` flow); this module only
says how Prefect runs them (tasks, retries, order)."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, task

from pulse_local.config import load_settings


@task(name="source-checks", retries=2, retry_delay_seconds=[2, 10])
def source_checks() -> dict[str, int]:
    """Migrations applied, publication present, row counts (a restarting database can recover:
    retried with backoff)."""
    from pulse_local.etl import check_source

    return check_source(load_settings())


@task(name="cdc-drain", retries=2, retry_delay_seconds=[5, 20])
def cdc_drain() -> dict[str, object]:
    """Land every committed change in the raw layer. Retried: a drain resumes from its last
    confirmed position, so a retry after a dropped connection loses and repeats nothing."""
    from pulse_local.etl import drain_changes

    return drain_changes(load_settings())


@task(name="validate-warehouse")
def validate() -> dict[str, Any]:
    """Source vs staging vs facts. Not retried: a mismatch does not fix itself."""
    from dataclasses import asdict

    from pulse_local.etl import validate_warehouse

    counts = validate_warehouse(load_settings())
    print(counts.summary())
    return asdict(counts)


@task(name="notify")
def notify(summary: dict[str, Any]) -> None:
    """Say the run succeeded, through the configured alert sinks (log, file, webhook)."""
    from pulse_local.monitoring.alerts import notify_success

    notify_success(load_settings(), "etl_pipeline", summary)


@flow(name="etl_pipeline", log_prints=True)
def etl_pipeline() -> dict[str, Any]:
    """Run the batch path once; each step's time and result go into the returned summary."""
    from flows.dbt_build import dbt_build

    steps: list[dict[str, Any]] = []

    def step(name: str, call: Any) -> Any:
        began = time.perf_counter()
        result = call()
        steps.append({"name": name, "seconds": round(time.perf_counter() - began, 2),
                      "result": result})
        return result

    source = step("source_checks", source_checks)
    step("cdc_drain", cdc_drain)
    dbt = step("dbt_build", dbt_build)
    counts = step("validate", validate)
    summary = {"steps": steps, "source": source, "dbt": dbt, "counts": counts}
    step("notify", lambda: notify(summary))
    return summary
