"""dbt-bigquery's partition_by / insert_overwrite / _dbt_max_partition on a real in-memory DuckDB.

The expected rows follow the SQL dbt-bigquery runs: a MERGE that deletes the target rows whose
partition value (``render_wrapped``) is among the new rows' (NULLs ignored) or the configured
`partitions`, then inserts every new row.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from pulse_local.translate import session
from pulse_local.translate.partitioning import (
    BigQueryConfigError,
    PartitionBy,
    insert_overwrite_sql,
    substitute_max_partition,
)


def overwrite(rows_before: str, new_rows: str, columns: str, **config: Any) -> list[tuple]:
    con = duckdb.connect()
    session.configure(con)
    con.execute(f"CREATE TABLE target AS {rows_before}")
    con.execute(f"CREATE TABLE tmp AS {new_rows}")
    args = {"target_relation": "target", "temp_relation": "tmp",
            "dest_columns": [SimpleNamespace(name=c) for c in columns.split(",")]}
    con.execute(insert_overwrite_sql(config, "m", args))
    return con.execute("SELECT * FROM target ORDER BY ALL").fetchall()


def test_year_granularity_replaces_whole_years() -> None:
    rows = overwrite(
        "SELECT * FROM (VALUES (DATE '2023-03-01', 1), (DATE '2024-01-01', 2), (DATE '2024-12-31', 3)) t(d, v)",
        "SELECT DATE '2024-06-01' AS d, 9 AS v", "d,v",
        partition_by={"field": "d", "data_type": "date", "granularity": "YEAR"})
    assert [r[1] for r in rows] == [1, 9]


def test_int64_range_buckets_and_null_partition_kept() -> None:
    rows = overwrite(
        "SELECT * FROM (VALUES (5, 'a'), (12, 'b'), (19, 'c'), (NULL, 'null')) t(k, v)",
        "SELECT * FROM (VALUES (15, 'new'), (NULL, 'null2')) t(k, v)", "k,v",
        partition_by={"field": "k", "data_type": "int64", "range": {"start": 0, "end": 100, "interval": 10}})
    assert sorted(r[1] for r in rows) == ["a", "new", "null", "null2"]


def test_static_partitions_are_bigquery_expressions() -> None:
    rows = overwrite(
        "SELECT * FROM (VALUES (TIMESTAMP '2024-01-01 10:30', 'keep'), (TIMESTAMP '2024-01-02 10:10', 'old')) t(h, v)",
        "SELECT TIMESTAMP '2024-01-02 10:45' AS h, 'new' AS v", "h,v",
        partition_by={"field": "h", "data_type": "timestamp", "granularity": "hour"},
        partitions=["timestamp_add(timestamp '2024-01-02 00:00:00+00', interval 10 hour)"])
    assert [r[1] for r in rows] == ["keep", "new"]


def test_empty_new_rows_replace_nothing() -> None:
    rows = overwrite("SELECT DATE '2024-01-01' AS d, 1 AS v", "SELECT DATE '2024-01-01' AS d, 1 AS v LIMIT 0",
                     "d,v", partition_by={"field": "d", "data_type": "date"})
    assert rows == [(dt.date(2024, 1, 1), 1)]


@pytest.mark.parametrize(("raw", "message"), [
    ({"field": "d", "data_type": "date", "time_ingestion_partitioning": True}, "_PARTITIONTIME"),
    ({"field": "d", "data_type": "date", "granularity": "hour"}, "cannot be partitioned by hour"),
    ({"field": "d", "data_type": "date", "granularity": "week"}, "granularity"),
    ({"field": "k", "data_type": "int64"}, "range"),
    ({"data_type": "date"}, "expected a dictionary"),
    ({"field": "d", "data_type": "string"}, "data_type"),
])
def test_invalid_partition_by_is_named(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(BigQueryConfigError, match=message):
        PartitionBy.parse(raw, "m")


def test_insert_overwrite_needs_partition_by() -> None:
    with pytest.raises(BigQueryConfigError, match="requires the `partition_by` config"):
        insert_overwrite_sql({}, "m", {"target_relation": "t", "temp_relation": "x", "dest_columns": []})


def test_max_partition_replaces_identifiers_only() -> None:
    sql = "select '_dbt_max_partition' as s from t where d >= _dbt_max_partition -- _dbt_max_partition"
    assert substitute_max_partition(sql, "(X)") == (
        "select '_dbt_max_partition' as s from t where d >= (X) -- _dbt_max_partition")
