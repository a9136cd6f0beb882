"""A DuckDB result against a typed value of ZetaSQL's compliance files.

`compare` checks a DuckDB value (its Python value and `DuckDBPyType`) against a value read by
`pulse_local.conformance.values`; `compare_rows` a query's rows against ``ARRAY<STRUCT<...>>``:
same type family and equal values, floats within ZetaSQL's default margin.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pulse_local.conformance.values import ArrayValue, JsonValue, SqlType

#: ZetaSQL's default float margin (FloatMargin::kDefaultUlpBits): 2^4 units in the last place.
ULP_BITS = 4


# --------------------------------------------------------------------------- DuckDB types


_DUCK_FAMILIES: dict[str, str] = {
    "boolean": "bool", "tinyint": "int", "smallint": "int", "integer": "int", "bigint": "int",
    "hugeint": "int", "utinyint": "int", "usmallint": "int", "uinteger": "int", "ubigint": "int",
    "uhugeint": "int", "float": "float", "double": "float", "decimal": "numeric",
    "varchar": "string", "blob": "bytes", "date": "date", "timestamp with time zone": "timestamp",
    "timestamp": "datetime", "timestamp_s": "datetime", "timestamp_ms": "datetime",
    "timestamp_ns": "datetime", "time": "time", "json": "json", "interval": "interval",
    "list": "array", "array": "array", "struct": "struct", "null": "null",
}


def duck_family(duck_type: Any) -> str:
    """The family of a DuckDB result type (a `DuckDBPyType`); "other" when unknown."""
    if str(duck_type) == "JSON":
        return "json"
    return _DUCK_FAMILIES.get(str(duck_type.id).lower(), "other")


def duck_children(duck_type: Any) -> list[Any]:
    """Element type (lists) or field types (structs) of a DuckDB type."""
    return [child for _name, child in duck_type.children]


# --------------------------------------------------------------------------- comparison


def floats_equal(x: float, y: float, *, single: bool = False) -> bool:
    """ZetaSQL's FloatMargin::UlpMargin(4): equal within 2^4 ULPs, NaN equals NaN."""
    if x == y:
        return True
    if math.isnan(x) and math.isnan(y):
        return True
    if not (math.isfinite(x) and math.isfinite(y)):
        return False
    eps = 2.0 ** -23 if single else 2.0 ** -52
    scale = 2 ** ULP_BITS
    largest = max(abs(x), abs(y))
    ulp = math.ldexp(eps, math.frexp(largest)[1] - 1) if largest else 0.0
    return abs(x - y) <= max(scale * ulp, scale * eps)


@dataclass
class Mismatch:
    """Why a value differs: a dotted path and a message."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def compare(expected: Any, t: SqlType, actual: Any, duck_type: Any, path: str = "") -> Mismatch | None:
    """Compare an expected typed value with a DuckDB value and type; None when they agree."""
    family = t.family if t.name != "ARRAY" or t.element is not None else "array"
    got_family = duck_family(duck_type)
    if got_family not in (family, "null"):
        return Mismatch(path, f"type {got_family} ({duck_type}) where BigQuery returns {t}")
    if expected is None or actual is None:
        if expected is None and actual is None:
            return None
        return Mismatch(path, f"expected {_show(expected)}, got {_show(actual)}")
    if family == "array":
        return _compare_arrays(expected, t, actual, duck_type, path)
    if family == "struct":
        values = list(actual.values()) if isinstance(actual, dict) else list(actual)
        if len(values) != len(t.fields):
            return Mismatch(path, f"STRUCT with {len(values)} fields, expected {len(t.fields)}")
        children = duck_children(duck_type)
        for i, ((_name, ftype), exp_v, got_v, child) in enumerate(zip(t.fields, expected, values, children, strict=True)):
            bad = compare(exp_v, ftype, got_v, child, f"{path}.{i}" if path else str(i))
            if bad:
                return bad
        return None
    return None if scalar_equal(expected, t, actual) else Mismatch(
        path, f"expected {_show(expected)}, got {_show(actual)}")


def scalar_equal(expected: Any, t: SqlType, actual: Any) -> bool:
    """Equality of two non-NULL scalars of the same family."""
    family = t.family
    if family == "float":
        return isinstance(actual, (int, float)) and floats_equal(float(expected), float(actual), single=t.name == "FLOAT")
    if family == "numeric":
        try:
            return Decimal(expected) == Decimal(str(actual))
        except InvalidOperation:
            return False
    if family == "timestamp":
        return isinstance(actual, dt.datetime) and actual.tzinfo is not None and actual == expected
    if family == "json":
        got = json.loads(actual) if isinstance(actual, str) else actual
        return _json_equal(expected.value, got)
    if family == "interval":
        return False  # DuckDB hands intervals to Python as timedelta (months lost): never equal
    if family == "bool":
        return isinstance(actual, bool) and actual == expected
    if family == "int":
        return isinstance(actual, int) and not isinstance(actual, bool) and actual == expected
    return type(actual) is type(expected) and actual == expected


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return floats_equal(float(a), float(b))
    return a == b


def _compare_arrays(expected: ArrayValue, t: SqlType, actual: Any, duck_type: Any, path: str) -> Mismatch | None:
    items = list(actual)
    if len(items) != len(expected.items):
        return Mismatch(path, f"{len(items)} elements, expected {len(expected.items)}")
    element = t.element or expected.element
    child = duck_children(duck_type)[0] if duck_family(duck_type) == "array" else duck_type
    if element is None:
        return None if not items else Mismatch(path, "array of unknown element type")
    if expected.ordered:
        for i, (e, a) in enumerate(zip(expected.items, items, strict=True)):
            bad = compare(e, element, a, child, f"{path}[{i}]")
            if bad:
                return bad
        return None
    unmatched = list(range(len(items)))
    for i, e in enumerate(expected.items):
        for j in unmatched:
            if compare(e, element, items[j], child) is None:
                unmatched.remove(j)
                break
        else:
            return Mismatch(path, f"no row/element equal to expected [{i}] {_show(e)}")
    return None


def _show(value: Any) -> str:
    if isinstance(value, ArrayValue):
        return "[" + ", ".join(_show(v) for v in value.items) + "]"
    if isinstance(value, JsonValue):
        return json.dumps(value.value)
    return repr(value)


def show(value: Any) -> str:
    """A short readable form of an expected or actual value (for reports)."""
    return _show(value)


class _RowType:
    """A stand-in DuckDB struct type for a result row (its columns' DuckDB types)."""

    id = "struct"

    def __init__(self, column_types: list[Any]) -> None:
        self.children = [(f"c{i}", t) for i, t in enumerate(column_types)]

    def __str__(self) -> str:
        return "ROW(" + ", ".join(str(t) for _n, t in self.children) + ")"


def compare_rows(expected: ArrayValue, row_type: SqlType, rows: list[tuple[Any, ...]],
                 column_types: list[Any]) -> Mismatch | None:
    """Compare a query's rows and column types with ``ARRAY<STRUCT<...>>[...]``."""
    if len(column_types) != len(row_type.fields):
        return Mismatch("", f"{len(column_types)} columns, expected {len(row_type.fields)}")
    table_type = SqlType("ARRAY", row_type)
    return _compare_arrays(expected, table_type, rows, _ListOf(_RowType(column_types)), "row")


class _ListOf:
    id = "list"

    def __init__(self, child: Any) -> None:
        self.children = [("child", child)]

    def __str__(self) -> str:
        return f"{self.children[0][1]}[]"
