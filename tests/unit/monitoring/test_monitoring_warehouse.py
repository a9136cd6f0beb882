"""Unit: the monitor's warehouse helper on real DuckDB files (temporary directory).

The lock holder is a real second process (a Python child holding the file read-write), as dbt
would be. The BigQuery-side warehouse's client is faked: its `query` records the SQL it gets.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pulse_local.backends import DuckDBWarehouse
from pulse_local.monitoring import WarehouseLocked, WarehouseMissing, query_bigquery_sql
from pulse_local.monitoring.warehouse import duckdb_query_bigquery_sql

BQ = ("select countif(is_complete), max(timestamp_millis(ms)) from dw.fact "
      "where date(submitted_at) >= date '2024-09-01'")


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "pulse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema dw")
        conn.execute("create table dw.fact as select * from (values "
                     "(true, 1725530400000, timestamptz '2024-09-05 10:00:00+00'), "
                     "(false, 1725534000000, timestamptz '2024-09-05 11:00:00+00')) "
                     "t(is_complete, ms, submitted_at)")
    return path


def test_bigquery_sql_runs_translated_and_read_only(db: Path) -> None:
    (complete, newest), = query_bigquery_sql(DuckDBWarehouse(db), BQ)
    assert complete == 1
    assert newest.isoformat() == "2024-09-05T11:00:00+00:00"  # UTC session, aware TIMESTAMP
    with pytest.raises(duckdb.Error, match="read-only"):
        duckdb_query_bigquery_sql(db, "create table dw.x (a int64)")


def test_missing_file_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(WarehouseMissing, match="does not exist yet: build it with dbt"):
        duckdb_query_bigquery_sql(tmp_path / "none.duckdb", "select 1")


@pytest.fixture()
def holder(db: Path) -> Iterator[Any]:
    """Start a child process holding `db` read-write for `seconds`."""
    children: list[subprocess.Popen[str]] = []

    def start(seconds: float) -> subprocess.Popen[str]:
        code = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                "print('locked', flush=True); time.sleep(float(sys.argv[2]))")
        child = subprocess.Popen([sys.executable, "-c", code, str(db), str(seconds)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
        child.wait()


def test_locked_file_names_the_holder_and_the_fix(db: Path, holder: Any) -> None:
    child = holder(30)
    started = time.monotonic()
    with pytest.raises(WarehouseLocked) as caught:
        duckdb_query_bigquery_sql(db, "select 1", lock_wait_seconds=0.5)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"process {child.pid}" in message
    assert "run the monitor after the build finishes" in message
    assert "PULSE_MONITOR_LOCK_WAIT_SECONDS" in message


def test_a_lock_released_while_waiting_is_waited_for(db: Path, holder: Any) -> None:
    holder(1.0)
    assert duckdb_query_bigquery_sql(db, "select count(*) from dw.fact",
                                             lock_wait_seconds=20) == [(2,)]


def test_shares_this_process_read_write_instance(db: Path) -> None:
    """After an in-process dbt run the file can still be open read-write in this process;
    DuckDB refuses a read-only second configuration, so the helper shares the instance."""
    conn = duckdb.connect(str(db))
    try:
        assert duckdb_query_bigquery_sql(db, "select countif(is_complete) from dw.fact") == [(1,)]
    finally:
        conn.close()


def test_bigquery_gets_the_bigquery_sql_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake: BigQueryWarehouse.query is replaced by a recorder (no client, no network)."""
    from pulse_local.backends import BigQueryWarehouse

    warehouse, seen = BigQueryWarehouse("p", "EU"), []
    monkeypatch.setattr(warehouse, "query", lambda sql: seen.append(sql) or [(2,)])
    assert query_bigquery_sql(warehouse, BQ) == [(2,)] and seen == [BQ]
