"""Unit: PostgreSQL -> BigQuery (Datastream) -> DuckDB type mapping, and the text conversions,
run through an in-memory DuckDB (no sockets)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import duckdb
import pytest

from pulse_local.cdc.typemap import CustomType, map_type, numeric_type, parse_pg_array


def _typmod(precision: int, scale: int) -> int:
    return ((precision << 16) | scale) + 4


@pytest.mark.parametrize("oid, bigquery, duck", [
    (20, "INT64", "BIGINT"), (23, "INT64", "BIGINT"), (21, "INT64", "BIGINT"),
    (25, "STRING", "VARCHAR"), (1043, "STRING", "VARCHAR"), (2950, "STRING", "VARCHAR"),
    (16, "BOOL", "BOOLEAN"), (1082, "DATE", "DATE"), (1083, "TIME", "TIME"),
    (1184, "TIMESTAMP", "TIMESTAMPTZ"), (1114, "TIMESTAMP", "TIMESTAMPTZ"),
    (3802, "JSON", "JSON"), (114, "JSON", "JSON"), (701, "FLOAT64", "DOUBLE"),
    (700, "FLOAT64", "DOUBLE"), (790, "FLOAT64", "DOUBLE"), (17, "BYTES", "BLOB"),
    (1186, "INTERVAL", "INTERVAL"), (869, "STRING", "VARCHAR"), (142, "STRING", "VARCHAR"),
    (1007, "JSON", "JSON"), (1009, "JSON", "JSON"), (603, "UNSUPPORTED", "VARCHAR"),
])
def test_datastream_mapping(oid: int, bigquery: str, duck: str) -> None:
    mapped = map_type(oid)
    assert (mapped.bigquery_type, mapped.duckdb_type) == (bigquery, duck)


def test_numeric_follows_precision() -> None:
    assert numeric_type(-1).bigquery_type == "STRING"  # unconstrained: STRING, as Datastream
    small = numeric_type(_typmod(12, 3))
    assert (small.bigquery_type, small.duckdb_type) == ("NUMERIC", "DECIMAL(12,3)")
    wide_scale = numeric_type(_typmod(20, 12))
    assert (wide_scale.bigquery_type, wide_scale.duckdb_type) == ("BIGNUMERIC", "DECIMAL(20,12)")
    huge = numeric_type(_typmod(60, 2))
    assert (huge.bigquery_type, huge.duckdb_type) == ("BIGNUMERIC", "DOUBLE")


def test_custom_types() -> None:
    enum = map_type(16500, custom=CustomType("mood", "e"))
    assert (enum.bigquery_type, enum.duckdb_type) == ("STRING", "VARCHAR")
    domain = map_type(16501, custom=CustomType("score", "d", base_oid=1700,
                                               base_typmod=_typmod(6, 3)))
    assert domain.duckdb_type == "DECIMAL(6,3)" and "domain" in domain.pg_type
    unknown = map_type(99999)
    assert unknown.duckdb_type == "VARCHAR"


@pytest.mark.parametrize("oid, typmod, text, expected", [
    (23, -1, "42", 42),
    (20, -1, "-9223372036854775808", -9223372036854775808),
    (16, -1, "t", True),
    (16, -1, "f", False),
    (1700, _typmod(12, 3), "12.500", Decimal("12.500")),
    (1700, -1, "3.14159265358979323846264338327950288", "3.14159265358979323846264338327950288"),
    (701, -1, "1.5e-10", 1.5e-10),
    (790, -1, "-$1,234.50", -1234.5),
    (1082, -1, "2024-02-29", dt.date(2024, 2, 29)),
    (1083, -1, "13:45:01.5", dt.time(13, 45, 1, 500000)),
    (1184, -1, "2024-03-01 10:00:00.123456+00",
     dt.datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)),
    (1114, -1, "2024-03-01 10:00:00", dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)),
    (1186, -1, "1 day 02:00:00", dt.timedelta(days=1, hours=2)),
    (17, -1, "\\x00ff10", b"\x00\xff\x10"),
    (2950, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    (3802, -1, '{"a": [1, 2]}', '{"a": [1, 2]}'),
    (1007, -1, "{1,NULL,3}", "[1,null,3]"),
    (1009, -1, '{"a b","c,d",plain,NULL}', '["a b","c,d","plain",null]'),
    (1000, -1, "{t,f}", "[true,false]"),
    (1001, -1, '{"\\\\x00ff"}', '["AP8="]'),
    (1231, -1, "{{1.5,2},{3,4}}", "[[1.5,2],[3,4]]"),
])
def test_text_converts_to_duckdb_value(oid: int, typmod: int, text: str, expected: object) -> None:
    column = map_type(oid, typmod)
    value = column.prepare(text)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    got = con.execute(f"SELECT {column.cast_sql('x')} FROM (SELECT ?::VARCHAR AS x)",
                      [value]).fetchone()[0]
    if isinstance(expected, dt.datetime):
        assert got == expected
    elif column.duckdb_type == "JSON":
        assert json.loads(got) == json.loads(str(expected))
    else:
        assert got == expected


def test_null_stays_null() -> None:
    column = map_type(1007)
    assert column.prepare(None) is None


def test_array_literal_parser() -> None:
    assert parse_pg_array("{}") == []
    assert parse_pg_array('{"with \\"quote\\"",x}') == ['with "quote"', "x"]
    assert parse_pg_array("[0:1]={7,8}") == ["7", "8"]
    with pytest.raises(ValueError):
        parse_pg_array("not an array")
