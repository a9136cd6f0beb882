"""Typed values of ZetaSQL's compliance files, and their comparison with DuckDB results.

A compliance file prints an expected result as a type followed by a value, for example
``ARRAY<STRUCT<a INT64, b STRING>>[unknown order:{1, "x"}, {2, NULL}]``. `parse_typed`
reads such text into a `SqlType` and plain Python values (int, float, Decimal, str,
bytes, date, datetime, time, parsed JSON, `Interval`, `ArrayValue`, tuple for STRUCT).
`pulse_local.conformance.comparison` checks DuckDB results against them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: ZetaSQL type names -> the family a BigQuery/DuckDB value is compared within.
FAMILIES: dict[str, str] = {
    "BOOL": "bool", "INT32": "int", "INT64": "int", "UINT32": "int", "UINT64": "int",
    "FLOAT": "float", "DOUBLE": "float", "NUMERIC": "numeric", "BIGNUMERIC": "numeric",
    "STRING": "string", "BYTES": "bytes", "DATE": "date", "TIMESTAMP": "timestamp",
    "DATETIME": "datetime", "TIME": "time", "JSON": "json", "INTERVAL": "interval",
    "ARRAY": "array", "STRUCT": "struct",
}


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
