"""Configure a DuckDB session to run translated BigQuery SQL (the one place that does it).

Used by the dbt plugin (connection and every cursor) and by the golden runner, so a
translated statement meets the same session everywhere: UTC (BigQuery's default time
zone) and the helper functions of `pulse_local.translate.functions`.
"""

from __future__ import annotations

from typing import Any

from pulse_local.translate import functions


def configure(con: Any, *, global_scope: bool = False) -> None:
    """Set UTC and register the BigQuery helper functions on the DuckDB connection `con`."""
    scope = "GLOBAL " if global_scope else ""
    con.execute(f"SET {scope}TimeZone = 'UTC'")
    functions.register(con)
