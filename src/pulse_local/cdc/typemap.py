"""How PostgreSQL column types land in the raw layer: Datastream's BigQuery type for each source
type, and the DuckDB type that stands in for that BigQuery type locally.

Source: Datastream's "Map data types" table (PostgreSQL -> BigQuery). Values arrive from
pgoutput and from the backfill in PostgreSQL's text format (session settings `SESSION_GUCS`);
`ColumnType.cast_sql` turns that text into the DuckDB type when a batch is written to Parquet,
and `ColumnType.prepare` pre-converts what SQL cannot (arrays -> JSON).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

#: Session settings for every connection whose text output we parse (replication and backfill),
#: so both produce the same text for the same value.
SESSION_GUCS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "3",
    "bytea_output": "hex",
}


def libpq_options() -> str:
    """`SESSION_GUCS` as a libpq ``options`` string."""
    return " ".join(f"-c {k}={v.replace(' ', '')}" for k, v in SESSION_GUCS.items())


@dataclass(frozen=True)
class ColumnType:
    """One source column type and how it is represented downstream."""

    pg_type: str          # e.g. "numeric(12,2)", "timestamptz", "text[]"
    bigquery_type: str    # what Datastream creates in BigQuery
    duckdb_type: str      # the local stand-in
    kind: str             # conversion family (see `cast_sql`)
    element_kind: str = ""  # for arrays: how elements become JSON
    note: str = ""

    def cast_sql(self, col: str) -> str:
        """SQL turning the text column `col` (a quoted identifier) into `duckdb_type`."""
        match self.kind:
            case "int" | "float" | "bool" | "date" | "time" | "timestamptz" | "decimal" \
                    | "interval" | "json":
                return f"CAST({col} AS {self.duckdb_type})"
            case "timestamp":  # BigQuery TIMESTAMP is an instant: naive source values are UTC
                return f"timezone('UTC', CAST({col} AS TIMESTAMP))"
            case "money":
                return (f"CAST(replace(replace(replace({col}, '$', ''), ',', ''), ' ', '') "
                        "AS DOUBLE)")
            case "bytes":
                return f"from_hex(substr({col}, 3))"
            case "timetz":
                return f"CAST(CAST({col} AS TIMETZ) AS TIME)"
            case "array":
                return f"CAST({col} AS JSON)"  # `prepare` already made it JSON text
            case _:
                return col  # string

    @property
    def needs_prepare(self) -> bool:
        return self.kind == "array"

    def prepare(self, text: str | None) -> str | None:
        """Python-side conversion before `cast_sql` (only arrays: PostgreSQL literal -> JSON)."""
        if text is None or self.kind != "array":
            return text
        return json.dumps(_array_to_python(parse_pg_array(text), self.element_kind),
                          separators=(",", ":"), ensure_ascii=False)


# type oid -> (name, kind, BigQuery type, DuckDB type)
_SCALARS: dict[int, tuple[str, str, str, str]] = {
    16: ("boolean", "bool", "BOOL", "BOOLEAN"),
    17: ("bytea", "bytes", "BYTES", "BLOB"),
    18: ('"char"', "string", "STRING", "VARCHAR"),
    19: ("name", "string", "STRING", "VARCHAR"),
    20: ("bigint", "int", "INT64", "BIGINT"),
    21: ("smallint", "int", "INT64", "BIGINT"),
    23: ("integer", "int", "INT64", "BIGINT"),
    25: ("text", "string", "STRING", "VARCHAR"),
    26: ("oid", "int", "INT64", "BIGINT"),
    114: ("json", "json", "JSON", "JSON"),
    142: ("xml", "string", "STRING", "VARCHAR"),
    650: ("cidr", "string", "STRING", "VARCHAR"),
    700: ("real", "float", "FLOAT64", "DOUBLE"),
    701: ("double precision", "float", "FLOAT64", "DOUBLE"),
    790: ("money", "money", "FLOAT64", "DOUBLE"),
    774: ("macaddr8", "string", "STRING", "VARCHAR"),
    829: ("macaddr", "string", "STRING", "VARCHAR"),
    869: ("inet", "string", "STRING", "VARCHAR"),
    1042: ("character", "string", "STRING", "VARCHAR"),
    1043: ("character varying", "string", "STRING", "VARCHAR"),
    1082: ("date", "date", "DATE", "DATE"),
    1083: ("time", "time", "TIME", "TIME"),
    1114: ("timestamp", "timestamp", "TIMESTAMP", "TIMESTAMPTZ"),
    1184: ("timestamptz", "timestamptz", "TIMESTAMP", "TIMESTAMPTZ"),
    1186: ("interval", "interval", "INTERVAL", "INTERVAL"),
    1266: ("timetz", "timetz", "TIME", "TIME"),
    1560: ("bit", "string", "BYTES", "VARCHAR"),
    1562: ("bit varying", "string", "BYTES", "VARCHAR"),
    1700: ("numeric", "numeric", "", ""),
    2950: ("uuid", "string", "STRING", "VARCHAR"),
    2970: ("txid_snapshot", "string", "STRING", "VARCHAR"),
    3614: ("tsvector", "string", "STRING", "VARCHAR"),
    3615: ("tsquery", "string", "STRING", "VARCHAR"),
    3802: ("jsonb", "json", "JSON", "JSON"),
}

#: Geometric types Datastream does not replicate; kept locally as their text.
_UNSUPPORTED = {600: "point", 601: "lseg", 602: "path", 603: "box", 604: "polygon", 628: "line",
                718: "circle"}

# array oid -> element oid
_ARRAYS: dict[int, int] = {
    1000: 16, 1001: 17, 1002: 18, 1003: 19, 1016: 20, 1005: 21, 1007: 23, 1009: 25, 1028: 26,
    199: 114, 143: 142, 651: 650, 1021: 700, 1022: 701, 791: 790, 775: 774, 1040: 829,
    1041: 869, 1014: 1042, 1015: 1043, 1182: 1082, 1183: 1083, 1115: 1114, 1185: 1184,
    1187: 1186, 1270: 1266, 1561: 1560, 1563: 1562, 1231: 1700, 2951: 2950, 3807: 3802,
}


def numeric_type(typmod: int) -> ColumnType:
    """numeric(p,s): BigQuery NUMERIC when it fits (<= 29 integer digits, scale <= 9), else
    BIGNUMERIC; unconstrained numeric is STRING (BigQuery numerics need a fixed precision)."""
    if typmod < 4:
        return ColumnType("numeric", "STRING", "VARCHAR", "string",
                          note="unconstrained numeric: STRING, as Datastream does")
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0x7FF
    bigquery = "NUMERIC" if precision - scale <= 29 and scale <= 9 else "BIGNUMERIC"
    name = f"numeric({precision},{scale})"
    if precision <= 38:
        return ColumnType(name, bigquery, f"DECIMAL({precision},{scale})", "decimal")
    return ColumnType(name, bigquery, "DOUBLE", "float",
                      note="DuckDB DECIMAL holds 38 digits at most: DOUBLE locally")


def _element_kind(elem_oid: int) -> str:
    kind = _SCALARS.get(elem_oid, ("", "string", "", ""))[1]
    if kind in ("int", "float", "numeric", "money"):
        return "number"
    if kind in ("bool", "json", "bytes"):
        return kind
    return "string"


def map_type(type_oid: int, typmod: int = -1, *, custom: CustomType | None = None) -> ColumnType:
    """The `ColumnType` of a column given its type OID and modifier (from a Relation message or
    the catalog). Non-built-in types need `custom` (see `CustomType`, from the catalog)."""
    if type_oid == 1700:
        return numeric_type(typmod)
    if type_oid in _SCALARS:
        name, kind, bigquery, duck = _SCALARS[type_oid]
        return ColumnType(name, bigquery, duck, kind)
    if type_oid in _ARRAYS:
        elem = _ARRAYS[type_oid]
        elem_name = _SCALARS[elem][0]
        note = ("Datastream does not support arrays of dates/timestamps"
                if elem in (1082, 1114, 1184) else "")
        return ColumnType(f"{elem_name}[]", "JSON", "JSON", "array", _element_kind(elem), note)
    if type_oid in _UNSUPPORTED:
        return ColumnType(_UNSUPPORTED[type_oid], "UNSUPPORTED", "VARCHAR", "string",
                          note="not replicated by Datastream; kept as text locally")
    if custom is not None:
        return custom.column_type()
    return ColumnType(f"oid {type_oid}", "STRING", "VARCHAR", "string",
                      note="unknown type: kept as its text form")


@dataclass(frozen=True)
class CustomType:
    """A non-built-in type as the catalog describes it (`pg_type`)."""

    name: str
    typtype: str           # 'e' enum, 'd' domain, 'c' composite, 'b' base, 'r' range
    base_oid: int = 0      # domains: the base type
    base_typmod: int = -1
    element_oid: int = 0   # arrays of custom types

    def column_type(self) -> ColumnType:
        if self.typtype == "d" and self.base_oid:
            base = map_type(self.base_oid, self.base_typmod)
            return ColumnType(f"{self.name} (domain over {base.pg_type})", base.bigquery_type,
                              base.duckdb_type, base.kind, base.element_kind, base.note)
        if self.element_oid:
            return ColumnType(f"{self.name}", "JSON", "JSON", "array", "string")
        if self.typtype == "e":
            return ColumnType(f"{self.name} (enum)", "STRING", "VARCHAR", "string")
        return ColumnType(self.name, "STRING", "VARCHAR", "string",
                          note="kept as its text form")


# PostgreSQL array literals -------------------------------------------------------------------
def parse_pg_array(text: str) -> list[Any]:
    """Parse an array literal such as ``{1,"a b",NULL,{2,3}}`` into nested lists of str/None."""
    pos = 0
    if text.startswith("["):  # explicit bounds: [0:2]={...}
        pos = text.index("=") + 1

    def parse(i: int) -> tuple[list[Any], int]:
        if text[i] != "{":
            raise ValueError(f"not an array literal: {text!r}")
        i += 1
        items: list[Any] = []
        while i < len(text):
            ch = text[i]
            if ch == "}":
                return items, i + 1
            if ch == ",":
                i += 1
                continue
            if ch == "{":
                sub, i = parse(i)
                items.append(sub)
            elif ch == '"':
                i += 1
                buf = []
                while text[i] != '"':
                    if text[i] == "\\":
                        i += 1
                    buf.append(text[i])
                    i += 1
                items.append("".join(buf))
                i += 1
            else:
                j = i
                while text[j] not in ",}":
                    j += 1
                token = text[i:j].strip()
                items.append(None if token == "NULL" else token)
                i = j
        raise ValueError(f"unterminated array literal: {text!r}")

    result, _ = parse(pos)
    return result


def _array_to_python(items: list[Any], element_kind: str) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list):
            out.append(_array_to_python(item, element_kind))
        elif item is None:
            out.append(None)
        elif element_kind == "number":
            plain = item.replace("$", "").replace(",", "")
            out.append(int(plain) if plain.lstrip("-").isdigit() else float(plain))
        elif element_kind == "bool":
            out.append(item == "t")
        elif element_kind == "json":
            out.append(json.loads(item))
        elif element_kind == "bytes":
            out.append(base64.b64encode(bytes.fromhex(item[2:])).decode("ascii"))
        else:
            out.append(item)
    return out
