"""The compliance file format reader, on small samples written for these tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pulse_local.conformance.testfile import (
    bind_parameters,
    parse_expected,
    parse_test_file,
    split_parameters,
    table_name,
)
from pulse_local.conformance.values import (
    ArrayValue,
    FormatError,
    Interval,
    JsonValue,
    parse_type,
    parse_value,
)

SAMPLE = """\
# A file written for this test.
[default required_features=CIVIL_TIME]
[default_time_zone=+00]

[prepare_database]
CREATE TABLE Pets AS
SELECT 1 AS id, "cat" AS kind UNION ALL SELECT 2, NULL
--
ARRAY<STRUCT<id INT64, kind STRING>>[{1, "cat"}, {2, NULL}]
==
# comment before the options
[name=count_pets]
[required_features=ANALYTIC_FUNCTIONS]
SELECT COUNT(*) FROM Pets
--
ARRAY<STRUCT<INT64>>[{2}]
==
[name=sorted_kinds]
[parameters="x" AS suffix, [1, 2] AS arr]
SELECT kind || @suffix FROM Pets ORDER BY id
--
ARRAY<STRUCT<STRING>>[known order:{"catx"}, {NULL}]

NOTE: a trailing note is ignored.
==
[name=bad_cast]
SELECT CAST("x" AS INT64)
--
ERROR: generic::out_of_range: Bad int64 value: x
"""


def test_sections_tables_and_cases() -> None:
    f = parse_test_file("sample", SAMPLE)
    assert f.default_time_zone == "+00"
    assert [table_name(t) for t in f.tables] == ["Pets"]
    assert [c.name for c in f.cases] == ["count_pets", "sorted_kinds", "bad_cast"]
    count = f.cases[0]
    assert count.sql == "SELECT COUNT(*) FROM Pets"
    assert count.required_features == {"CIVIL_TIME", "ANALYTIC_FUNCTIONS"}
    assert count.expected is not None and count.expected.value.items == [(2,)]
    table_rows = f.tables[0].expected.value.items
    assert table_rows == [(1, "cat"), (2, None)]


def test_known_order_and_note() -> None:
    case = parse_test_file("sample", SAMPLE).cases[1]
    assert case.expected is not None
    value = case.expected.value
    assert isinstance(value, ArrayValue) and value.ordered
    assert value.items == [("catx",), (None,)]


def test_error_expectation() -> None:
    case = parse_test_file("sample", SAMPLE).cases[2]
    assert case.expected is not None and case.expected.error is not None
    assert "Bad int64" in case.expected.error


def test_parameters_are_split_at_top_level_and_bound() -> None:
    params = split_parameters('"a,b" AS p1, [1, 2] AS p2, CAST(NULL AS STRING) as p3')
    assert params == {"p1": '"a,b"', "p2": "[1, 2]", "p3": "CAST(NULL AS STRING)"}
    assert bind_parameters("SELECT @p1, @p2, @@sys", params) == 'SELECT ("a,b"), ([1, 2]), @@sys'


def test_types() -> None:
    t = parse_type("ARRAY<STRUCT<a INT64, STRING, date DATE, ARRAY<DOUBLE>>>")
    assert t.name == "ARRAY" and t.element is not None
    assert [(n, str(ft)) for n, ft in t.element.fields] == [
        ("a", "INT64"), (None, "STRING"), ("date", "DATE"), (None, "ARRAY<DOUBLE>")]
    assert parse_type("ARRAY<>").element is None


def test_scalar_values() -> None:
    assert parse_value('"a\\"b\\n\\x41\\u00e9"', parse_type("STRING")) == 'a"b\nAé'
    assert parse_value('b"\\x00\\xff"', parse_type("BYTES")) == b"\x00\xff"
    assert parse_value("-inf", parse_type("DOUBLE")) == float("-inf")
    assert parse_value("1.25e3", parse_type("DOUBLE")) == 1250.0
    assert parse_value("-1.500000001", parse_type("NUMERIC")) == Decimal("-1.500000001")
    assert parse_value("2014-01-02", parse_type("DATE")) == dt.date(2014, 1, 2)
    assert parse_value("2014-01-02 03:04:05.5", parse_type("DATETIME")) == dt.datetime(2014, 1, 2, 3, 4, 5, 500000)
    ts = parse_value("2014-01-02 03:04:05+00", parse_type("TIMESTAMP"))
    assert ts == dt.datetime(2014, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert parse_value("12:00:01.000001", parse_type("TIME")) == dt.time(12, 0, 1, 1)
    assert parse_value('{"a":[1,null]}', parse_type("JSON")) == JsonValue({"a": [1, None]})
    assert parse_value("1-2 3 4:5:6", parse_type("INTERVAL")) == Interval(14, 3, 14706 * 1_000_000)


def test_nested_values_with_their_own_types() -> None:
    t = parse_type("STRUCT<n INT64, rows ARRAY<>>")
    value = parse_value("{3, ARRAY<STRUCT<x BOOL>>[unknown order:{true}, {NULL}]}", t)
    count, rows = value
    assert count == 3 and not rows.ordered and rows.items == [(True,), (None,)]
    assert rows.element is not None and str(rows.element) == "STRUCT<x BOOL>"
    assert parse_value("ARRAY<INT64>(NULL)", parse_type("ARRAY<>")) is None


def test_unreadable_values_say_why() -> None:
    assert "PROTO" in (parse_expected("ARRAY<STRUCT<PROTO<x>>>[{NULL}]").unreadable or "")
    assert "sub-microsecond" in (parse_expected("ARRAY<STRUCT<TIME>>[{12:00:00.123456789}]").unreadable or "")
    with pytest.raises(FormatError):
        parse_value("12", parse_type("STRING"))


def test_lenient_reading_steps_over_unsupported_values() -> None:
    from pulse_local.conformance.values import UNSUPPORTED, parse_typed

    text = 'ARRAY<STRUCT<id INT64, e ENUM<x.E>, r RANGE<DATE>, s STRING>>[{1, E_ONE, [2020-01-01, NULL), "a,b"}]'
    with pytest.raises(FormatError):
        parse_typed(text)
    _t, value, _end = parse_typed(text, lenient=True)
    assert value.items == [(1, UNSUPPORTED, UNSUPPORTED, "a,b")]
