"""Rules learned from ZetaSQL's compliance tests: where BigQuery raises, so must we (real DuckDB)."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from pulse_local.translate import UntranslatableSQL, bigquery_to_duckdb, session


def _run(sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    session.configure(con)  # UTC and the helper functions / typed macros, as the dbt plugin
    return con.execute(bigquery_to_duckdb(sql)).fetchall()


@pytest.mark.parametrize("sql", [
    "SELECT 1 / 0", "SELECT 0 / 0", "SELECT 1.0 / 0", "SELECT 1.0 / -0.0",
    "SELECT DIV(7, 0)", "SELECT MOD(7, 0)",
    "SELECT a / b FROM UNNEST([STRUCT(1 AS a, 0 AS b)])",
])
def test_division_by_zero_raises(sql: str) -> None:
    with pytest.raises(duckdb.Error, match="division by zero"):
        _run(sql)


def test_division_by_zero_only_raises_for_the_rows_that_divide_by_zero() -> None:
    rows = _run("SELECT a / b FROM UNNEST([STRUCT(1 AS a, 2 AS b), STRUCT(3, 4)]) ORDER BY 1")
    assert rows == [(0.5,), (0.75,)]


@pytest.mark.parametrize("sql", ["SELECT 1 + NULL", "SELECT NULL * 2", "SELECT 3 - (NULL)", "SELECT 4 / NULL"])
def test_literal_null_operand_is_rejected(sql: str) -> None:
    with pytest.raises(UntranslatableSQL, match="literal NULL"):
        bigquery_to_duckdb(sql)


def test_typed_null_operand_is_fine() -> None:
    assert _run("SELECT 1 + CAST(NULL AS INT64)") == [(None,)]


@pytest.mark.parametrize(("sql", "construct"), [
    ("SELECT LAG(x, -1) OVER (ORDER BY x) FROM UNNEST([1]) AS x", "negative or NULL offset"),
    ("SELECT LEAD(x, CAST(NULL AS INT64)) OVER (ORDER BY x) FROM UNNEST([1]) AS x", "negative or NULL offset"),
    ("SELECT LAG(x, 1, x) OVER (ORDER BY x) FROM UNNEST([1]) AS x", "non-constant default"),
    ("SELECT LAG(x) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM UNNEST([1]) AS x",
     "window frame"),
    ("SELECT LEAD(x) OVER w FROM UNNEST([1]) AS x WINDOW w AS (ORDER BY x ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)",
     "window frame"),
])
def test_navigation_function_arguments_bigquery_rejects(sql: str, construct: str) -> None:
    with pytest.raises(UntranslatableSQL, match=construct):
        bigquery_to_duckdb(sql)


@pytest.mark.parametrize("sql", [
    "SELECT LEFT('abc', -2)", "SELECT RIGHT('abc', n) FROM UNNEST([-1]) AS n",
    "SELECT REPEAT('abc', -15)", "SELECT SUBSTR('abc', 1, -3)",
])
def test_negative_lengths_raise(sql: str) -> None:
    with pytest.raises(duckdb.Error, match="negative length"):
        _run(sql)


def test_safe_turns_the_functions_own_error_into_null() -> None:
    assert _run("SELECT SAFE.LEFT('abc', n) FROM UNNEST([-1, 2]) AS n WITH OFFSET o ORDER BY o") == [(None,), ("ab",)]


def test_safe_with_an_argument_that_can_raise_is_rejected() -> None:
    with pytest.raises(UntranslatableSQL, match="SAFE. function whose argument can raise"):
        bigquery_to_duckdb("SELECT SAFE.LOG(10, x / y) FROM UNNEST([STRUCT(1 AS x, 0 AS y)])")


def test_statement_level_select_as_struct_returns_columns() -> None:
    con = duckdb.connect()
    cur = con.execute(bigquery_to_duckdb("SELECT AS STRUCT 1 AS a, 2 AS b UNION DISTINCT SELECT AS STRUCT 1, 3"))
    assert sorted(cur.fetchall()) == [(1, 2), (1, 3)]
    assert [d[0] for d in cur.description] == ["a", "b"]
    assert _run("SELECT (SELECT AS STRUCT 1 AS a, 2 AS b) AS s") == [({"a": 1, "b": 2},)]


@pytest.mark.parametrize("n", ["0", "-1", "CAST(NULL AS INT64)"])
def test_nth_value_needs_a_positive_n(n: str) -> None:
    with pytest.raises(UntranslatableSQL, match="NTH_VALUE"):
        bigquery_to_duckdb(f"SELECT NTH_VALUE(x, {n}) OVER (ORDER BY x) FROM UNNEST([1]) AS x")


@pytest.mark.parametrize(("group_by", "construct"), [
    ("GROUPING SETS(a, a + 1)", "next to one of its columns"),
    ("ROLLUP(a, 1)", "repeated item"),
    ("GROUPING SETS(a, (a), b)", "repeated set"),
])
def test_grouping_sets_bigquery_groups_differently(group_by: str, construct: str) -> None:
    sql = f"SELECT a, a + 1, COUNT(*) FROM UNNEST([STRUCT(1 AS a, 'x' AS b)]) GROUP BY {group_by}"
    with pytest.raises(UntranslatableSQL, match=construct):
        bigquery_to_duckdb(sql)


def test_grouping_set_ordinals_name_select_expressions() -> None:
    rows = _run("SELECT UPPER(b) AS u, c, COUNT(*) FROM UNNEST([STRUCT('x' AS b, TRUE AS c), STRUCT('y', TRUE)]) "
                "GROUP BY GROUPING SETS((1, c), 2) ORDER BY 1, 2")
    assert rows == [(None, True, 2), ("X", True, 1), ("Y", True, 1)]


@pytest.mark.parametrize(("sql", "construct"), [
    ("SELECT ROW_NUMBER() OVER (ORDER BY x ROWS 2 PRECEDING) FROM UNNEST([1]) AS x", "ROW_NUMBER with a window frame"),
    ("SELECT NTILE(CAST(NULL AS INT64)) OVER (ORDER BY x) FROM UNNEST([1]) AS x", "NTILE"),
    ("SELECT NTILE(0) OVER (ORDER BY x) FROM UNNEST([1]) AS x", "NTILE"),
    (("SELECT SUM(x) OVER (ORDER BY x RANGE BETWEEN CAST(NULL AS INT64) PRECEDING AND CURRENT ROW) "
     "FROM UNNEST([1]) AS x"), "NULL offset"),
])
def test_window_forms_bigquery_rejects(sql: str, construct: str) -> None:
    with pytest.raises(UntranslatableSQL, match=construct):
        bigquery_to_duckdb(sql)


def test_window_forms_bigquery_accepts_still_run() -> None:
    rows = _run("SELECT x, NTILE(2) OVER (ORDER BY x) AS t, SUM(x) OVER (ORDER BY x ROWS 1 PRECEDING) AS s "
                "FROM UNNEST([1, 2, 3]) AS x ORDER BY x")
    assert rows == [(1, 1, 1), (2, 1, 3), (3, 2, 5)]


@pytest.mark.parametrize("sql", ["SELECT 1 LIMIT NULL", "SELECT 1 LIMIT 1 OFFSET (NULL)"])
def test_limit_null_is_rejected(sql: str) -> None:
    with pytest.raises(UntranslatableSQL, match="NULL"):
        bigquery_to_duckdb(sql)


def test_limit_and_offset_still_work() -> None:
    assert _run("SELECT x FROM UNNEST([1, 2, 3]) AS x ORDER BY x LIMIT 1 OFFSET 1") == [(2,)]


@pytest.mark.parametrize("sql", [
    "SELECT GENERATE_ARRAY(1, 5, 0)",
    "SELECT GENERATE_DATE_ARRAY('2020-01-01', '2020-02-01', INTERVAL 0 DAY)",
])
def test_generate_array_zero_step_is_rejected(sql: str) -> None:
    with pytest.raises(UntranslatableSQL, match="zero step"):
        bigquery_to_duckdb(sql)


# --------------------------------------------------------------------------- errors BigQuery raises
# (GoogleSQL reference: NOT, STRING_AGG, aggregate LIMIT, window frame offsets, FORMAT,
# JSONPath, INT64(JSON), ARRAY_FIRST/ARRAY_LAST; queries of our own)


@pytest.mark.parametrize(("sql", "construct"), [
    ("SELECT NOT NULL", "NOT of a literal NULL"),
    ("SELECT NOT (NULL) AS b", "NOT of a literal NULL"),
    ("SELECT STRING_AGG(s, NULL) FROM UNNEST(['a']) AS s", "NULL separator"),
    ("SELECT STRING_AGG(s, CAST(NULL AS STRING)) FROM UNNEST(['a']) AS s", "NULL separator"),
    ("SELECT ARRAY_AGG(x ORDER BY x LIMIT -2) FROM UNNEST([1, 2]) AS x", "LIMIT"),
    ("SELECT SUM(x) OVER (ORDER BY x ROWS BETWEEN (-1) PRECEDING AND CURRENT ROW) FROM UNNEST([1]) AS x",
     "frame offset"),
    ("SELECT FORMAT(p, 1) FROM UNNEST(['%d']) AS p", "computed pattern"),
    ("SELECT FORMAT('%d', 1, 2)", "takes 1 argument"),
    ("SELECT FORMAT('%*d', 1)", "takes 2 argument"),
    ("SELECT JSON_QUERY('{\"a\": 1}', 'lax $.a')", "JSONPath"),
])
def test_constructs_bigquery_rejects_are_untranslatable(sql: str, construct: str) -> None:
    with pytest.raises(UntranslatableSQL, match=construct):
        bigquery_to_duckdb(sql)


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT INT64(JSON '10.5')", "not an integer"),
    ("SELECT INT64(JSON '\"4\"')", "not an integer"),
    ("SELECT INT64(JSON 'true')", "not an integer"),
    ("SELECT ARRAY_FIRST(ARRAY(SELECT x FROM UNNEST([1]) AS x WHERE x > 5))", "empty array"),
    ("SELECT ARRAY_LAST(a) FROM UNNEST([STRUCT(CAST([] AS ARRAY<INT64>) AS a)])", "empty array"),
    ("SELECT SUM(x) OVER (ORDER BY x RANGE BETWEEN (IEEE_DIVIDE(0, 0)) PRECEDING AND CURRENT ROW) FROM UNNEST([1.0]) AS x",
     "must be non-negative"),
])
def test_values_bigquery_rejects_raise(sql: str, message: str) -> None:
    with pytest.raises((duckdb.Error, UntranslatableSQL), match=message):
        _run(sql)


def test_checked_values_bigquery_accepts() -> None:
    assert _run("SELECT INT64(JSON '10'), INT64(JSON '1e3'), INT64(JSON 'null')") == [(10, 1000, None)]
    assert _run("SELECT ARRAY_FIRST([3, 4]), ARRAY_LAST([3, 4]), SAFE.ARRAY_FIRST(CAST([] AS ARRAY<INT64>))") == [
        (3, 4, None)]
    assert _run("SELECT FORMAT('%d-%s', 7, 'x'), FORMAT(CAST(NULL AS STRING), 1)") == [("7-x", None)]
    assert _run("SELECT STRING_AGG(s, '-' ORDER BY s) FROM UNNEST(['b', 'a']) AS s") == [("a-b",)]


def test_count_over_an_empty_frame_is_zero() -> None:
    rows = _run("SELECT x, COUNT(*) OVER (ORDER BY x RANGE BETWEEN 1 PRECEDING AND 2 PRECEDING) AS n "
                "FROM UNNEST([1.0, 2.5, 4.5]) AS x ORDER BY x")
    assert rows == [(1.0, 0), (2.5, 0), (4.5, 0)]


def test_array_concat_agg_of_nothing_is_null() -> None:
    rows = _run("SELECT ARRAY_CONCAT_AGG(a ORDER BY k LIMIT 0) AS z, ARRAY_CONCAT_AGG(a ORDER BY k LIMIT 1) AS o "
                "FROM UNNEST([STRUCT(1 AS k, [1, 2] AS a), STRUCT(2, [3])])")
    assert rows == [(None, [1, 2])]


@pytest.mark.parametrize("sql", [
    "SELECT BIGNUMERIC '1.00000000000000000000000000000000000001'",
    "SELECT CAST('0.1234567891' AS BIGNUMERIC)",
    "SELECT ARRAY<BIGNUMERIC>[1.5, 100000000000000000000000000000000000.5]",
    "SELECT [[1], [2]]",
])
def test_values_duckdb_would_round_or_nest_are_untranslatable(sql: str) -> None:
    with pytest.raises(UntranslatableSQL):
        bigquery_to_duckdb(sql)


def test_bignumeric_within_numeric_precision_is_kept() -> None:
    assert _run("SELECT BIGNUMERIC '12.5000000000', CAST('-0.000000001' AS BIGNUMERIC)")[0] == (
        Decimal("12.5"), Decimal("-0.000000001"))


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT CAST(9223372036854775754.5 AS INT64)", "out of range"),
    ("SELECT CAST(s AS STRING(5)) FROM UNNEST(['123456']) AS s", "maximum length"),
])
def test_casts_bigquery_rejects_raise(sql: str, message: str) -> None:
    con = duckdb.connect()
    with pytest.raises(duckdb.Error, match=message):
        con.execute(bigquery_to_duckdb(sql)).fetchall()


@pytest.mark.parametrize("sql", ["SELECT TIME '24:00:00'", "SELECT CAST(['hello'] AS ARRAY<STRING(2)>)"])
def test_casts_bigquery_rejects_are_untranslatable(sql: str) -> None:
    with pytest.raises(UntranslatableSQL):
        bigquery_to_duckdb(sql)


def test_float64_division_overflow_raises_and_safe_divide_is_null() -> None:
    with pytest.raises(duckdb.Error, match="double overflow"):
        _run("SELECT a / b FROM UNNEST([STRUCT(1e300 AS a, 1e-300 AS b)])")
    assert _run("SELECT SAFE_DIVIDE(1e300, 1e-300), SAFE_DIVIDE(1, 0), SAFE_DIVIDE(3, 2), "
                "CAST('inf' AS FLOAT64) / 2") == [(None, None, 1.5, float("inf"))]


def test_iso_year_without_century_is_untranslatable() -> None:
    with pytest.raises(UntranslatableSQL, match="%g"):
        bigquery_to_duckdb("SELECT FORMAT_DATE('%g', DATE '2021-01-01')")
    assert "%%g" in bigquery_to_duckdb("SELECT FORMAT_DATE('%%g', DATE '2021-01-01')")


def test_string_of_json_is_its_text() -> None:
    assert _run("SELECT STRING(JSON '\"abc\"'), SAFE.STRING(JSON '12'), STRING(JSON 'null')") == [("abc", None, None)]
    with pytest.raises(duckdb.Error, match="not a string"):
        _run("SELECT STRING(JSON 'true')")


@pytest.mark.parametrize(("values", "construct"), [
    ("100, NULL", "PIVOT value NULL"), ("100, NULL AS n", "PIVOT value NULL"), ("1 AS a, 1 AS b", "given twice"),
])
def test_pivot_null_or_repeated_value_is_rejected(values: str, construct: str) -> None:
    with pytest.raises(UntranslatableSQL, match=construct):
        bigquery_to_duckdb(f"SELECT * FROM (SELECT 1 AS x, 100 AS y, 5 AS z) PIVOT(SUM(z) AS s FOR y IN ({values}))")


def test_pivot_with_distinct_values_still_runs() -> None:
    rows = _run("SELECT * FROM (SELECT 1 AS x, 100 AS y, 5 AS z UNION ALL SELECT 1, NULL, 7) "
                "PIVOT(SUM(z) AS s FOR y IN (100, 200))")
    assert rows == [(1, 5, None)]
