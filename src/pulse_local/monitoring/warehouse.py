"""Run the monitor's BigQuery SQL on the profile's warehouse (`backends.for_profile(...).warehouse`).

The monitoring queries are written once, in BigQuery Standard SQL, and run through the
warehouse's ``query_bigquery_sql``: BigQuery takes them unchanged; the DuckDB stand-in runs them
through `duckdb_query_bigquery_sql` below (translation through
`pulse_local.translate.bigquery_to_duckdb`, UTC session, read-only connection).

DuckDB allows one writing process per file and dbt writes the warehouse file: the monitor opens
it read-only, waits a little while another process holds it (`WarehouseLocked` after that,
naming the holder and the fix), and shares the connection of its own process when dbt ran
in-process (dbt-duckdb keeps its database instance open, and DuckDB refuses a second
configuration of the same file in one process).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pulse_local.capabilities import Warehouse
from pulse_local.errors import PulseError
from pulse_local.warehouse.dbt import WarehouseLocked

QueryFn = Callable[[str], list[tuple[Any, ...]]]

__all__ = ["QueryFn", "WarehouseLocked", "WarehouseMissing", "duckdb_query_bigquery_sql",
           "query_bigquery_sql", "warehouse_query"]


class WarehouseMissing(PulseError):
    """The local warehouse file does not exist yet."""


def query_bigquery_sql(warehouse: Warehouse, sql: str, *, lock_wait_seconds: float = 10.0) -> list[tuple[Any, ...]]:
    """Run BigQuery Standard SQL `sql` on `warehouse` and return the rows."""
    return list(warehouse.query_bigquery_sql(sql, lock_wait_seconds=lock_wait_seconds))


def warehouse_query(warehouse: Warehouse, *, lock_wait_seconds: float = 10.0) -> QueryFn:
    """A query function over `warehouse` (the profile's, from
    ``backends.for_profile(settings).warehouse``)."""
    return lambda sql: query_bigquery_sql(warehouse, sql, lock_wait_seconds=lock_wait_seconds)


_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def duckdb_query_bigquery_sql(path: Path, sql: str, *,
                                      lock_wait_seconds: float = 10.0) -> list[tuple[Any, ...]]:
    """BigQuery SQL on the DuckDB file `path`: translated, session in UTC, opened read-only.

    What ``DuckDBWarehouse.query_bigquery_sql`` does. Raises
    `WarehouseMissing` when the file does not exist, `WarehouseLocked` when another process
    keeps it locked for longer than `lock_wait_seconds` (retried with backoff until then).
    """
    import duckdb

    from pulse_local.translate import bigquery_to_duckdb, session

    translated = bigquery_to_duckdb(sql)
    if not Path(path).exists():
        raise WarehouseMissing(
            f"the local warehouse {path} does not exist yet: build it with dbt "
            "(`pulse_local.warehouse.run_dbt(settings, ['build'])`, or the etl_pipeline flow)")
    deadline = time.monotonic() + lock_wait_seconds
    delay = 0.1
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.ConnectionException as exc:
            if "different configuration" not in str(exc):
                raise
            # This process already has the file open read-write (dbt ran in-process):
            # DuckDB shares that instance with a connection of the same configuration.
            conn = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() + delay > deadline:
                match = _HOLDER.search(str(exc))
                holder = (f"process {match['pid']} ({match['program']})" if match
                          else "another process")
                raise WarehouseLocked(
                    f"the local warehouse {path} is locked by {holder} for more than "
                    f"{lock_wait_seconds:.0f} s (DuckDB allows one writer per file; dbt builds "
                    "write it): run the monitor after the build finishes (the etl_pipeline flow "
                    "does), or raise PULSE_MONITOR_LOCK_WAIT_SECONDS") from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        session.configure(conn)  # UTC and the helper functions translated SQL may call
        return conn.execute(translated).fetchall()
    finally:
        conn.close()
