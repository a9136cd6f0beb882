"""The warehouse: the Pulse dbt project (`dbt/`) run for a profile, and the raw layer's shape.

* `run_dbt(settings, args)` runs dbt in-process for ``settings.profile`` (target ``local``
  = DuckDB through the BigQuery->DuckDB translation plugin, ``gcp`` = BigQuery).
* `check_gcp_offline(settings)` parses and compiles the project for BigQuery without any
  network access and checks that every compiled statement is valid BigQuery SQL.
* `pulse_local.warehouse.raw` describes the raw layer (Datastream's BigQuery shape).
"""

from __future__ import annotations

from pulse_local.warehouse.dbt import (
    DBT_PROJECT_DIR,
    BigQuerySqlError,
    DbtError,
    DbtNodeResult,
    DbtResult,
    check_gcp_offline,
    compile_gcp_offline,
    dbt_env,
    run_dbt,
)

__all__ = [
    "DBT_PROJECT_DIR",
    "BigQuerySqlError",
    "DbtError",
    "DbtNodeResult",
    "DbtResult",
    "check_gcp_offline",
    "compile_gcp_offline",
    "dbt_env",
    "run_dbt",
]
