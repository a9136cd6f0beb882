"""REGEXP_EXTRACT_ALL with an empty match: BigQuery's ExtractAllIterator moves one character
on after an empty match and stops at the end of the input; DuckDB adds a last empty match and
repeats one found past its start. Real DuckDB (the golden runner's connection), no fakes."""

from __future__ import annotations

import duckdb
import pytest

from pulse_local.translate import translate
from pulse_local.translate.golden import connect


def _run(sql: str) -> list[tuple[object, ...]]:
    con = connect()
    try:
        return con.execute(translate(sql)).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("sql", [
    "SELECT REGEXP_EXTRACT_ALL('abc', 'x*')",  # BigQuery ['', '', ''], DuckDB 4 matches
    "SELECT REGEXP_EXTRACT_ALL('abc', '(b*)')",  # BigQuery ['', 'b', '']
    r"SELECT REGEXP_EXTRACT_ALL('ab cd', '\\b')",  # BigQuery 4 matches, DuckDB 6
    "SELECT REGEXP_EXTRACT_ALL(s, p) FROM UNNEST([STRUCT('abc' AS s, 'b*' AS p)])",
])
def test_empty_match_in_non_empty_input_raises(sql: str) -> None:
    with pytest.raises(duckdb.Error, match="matched the empty string"):
        _run(sql)


def test_patterns_that_cannot_match_empty_are_untouched() -> None:
    assert "ERROR" not in translate("SELECT REGEXP_EXTRACT_ALL(s, '[a-z]+') FROM t").upper()
    assert _run("SELECT REGEXP_EXTRACT_ALL('a1b22', '[0-9]+'), REGEXP_EXTRACT_ALL('abab', '(a)b')") == [
        (["1", "22"], ["a", "a"])
    ]


def test_column_pattern_without_empty_match_runs() -> None:
    rows = _run("SELECT REGEXP_EXTRACT_ALL(s, p) FROM UNNEST([STRUCT('abcb' AS s, 'b' AS p)])")
    assert rows == [(["b", "b"],)]


@pytest.mark.parametrize("sql", [
    "SELECT REGEXP_EXTRACT_ALL(s, p) FROM UNNEST([STRUCT('abab' AS s, 'a(b)' AS p)])",  # BigQuery ['b', 'b']
    "SELECT REGEXP_EXTRACT(s, p) FROM UNNEST([STRUCT('abab' AS s, 'a(?P<x>b)' AS p)])",  # BigQuery 'b'
])
def test_column_pattern_with_a_group_raises(sql: str) -> None:
    with pytest.raises(duckdb.Error, match="capturing group"):
        _run(sql)


def test_column_pattern_without_group_runs() -> None:
    rows = _run("SELECT REGEXP_EXTRACT(s, p), REGEXP_EXTRACT_ALL(s, p) FROM UNNEST([STRUCT('abab' AS s, '(?i)A(?:b)' AS p)])")
    assert rows == [("ab", ["ab", "ab"])]
