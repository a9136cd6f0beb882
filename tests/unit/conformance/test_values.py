"""The typed comparison of DuckDB results with compliance-file values (real DuckDB results)."""

from __future__ import annotations

from typing import Any

import duckdb

from pulse_local.conformance.comparison import compare_rows, floats_equal
from pulse_local.conformance.values import parse_typed


def _result(sql: str) -> tuple[list[tuple[Any, ...]], list[Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cur = con.execute(sql)
    return cur.fetchall(), [d[1] for d in cur.description]


def _check(expected: str, sql: str) -> str | None:
    table_type, value, _end = parse_typed(expected)
    row_type = table_type.element
    assert row_type is not None
    rows, types = _result(sql)
    bad = compare_rows(value, row_type, rows, types)
    return None if bad is None else str(bad)


def test_equal_rows_in_any_order_when_order_is_unknown() -> None:
    assert _check("ARRAY<STRUCT<INT64, STRING>>[unknown order:{1, \"a\"}, {2, NULL}]",
                  "SELECT * FROM (VALUES (2, NULL), (1, 'a'))") is None


def test_known_order_is_checked() -> None:
    bad = _check("ARRAY<STRUCT<INT64>>[known order:{1}, {2}]", "SELECT * FROM (VALUES (2), (1))")
    assert bad is not None and "expected 1, got 2" in bad


def test_type_family_is_checked() -> None:
    bad = _check("ARRAY<STRUCT<DATE>>[{2020-01-01}]", "SELECT TIMESTAMP '2020-01-01'")
    assert bad is not None and "datetime" in bad
    bad = _check("ARRAY<STRUCT<DOUBLE>>[{1.5}]", "SELECT 1.5")  # DuckDB: DECIMAL
    assert bad is not None and "numeric" in bad
    assert _check("ARRAY<STRUCT<INT64>>[{1}]", "SELECT 1::INTEGER") is None


def test_null_differs_from_a_value() -> None:
    bad = _check("ARRAY<STRUCT<STRING>>[{NULL}]", "SELECT ''")
    assert bad is not None


def test_timestamps_compare_as_instants() -> None:
    assert _check("ARRAY<STRUCT<TIMESTAMP>>[{2020-01-01 08:00:00+00}]",
                  "SELECT TIMESTAMPTZ '2020-01-01 00:00:00-08'") is None


def test_nested_arrays_and_structs() -> None:
    assert _check("ARRAY<STRUCT<ARRAY<STRUCT<a INT64, b ARRAY<STRING>>>>>[{[known order:{1, [\"x\"]}, {2, []}]}]",
                  "SELECT [{'a': 1, 'b': ['x']}, {'a': 2, 'b': []}]") is None
    bad = _check("ARRAY<STRUCT<ARRAY<INT64>>>[{[known order:1, 2]}]", "SELECT [2, 1]")
    assert bad is not None


def test_json_compares_structurally() -> None:
    assert _check('ARRAY<STRUCT<JSON>>[{{"a":1,"b":[true,null]}}]',
                  """SELECT '{"b": [true, null], "a": 1}'::JSON""") is None
    bad = _check('ARRAY<STRUCT<JSON>>[{"1"}]', "SELECT '1'::JSON")
    assert bad is not None


def test_float_margin() -> None:
    assert floats_equal(0.1 + 0.2, 0.3)
    assert not floats_equal(1.0, 1.0 + 1e-9)
    assert floats_equal(float("nan"), float("nan"))
    assert not floats_equal(float("inf"), 1e308)
    assert _check("ARRAY<STRUCT<DOUBLE>>[{0.3}]", "SELECT 0.1::DOUBLE + 0.2::DOUBLE") is None


def test_column_count_is_checked() -> None:
    bad = _check("ARRAY<STRUCT<INT64>>[{1}]", "SELECT 1, 2")
    assert bad is not None and "columns" in bad
