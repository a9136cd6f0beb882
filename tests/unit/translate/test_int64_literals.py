"""Integer literals keep BigQuery's INT64 type on DuckDB where their value flows (real DuckDB)."""

from __future__ import annotations

import re

import duckdb
import pytest

from pulse_local.translate import UntranslatableSQL, bigquery_to_duckdb, session


def _run(sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    session.configure(con)
    return con.execute(bigquery_to_duckdb(sql)).fetchall()


def _types(sql: str) -> list[str]:
    con = duckdb.connect()
    session.configure(con)
    return [str(d[1]) for d in con.execute(bigquery_to_duckdb(sql)).description]


@pytest.mark.parametrize("sql", [
    "SELECT 1 AS a", "SELECT [1, 2] AS a", "SELECT STRUCT(1 AS f) AS a", "SELECT IF(TRUE, 1, 2) AS a",
    "SELECT COALESCE(NULL, 7) AS a", "SELECT x AS a FROM UNNEST([1]) AS x", "SELECT (SELECT 5) AS a",
])
def test_result_columns_of_literals_are_int64(sql: str) -> None:
    types = _types(sql)
    assert "INTEGER" not in " ".join(types), types


def test_a_table_created_from_literals_holds_int64() -> None:
    con = duckdb.connect()
    session.configure(con)
    con.execute(bigquery_to_duckdb("CREATE TABLE t AS SELECT 1 AS n"))
    con.execute(bigquery_to_duckdb("INSERT INTO t VALUES (9000000000)"))
    assert con.execute("SELECT typeof(max(n)), max(n) FROM t").fetchall() == [("BIGINT", 9000000000)]


@pytest.mark.parametrize("sql", [
    "SELECT SUBSTR(s, 1, 2) FROM t WHERE x = 1 AND y IN (1, 2) ORDER BY 1 LIMIT 10 OFFSET 3",
    "SELECT SUM(x) OVER (ORDER BY y ROWS BETWEEN 1 PRECEDING AND 2 FOLLOWING) FROM t",
    "SELECT CAST(x AS NUMERIC(10, 2)), DATE_ADD(d, INTERVAL 3 DAY), arr[OFFSET(1)] FROM t GROUP BY 1, 2, 3",
    "SELECT a FROM t WHERE EXISTS (SELECT 1 FROM u)",
    "INSERT INTO t VALUES (1, 2)",
])
def test_literals_whose_type_goes_nowhere_stay_plain(sql: str) -> None:
    assert not re.search(r"CAST\(\d+ AS BIGINT\)", bigquery_to_duckdb(sql))


def test_shift_amount_stays_plain() -> None:
    assert bigquery_to_duckdb("SELECT 1 << 40") == "SELECT CAST(1 AS BIGINT) << 40"


@pytest.mark.parametrize("literal", ["9223372036854775808", "18446744073709551615", "-9223372036854775809"])
def test_literal_beyond_int64_is_rejected(literal: str) -> None:
    with pytest.raises(UntranslatableSQL, match="beyond INT64"):
        bigquery_to_duckdb(f"SELECT {literal} AS v")


def test_int64_bounds_are_accepted() -> None:
    assert _run("SELECT 9223372036854775807 AS a, -9223372036854775808 AS b") == [
        (9223372036854775807, -9223372036854775808)]


def test_int64_overflow_still_raises() -> None:
    with pytest.raises(duckdb.Error, match="Overflow"):
        _run("SELECT 9223372036854775807 + x FROM UNNEST([1]) AS x")
