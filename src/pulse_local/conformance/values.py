"""Typed values of ZetaSQL's compliance files, and their comparison with DuckDB results.

A compliance file prints an expected result as a type followed by a value, for example
``ARRAY<STRUCT<a INT64, b STRING>>[unknown order:{1, "x"}, {2, NULL}]``. `parse_typed`
reads such text into a `SqlType` and plain Python values (int, float, Decimal, str,
bytes, date, datetime, time, parsed JSON, `Interval`, `ArrayValue`, tuple for STRUCT).
`compare` checks a DuckDB result (its Python values and `DuckDBPyType`) against them:
same type family and equal values, floats within ZetaSQL's default margin.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

#: ZetaSQL type names -> the family a BigQuery/DuckDB value is compared within.
FAMILIES: dict[str, str] = {
    "BOOL": "bool", "INT32": "int", "INT64": "int", "UINT32": "int", "UINT64": "int",
    "FLOAT": "float", "DOUBLE": "float", "NUMERIC": "numeric", "BIGNUMERIC": "numeric",
    "STRING": "string", "BYTES": "bytes", "DATE": "date", "TIMESTAMP": "timestamp",
    "DATETIME": "datetime", "TIME": "time", "JSON": "json", "INTERVAL": "interval",
    "ARRAY": "array", "STRUCT": "struct",
}

#: ZetaSQL's default float margin (FloatMargin::kDefaultUlpBits): 2^4 units in the last place.
ULP_BITS = 4


class FormatError(ValueError):
    """The text is not a value of the compliance file format (or not one we read)."""


class UnsupportedType(FormatError):
    """A type with no BigQuery counterpart (PROTO, ENUM, RANGE, UUID, MAP, GEOGRAPHY, ...)."""


@dataclass(frozen=True)
class SqlType:
    """A ZetaSQL type: `name` is ARRAY, STRUCT or a scalar; `params` the element/fields."""

    name: str
    element: SqlType | None = None
    fields: tuple[tuple[str | None, SqlType], ...] = ()

    @property
    def family(self) -> str:
        """The comparison family ("int", "array", ...); raises UnsupportedType."""
        family = FAMILIES.get(self.name)
        if family is None:
            raise UnsupportedType(f"type {self.name} has no BigQuery counterpart")
        return family

    def check_supported(self) -> None:
        """Raise UnsupportedType if this type or a nested one has no BigQuery counterpart."""
        _ = self.family
        if self.element is not None:
            self.element.check_supported()
        for _name, ftype in self.fields:
            ftype.check_supported()

    def mentions(self, name: str) -> bool:
        """True when this type or a nested one is `name`."""
        if self.name == name:
            return True
        if self.element is not None and self.element.mentions(name):
            return True
        return any(f.mentions(name) for _n, f in self.fields)

    def __str__(self) -> str:
        if self.name == "ARRAY":
            return f"ARRAY<{self.element or ''}>"
        if self.name == "STRUCT":
            inner = ", ".join(f"{n} {t}" if n else str(t) for n, t in self.fields)
            return f"STRUCT<{inner}>"
        return self.name


@dataclass
class ArrayValue:
    """An array value; `ordered` is False when the file says ``unknown order:``."""

    items: list[Any] = field(default_factory=list)
    ordered: bool = True
    element: SqlType | None = None  # the element type when the value printed its own type


@dataclass(frozen=True)
class Interval:
    """An INTERVAL as (months, days, microseconds)."""

    months: int
    days: int
    micros: int


# --------------------------------------------------------------------------- reading


_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9.]*|<|>|,|\(|\)|\d+)")


#: Stands for a value of an unsupported type read in lenient mode (table loading).
UNSUPPORTED = object()


class _Reader:
    """A cursor over the text of a typed value; `lenient` skips values of unsupported types."""

    def __init__(self, text: str, pos: int = 0, lenient: bool = False) -> None:
        self.text = text
        self.pos = pos
        self.lenient = lenient

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, n: int = 1) -> str:
        self.skip_ws()
        return self.text[self.pos : self.pos + n]

    def startswith(self, prefix: str, *, ignore_case: bool = False) -> bool:
        self.skip_ws()
        chunk = self.text[self.pos : self.pos + len(prefix)]
        return chunk.lower() == prefix.lower() if ignore_case else chunk == prefix

    def expect(self, literal: str) -> None:
        if not self.startswith(literal):
            raise FormatError(f"expected {literal!r} at {self.pos}: {self.text[self.pos:self.pos + 40]!r}")
        self.pos += len(literal)

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        self.skip_ws()
        m = pattern.match(self.text, self.pos)
        if m:
            self.pos = m.end()
        return m

    def token(self) -> str:
        m = self.match(_TOKEN)
        if not m:
            raise FormatError(f"expected a type at {self.pos}: {self.text[self.pos:self.pos + 40]!r}")
        return m.group(1)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9.]*")


def _read_type(r: _Reader) -> SqlType:
    name = r.token().upper()
    if name == "ARRAY":
        r.expect("<")
        if r.startswith(">"):
            r.expect(">")
            return SqlType("ARRAY", None)
        element = _read_type(r)
        r.expect(">")
        return SqlType("ARRAY", element)
    if name == "STRUCT":
        r.expect("<")
        fields: list[tuple[str | None, SqlType]] = []
        while not r.startswith(">"):
            save = r.pos
            first = r.token()
            nxt = r.peek()
            if nxt and (nxt[0].isalpha() or nxt[0] == "_"):
                fields.append((first, _read_type(r)))
            else:
                r.pos = save
                fields.append((None, _read_type(r)))
            if r.startswith(","):
                r.expect(",")
        r.expect(">")
        return SqlType("STRUCT", None, tuple(fields))
    if r.startswith("<"):  # RANGE<...>, MAP<...>: read and keep the name
        depth = 0
        while True:
            ch = r.text[r.pos]
            r.pos += 1
            depth += ch == "<"
            depth -= ch == ">"
            if depth == 0:
                break
    if r.startswith("("):  # NUMERIC(10, 2), STRING(10): parameters do not change the family
        while r.text[r.pos] != ")":
            r.pos += 1
        r.pos += 1
    return SqlType(name)


def parse_type(text: str) -> SqlType:
    """Parse a ZetaSQL type such as ``ARRAY<STRUCT<a INT64, STRING>>``."""
    r = _Reader(text)
    t = _read_type(r)
    if r.peek():
        raise FormatError(f"unexpected text after type: {text[r.pos:r.pos + 40]!r}")
    return t


_NULL = re.compile(r"NULL\b")
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?inf\b|nan\b|-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_BOOL = re.compile(r"true\b|false\b")
_DATE = re.compile(r"(-?\d{4,5})-(\d{2})-(\d{2})")
_TIME = r"(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T]" + _TIME)
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T]" + _TIME + r"([+-]\d{2})(?::?(\d{2}))?")
_TIME_RE = re.compile(_TIME)
_INTERVAL = re.compile(r"(-?)(\d+)-(\d+) (-?\d+) (-?)(\d+):(\d+):(\d+)(?:\.(\d{1,9}))?")
_FIELD_LABEL = re.compile(r"[A-Za-z_]\w*:\s")
_ORDER = re.compile(r"(known|unknown) order:")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "`": "`",
            "a": "\a", "b": "\b", "f": "\f", "v": "\v", "?": "?"}


def _micros(fraction: str | None) -> int:
    """Microseconds of a fractional-second string; nanosecond precision must be zero."""
    if not fraction:
        return 0
    digits = fraction.ljust(9, "0")
    if digits[6:] != "000":
        raise UnsupportedType("sub-microsecond time (BigQuery keeps microseconds)")
    return int(digits[:6])


def _read_quoted(r: _Reader, as_bytes: bool) -> str | bytes:
    quote = r.text[r.pos]
    r.pos += 1
    out = bytearray()
    text = r.text
    while True:
        if r.pos >= len(text):
            raise FormatError("unterminated string")
        ch = text[r.pos]
        if ch == quote:
            r.pos += 1
            break
        if ch != "\\":
            out += ch.encode("utf-8")
            r.pos += 1
            continue
        esc = text[r.pos + 1]
        r.pos += 2
        if esc in _ESCAPES:
            out += _ESCAPES[esc].encode("utf-8")
        elif esc in "xX":
            out.append(int(text[r.pos : r.pos + 2], 16))
            r.pos += 2
        elif esc in "uU":
            width = 4 if esc == "u" else 8
            out += chr(int(text[r.pos : r.pos + width], 16)).encode("utf-8")
            r.pos += width
        elif esc in "01234567":
            out.append(int(text[r.pos - 1 : r.pos + 2], 8))
            r.pos += 2
        else:
            raise FormatError(f"unknown escape \\{esc}")
    return bytes(out) if as_bytes else out.decode("utf-8", errors="surrogateescape")


def _read_value(r: _Reader, t: SqlType | None) -> Any:
    r.skip_ws()
    if r.match(_NULL):
        return None
    # A value may carry its own type (elements of ARRAY<>, values in DML results).
    m = re.compile(r"(ARRAY|STRUCT)<").match(r.text, r.pos)
    if m:
        t = _read_type(r)
        if r.startswith("(NULL)"):
            r.expect("(NULL)")
            return None
    if t is None:
        raise FormatError(f"value without a type at {r.pos}")
    if r.lenient and t.name not in FAMILIES:
        return _skip_value(r)
    family = t.family
    if family == "array":
        r.expect("[")
        ordered = True
        m = r.match(_ORDER)
        if m:
            ordered = m.group(1) == "known"
        items: list[Any] = []
        while not r.startswith("]"):
            items.append(_read_value(r, t.element))
            if r.startswith(","):
                r.expect(",")
        r.expect("]")
        return ArrayValue(items, ordered, t.element)
    if family == "struct":
        r.expect("{")
        values: list[Any] = []
        for i in range(len(t.fields)):
            r.match(_FIELD_LABEL)
            values.append(_read_value(r, t.fields[i][1]))
            if i + 1 < len(t.fields):
                r.expect(",")
        r.expect("}")
        return tuple(values)
    return _read_scalar(r, t)


def _need(m: re.Match[str] | None, r: _Reader, what: str) -> re.Match[str]:
    if m is None:
        raise FormatError(f"expected {what} at {r.pos}: {r.text[r.pos:r.pos + 40]!r}")
    return m


def _read_scalar(r: _Reader, t: SqlType) -> Any:
    family = t.family
    if family == "bool":
        return _need(r.match(_BOOL), r, "a BOOL").group(0) == "true"
    if family == "int":
        return int(_need(r.match(_INT), r, "an integer").group(0))
    if family == "float":
        text = _need(r.match(_FLOAT), r, "a float").group(0)
        return float(text)
    if family == "numeric":
        return Decimal(_need(r.match(_DECIMAL), r, "a NUMERIC").group(0))
    if family in ("string", "bytes"):
        r.skip_ws()
        if family == "bytes":
            if r.text[r.pos] not in "bB":
                raise FormatError("expected a BYTES literal")
            r.pos += 1
        if r.text[r.pos] not in "\"'":
            raise FormatError(f"expected a quoted {family} at {r.pos}")
        return _read_quoted(r, family == "bytes")
    if family == "date":
        y, mo, d = (int(g) for g in _need(r.match(_DATE), r, "a DATE").groups())
        return dt.date(y, mo, d)
    if family == "datetime":
        g = _need(r.match(_DATETIME), r, "a DATETIME").groups()
        return dt.datetime(int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]), int(g[5]), _micros(g[6]))
    if family == "timestamp":
        g = _need(r.match(_TIMESTAMP), r, "a TIMESTAMP").groups()
        hours, minutes = int(g[7]), int(g[8] or 0)
        offset = dt.timedelta(hours=hours, minutes=minutes if hours >= 0 else -minutes)
        return dt.datetime(int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]), int(g[5]), _micros(g[6]),
                           tzinfo=dt.timezone(offset))
    if family == "time":
        g = _need(r.match(_TIME_RE), r, "a TIME").groups()
        return dt.time(int(g[0]), int(g[1]), int(g[2]), _micros(g[3]))
    if family == "json":
        r.skip_ws()
        try:
            value, end = json.JSONDecoder().raw_decode(r.text, r.pos)
        except json.JSONDecodeError as err:
            raise FormatError(f"bad JSON value: {err}") from err
        r.pos = end
        return JsonValue(value)
    if family == "interval":
        g = _need(r.match(_INTERVAL), r, "an INTERVAL").groups()
        sign = -1 if g[0] else 1
        months = sign * (int(g[1]) * 12 + int(g[2]))
        tsign = -1 if g[4] else 1
        micros = tsign * ((int(g[5]) * 3600 + int(g[6]) * 60 + int(g[7])) * 1_000_000 + _micros(g[8]))
        return Interval(months, int(g[3]), micros)
    raise UnsupportedType(f"type {t.name}")


@dataclass(frozen=True)
class JsonValue:
    """A JSON value (already parsed), kept apart from SQL strings and arrays."""

    value: Any


def _skip_value(r: _Reader) -> object:
    """Step over one value of an unsupported type (ENUM name, PROTO {...}, RANGE [a, b), UUID)."""
    r.skip_ws()
    depth, quote = 0, ""
    while r.pos < len(r.text):
        ch = r.text[r.pos]
        if quote:
            if ch == "\\":
                r.pos += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            if depth == 0:
                break
            depth -= 1
        elif ch == "," and depth == 0:
            break
        r.pos += 1
    return UNSUPPORTED


def parse_typed(text: str, *, lenient: bool = False) -> tuple[SqlType, Any, int]:
    """Parse ``TYPE VALUE`` at the start of `text`: (type, value, end position).

    `lenient` reads values of unsupported types as `UNSUPPORTED` instead of failing
    (a table can still be loaded without those columns).
    """
    r = _Reader(text, lenient=lenient)
    t = _read_type(r)
    if not lenient and (t.name != "ARRAY" or t.element is not None):
        t.check_supported()
    value = _read_value(r, t)
    return t, value, r.pos


def parse_value(text: str, t: SqlType) -> Any:
    """Parse a value of a known type (used by the unit tests and table loading)."""
    r = _Reader(text)
    value = _read_value(r, t)
    if r.peek():
        raise FormatError(f"unexpected text after value: {text[r.pos:r.pos + 40]!r}")
    return value


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
