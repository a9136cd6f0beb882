"""INT64/NUMERIC overflow of SUM: BigQuery raises, so must we (real DuckDB, rules_numbers.py)."""

from __future__ import annotations

import duckdb
import pytest

from pulse_local.translate import bigquery_to_duckdb, session


def _run(sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    session.configure(con)
    return con.execute(bigquery_to_duckdb(sql)).fetchall()


@pytest.mark.parametrize("sql", [
    "SELECT SUM(x) FROM UNNEST([9223372036854775807, 1]) AS x",
    "SELECT SUM(DISTINCT x) FROM UNNEST([-9223372036854775807, -2]) AS x",
    "SELECT SUM(x) OVER (ORDER BY x) FROM UNNEST([9223372036854775806, 1, 2]) AS x",
])
def test_int64_sum_overflow_raises(sql: str) -> None:
    with pytest.raises(duckdb.Error, match="INT64"):
        _run(sql)


def test_numeric_sum_overflow_raises() -> None:
    with pytest.raises(duckdb.Error, match="DECIMAL"):
        _run("SELECT SUM(x) FROM UNNEST([CAST('99999999999999999999999999999' AS NUMERIC), CAST('1' AS NUMERIC)]) AS x")


def test_sums_in_range_are_unchanged() -> None:
    assert _run("SELECT SUM(x) FROM UNNEST([-9223372036854775807, -1]) AS x") == [(-9223372036854775808,)]
    numeric = _run("SELECT SUM(x) FROM UNNEST([CAST('99999999999999999999999999998' AS NUMERIC), CAST('1.5' AS NUMERIC)]) AS x")
    assert str(numeric[0][0]) == "99999999999999999999999999999.500000000"
    assert _run("SELECT SUM(x) FROM UNNEST([1.5, 1e308]) AS x") == [(1e308,)]


@pytest.mark.parametrize("sql", [
    "SELECT SUM(x) FROM UNNEST([1.7e308, 1.7e308]) AS x",
    "SELECT SUM(x) OVER (ORDER BY x) FROM UNNEST([1.7e308, 1.6e308]) AS x",
])
def test_float64_sum_overflow_raises(sql: str) -> None:
    with pytest.raises(duckdb.Error, match="double overflow"):
        _run(sql)


def test_float64_sum_of_an_infinity_is_infinite() -> None:
    assert _run("SELECT SUM(x) FROM UNNEST([1.0, CAST('inf' AS FLOAT64)]) AS x") == [(float("inf"),)]


def test_comparisons_with_nan_are_false() -> None:
    rows = _run(
        "SELECT x > 0, x = x, x != x, x BETWEEN -1 AND 1, x NOT BETWEEN -1 AND 1, x BETWEEN NULL AND NULL, "
        "CAST(NULL AS FLOAT64) > x FROM UNNEST([CAST('nan' AS FLOAT64)]) AS x"
    )
    assert rows == [(False, False, True, False, True, None, None)]


def test_where_and_join_on_nan_match_nothing() -> None:
    rows = _run(
        "SELECT COUNT(*) FROM UNNEST([CAST('nan' AS FLOAT64), 1.0]) AS a "
        "JOIN UNNEST([CAST('nan' AS FLOAT64), 1.0]) AS b ON a = b WHERE a >= 0"
    )
    assert rows == [(1,)]


@pytest.mark.parametrize("sql", [
    "SELECT DATETIME_ADD(DATETIME '9999-12-31 23:59:59.999999', INTERVAL 1 MICROSECOND)",
    "SELECT DATETIME_SUB(DATETIME '0001-01-01 00:00:00', INTERVAL 1 DAY)",
    "SELECT TIMESTAMP_ADD(TIMESTAMP '9999-12-31 23:00:00+00', INTERVAL 2 HOUR)",
])
def test_datetime_arithmetic_past_year_9999_raises(sql: str) -> None:
    with pytest.raises(duckdb.Error, match="datetime overflow"):
        _run(sql)


def test_datetime_arithmetic_in_range_is_unchanged() -> None:
    rows = _run("SELECT STRING(DATETIME_ADD(DATETIME '2020-01-31 10:00:00', INTERVAL 1 DAY)), "
                "DATETIME_SUB(CAST(NULL AS DATETIME), INTERVAL 1 DAY)")
    assert rows == [("2020-02-01 10:00:00", None)]


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT TRANSLATE('apple', 'aa', 'bc')", "repeated character"),
    ("SELECT ASCII('ÿ')", "non-ASCII"),
])
def test_string_arguments_bigquery_rejects_raise(sql: str, message: str) -> None:
    with pytest.raises(duckdb.Error, match=message):
        _run(sql)


def test_safe_string_argument_errors_are_null() -> None:
    rows = _run("SELECT SAFE.TRANSLATE('apple', 'aa', 'bc'), SAFE.ASCII('ÿ'), TRANSLATE('apple', 'ap', 'bq'), ASCII('')")
    assert rows == [(None, None, "bqqle", 0)]
