"""Behaviour of bigquery_to_duckdb beyond the golden results: errors, DDL, dbt quoting."""

from __future__ import annotations

import duckdb
import pytest

from pulse_local.errors import PulseError
from pulse_local.translate import UntranslatableSQL, bigquery_to_duckdb, translate
from pulse_local.translate.core import requote_dbt_relations


def run(sql: str) -> tuple[list[tuple], list[str]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cur = con.execute(bigquery_to_duckdb(sql))
    return cur.fetchall(), [str(d[1]) for d in cur.description]


def test_known_wrong_answers_are_fixed() -> None:
    rows, types = run(
        "SELECT DATE_TRUNC(DATE '2024-02-15', MONTH) AS m, DATE_TRUNC(DATE '2024-02-15', WEEK(MONDAY)) AS w, "
        "DATE_ADD(DATE '2024-01-31', INTERVAL 1 MONTH) AS a, EXTRACT(DAYOFWEEK FROM DATE '2024-02-18') AS dow"
    )
    assert types == ["DATE", "DATE", "DATE", "BIGINT"]
    assert [str(v) for v in rows[0]] == ["2024-02-01", "2024-02-12", "2024-02-29", "1"]
    rows, _ = run("SELECT x, o FROM UNNEST(['a', 'b']) AS x WITH OFFSET AS o ORDER BY o")
    assert rows == [("a", 0), ("b", 1)]


def test_multiple_statements_and_merge() -> None:
    out = bigquery_to_duckdb(
        "CREATE OR REPLACE TABLE t AS SELECT 1 AS id; "
        "MERGE t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE"
    )
    assert out.count(";") == 1 and "MERGE INTO" in out


def test_javascript_udf_is_rejected_with_position() -> None:
    sql = "SELECT 1;\nCREATE TEMP FUNCTION f(x FLOAT64) RETURNS FLOAT64 LANGUAGE js AS 'return x'"
    with pytest.raises(UntranslatableSQL) as info:
        bigquery_to_duckdb(sql)
    err = info.value
    assert isinstance(err, PulseError)
    assert err.construct == "JavaScript UDF" and err.line == 2
    assert "line 2" in str(err) and "JavaScript" in str(err)


def test_unknown_function_names_function_line_and_column() -> None:
    with pytest.raises(UntranslatableSQL) as info:
        bigquery_to_duckdb("SELECT\n  a,\n  no_such_fn(a) AS b\nFROM t")
    err = info.value
    assert "NO_SUCH_FN" in err.construct and (err.line, err.col) == (3, 12)


def test_bigquery_only_function_is_rejected() -> None:
    with pytest.raises(UntranslatableSQL, match=r"HLL_COUNT\.INIT"):
        bigquery_to_duckdb("SELECT HLL_COUNT.INIT(a) FROM t")


def test_syntax_error_reports_bigquery_position() -> None:
    with pytest.raises(UntranslatableSQL) as info:
        bigquery_to_duckdb("SELECT a,\n  FROM t WHERE (")
    assert info.value.line == 2
    assert "syntax error" in str(info.value)


def test_scripting_is_rejected() -> None:
    with pytest.raises(UntranslatableSQL):
        bigquery_to_duckdb("DECLARE x INT64 DEFAULT 1")


def test_dbt_relations_are_identifiers_but_lone_strings_stay_strings() -> None:
    sql = 'select "a" as s from "memory"."main"."orders"'
    assert requote_dbt_relations(sql) == 'select "a" as s from `memory`.`main`.`orders`'
    out = translate(sql, dbt_relations=True)
    assert "'a' AS s" in out and '"memory"."main"."orders"' in out


def test_translation_is_cached() -> None:
    """Repeated statements are served from the cache (the cost itself is `make bench`'s)."""
    from pulse_local.translate.core import _translate_cached

    sql = "SELECT DATE_TRUNC(d, MONTH) AS m, COUNTIF(x > 1) AS n FROM t GROUP BY 1"
    first = bigquery_to_duckdb(sql)
    hits = _translate_cached.cache_info().hits
    for _ in range(100):
        assert bigquery_to_duckdb(sql) == first
    assert _translate_cached.cache_info().hits == hits + 100
