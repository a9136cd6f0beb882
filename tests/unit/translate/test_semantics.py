"""BigQuery errors and refusals the golden format cannot express, checked on real DuckDB.

Each query here returns an error in BigQuery (or has no faithful translation); the
translated SQL must raise on DuckDB too (or the translator must refuse it), never
return a value. Sessions come from `golden.connect()` (UTC and the helper functions).
"""

from __future__ import annotations

import duckdb
import pytest

from pulse_local.translate import UntranslatableSQL, bigquery_to_duckdb
from pulse_local.translate.functions import farm_fingerprint, json_keys, soundex
from pulse_local.translate.golden import connect


def run(sql: str) -> list[tuple[object, ...]]:
    con = connect()
    try:
        return con.execute(bigquery_to_duckdb(sql)).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("sql, message", [
    ("SELECT [1, 2, 3][OFFSET(3)]", "Array index 3 is out of bounds"),
    ("SELECT [1, 2, 3][OFFSET(-1)]", "Array index -1 is out of bounds"),
    ("SELECT [1, 2, 3][ORDINAL(0)]", "Array index 0 is out of bounds"),
    ("SELECT x[ORDINAL(4)] FROM UNNEST([STRUCT([1, 2, 3] AS x)])", "Array index 4 is out of bounds"),
    ("SELECT LPAD('abc', -1)", "return_length is negative"),
    ("SELECT RPAD('abc', 5, '')", "pattern is empty"),
    ("SELECT FORMAT('%T', [1, 2])", "FORMAT %T"),
    ("SELECT FORMAT('%t', CAST(1.5 AS NUMERIC))", "FORMAT %t"),
    ("SELECT TO_JSON_STRING(1e20)", "exponent notation"),
    ("SELECT TO_JSON_STRING(STRUCT(CAST(1.5 AS NUMERIC) AS n))", "NUMERIC"),
    ("SELECT TO_JSON_STRING(STRUCT(TIMESTAMP '2020-01-01 00:00:00+00' AS t, 'x' AS s))", "TIMESTAMP"),
    ("SELECT REGEXP_INSTR('abc', '(a)(b)')", "more than one capturing group"),
])
def test_bigquery_errors_are_errors_on_duckdb(sql: str, message: str) -> None:
    with pytest.raises(duckdb.Error, match=message):
        run(sql)


@pytest.mark.parametrize("sql, construct", [
    ("SELECT FORMAT_TIMESTAMP('%Z', CURRENT_TIMESTAMP(), 'America/Los_Angeles')", "%Z"),
    ("SELECT APPROX_QUANTILES(x, 2 RESPECT NULLS) FROM UNNEST([1]) AS x", "RESPECT NULLS"),
    ("SELECT TO_JSON_STRING(STRUCT(1 AS a), true)", "pretty_print"),
    ("SELECT * FROM ds.events_* WHERE _TABLE_SUFFIX > '20240101'", "wildcard table events_*"),
    ("SELECT COUNT(*) FROM `proj.ds.events_*`", "wildcard table events_*"),
    ("SELECT REGEXP_INSTR('abcabc', 'a(b)c', 2)", "REGEXP_INSTR with a capturing group"),
    ("SELECT FORMAT(ERROR('foo'), 1)", "FORMAT with a computed pattern"),
    ("SELECT SAFE.NTILE(NULL) OVER (ORDER BY x) FROM UNNEST([1, 2]) AS x", "NTILE"),
    ("SELECT JSON_OBJECT(['a', 'b'], [10])", "JSON_OBJECT with key and value arrays of different lengths"),
    ("SELECT CAST(DATE '2020-01-01' AS STRING FORMAT 'YYYY')", "FORMAT 'YYYY'"),
    ("SELECT CAST(b'abc' AS STRING FORMAT 'base64')", "FORMAT 'base64'"),
])
def test_unreproduced_constructs_are_refused(sql: str, construct: str) -> None:
    with pytest.raises(UntranslatableSQL) as info:
        bigquery_to_duckdb(sql)
    assert construct in info.value.construct and info.value.line == 1


def test_farm_fingerprint_matches_documented_values() -> None:
    # Values from Google's FARM_FINGERPRINT reference (row fingerprints of the example).
    assert farm_fingerprint("1footrue") == -1541654101129638711
    assert farm_fingerprint("2applefalse") == 2794438866806483259
    assert farm_fingerprint("3true") == -4880158226897771312
    assert farm_fingerprint("") == farm_fingerprint(b"") == -7286425919675154353


def test_farm_fingerprint_is_deterministic_over_every_length_branch() -> None:
    values = {n: farm_fingerprint(bytes(range(n % 256)) * (n // 256 + 1)) for n in (3, 12, 20, 40, 65, 200, 1000)}
    assert all(-(2**63) <= v < 2**63 for v in values.values())
    assert len(set(values.values())) == len(values)
    assert values == {n: farm_fingerprint(bytes(range(n % 256)) * (n // 256 + 1)) for n in values}


def test_soundex_and_json_keys() -> None:
    assert [soundex(w) for w in ("Robert", "Rupert", "Tymczak", "Pfister", "Honeyman")] == [
        "R163", "R163", "T522", "P236", "H555"]
    assert json_keys('{"b": {"c": [{"d": 1}]}, "a": 1, "a.b": 2}') == ['"a.b"', "a", "b", "b.c"]


def test_session_configuration_is_idempotent_and_reaches_cursors() -> None:
    from pulse_local.translate import session
    from pulse_local.translate.functions import HELPER_NAMES

    con = duckdb.connect()
    try:
        session.configure(con, global_scope=True)
        session.configure(con)  # a second call must not fail on existing functions
        cursor = con.cursor()
        session.configure(cursor)
        names = {r[0] for r in cursor.execute("SELECT function_name FROM duckdb_functions()").fetchall()}
        assert HELPER_NAMES <= names
        assert cursor.execute("SELECT current_setting('TimeZone'), bq_soundex('Lavine')").fetchone() == ("UTC", "L150")
    finally:
        con.close()


def test_safe_regexp_instr_with_two_groups_is_null() -> None:
    """BigQuery raises for a pattern with two capturing groups, so SAFE. gives NULL."""
    assert run("SELECT SAFE.REGEXP_INSTR('abc', '(a)(b)'), REGEXP_INSTR('abcabc', 'b', 1, 2)") == [(None, 5)]


def test_update_with_join_matching_twice_raises() -> None:
    """UPDATE ... FROM raises in BigQuery when a target row matches two joined rows; one match is fine."""
    con = connect()
    try:
        con.execute("CREATE TABLE t (k BIGINT, v BIGINT); INSERT INTO t VALUES (1, 0), (2, 0)")
        con.execute("CREATE TABLE s (k BIGINT, w BIGINT); INSERT INTO s VALUES (1, 10), (2, 20), (2, 21)")
        con.execute(bigquery_to_duckdb("UPDATE t SET v = s.w FROM s WHERE t.k = s.k AND t.k = 1"))
        assert con.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [(1, 10), (2, 0)]
        with pytest.raises(duckdb.Error, match="more than one joined row"):
            con.execute(bigquery_to_duckdb("UPDATE t SET v = s.w FROM s WHERE t.k = s.k"))
    finally:
        con.close()

