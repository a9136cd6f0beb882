"""The warehouse: the Pulse dbt project (`dbt/`) run for a profile, and the raw layer's shape.

* `run_dbt(settings, args)` runs dbt in-process for ``settings.profile`` (target ``local``
  = DuckDB through the BigQuery->DuckDB translation plugin, ``gcp`` = BigQuery).
* `check_gcp_offline(settings)` parses and compiles the project for BigQuery without any
  network access and checks that every compiled statement is valid BigQuery SQL.
* `pulse_local.warehouse.check`: per node, does it translate to DuckDB and bind against the
  sources (an empty build in a scratch file, `pulse_local.warehouse.bind`) / parse as
  BigQuery (`pulse-local dbt check`).
* `pulse_local.warehouse.docs`: dbt's documentation site, generated and served
  (`pulse-local dbt docs`).
* `keep_run(settings, result)` keeps a run's ``run_results.json`` under
  ``<state_dir>/dbt/runs/<UTC start>-<command>/``.
* `pulse_local.warehouse.raw` describes the raw layer (Datastream's BigQuery shape).
"""

from __future__ import annotations

from pulse_local.warehouse.dbt import (
    DBT_PROJECT_DIR,
    BigQuerySqlError,
    DbtError,
    DbtNodeResult,
    DbtResult,
    WarehouseLocked,
    check_gcp_offline,
    compile_for_bigquery,
    compile_gcp_offline,
    dbt_env,
    dbt_work_dir,
    run_dbt,
)
from pulse_local.warehouse.runs import keep_run, latest_run, runs_dir, summarize

__all__ = [
    "DBT_PROJECT_DIR",
    "BigQuerySqlError",
    "DbtError",
    "DbtNodeResult",
    "DbtResult",
    "WarehouseLocked",
    "check_gcp_offline",
    "compile_for_bigquery",
    "compile_gcp_offline",
    "dbt_env",
    "dbt_work_dir",
    "keep_run",
    "latest_run",
    "run_dbt",
    "runs_dir",
    "summarize",
]
