"""Cast rules: BigQuery's text for DATE/TIME/TIMESTAMP and numbers, BYTES to STRING,
CAST to INT64 rounding, STRING(n) lengths, BIGNUMERIC precision, exact FLOAT64 to NUMERIC.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from sqlglot import exp

from pulse_local.translate.functions import macro_call
from pulse_local.translate.rules import (
    Rule,
    fail,
    fill,
    known_type,
    typed_at_bind,
)
from pulse_local.translate.rules_bytes import is_bytes


def _fractional_format(value: str, head: str, tail: str = "") -> str:
    """STRFTIME of `value` with 0, 3 or 6 fractional digits, as BigQuery prints them."""
    return (
        f"CASE WHEN MICROSECOND({value}) % 1000000 = 0 THEN STRFTIME({value}, '{head}{tail}') "
        f"WHEN MICROSECOND({value}) % 1000 = 0 THEN STRFTIME({value}, '{head}.%g{tail}') "
        f"ELSE STRFTIME({value}, '{head}.%f{tail}') END"
    )


_CIVIL_STRINGS = {
    "DATE": "CAST(__x AS VARCHAR)",
    "TIMESTAMP": _fractional_format("__x", "%Y-%m-%d %H:%M:%S"),  # BigQuery DATETIME
    "TIMESTAMPTZ": _fractional_format("__x", "%Y-%m-%d %H:%M:%S", "+00"),  # session is UTC
    "TIME": _fractional_format("(DATE '1970-01-01' + __x)", "%H:%M:%S"),
}


def rule_civil_string(node: exp.Expression) -> exp.Expression | None:
    """STRING(x) / CAST(x AS STRING) of a DATE, DATETIME, TIME or TIMESTAMP whose type is visible.

    BigQuery prints 0, 3 or 6 fractional digits and no offset for DATE/DATETIME/TIME;
    DuckDB's cast trims digits ('.1') and STRING() added '+00' to every argument.
    """
    if isinstance(node, exp.String):
        zone = node.args.get("zone")
        if zone is not None and not (isinstance(zone, exp.Literal) and zone.name.upper() in {"UTC", "+00", "Z"}):
            return None
        value = node.this
    elif isinstance(node, exp.Cast) and node.to.is_type("text", "varchar") and not isinstance(node, exp.TryCast):
        value = node.this
    else:
        return None
    template = _CIVIL_STRINGS.get(known_type(value) or "")
    return fill(template, x=value) if template else None


def _is_bytes(node: exp.Expression) -> bool:
    """True when `node` is evidently BYTES (a bytes literal, a cast to BYTES, ...)."""
    return is_bytes(node)


def rule_bytes_to_string(node: exp.Expression) -> exp.Expression | None:
    """CAST(bytes AS STRING) decodes UTF-8 in BigQuery (raising on invalid UTF-8); DuckDB's
    cast writes the bytes as escaped text ('\\xE2\\x82\\xAC'). DuckDB's DECODE does what BigQuery does."""
    if (isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast) and node.to.is_type("text", "varchar")
            and not node.args.get("format") and _is_bytes(node.this)):
        return exp.Anonymous(this="DECODE", expressions=[node.this])
    return None


_WIDE_FLOAT_TEXT = ("ERROR('CAST(FLOAT64 AS STRING) of a whole number of 16 or more digits: BigQuery writes it "
                    "in exponent notation, which is not reproduced; use FORMAT')")


def _number_text(wide_float: str, other: str = "CAST(__x AS VARCHAR)") -> str:
    """The STRING BigQuery writes for __x, `wide_float` for whole FLOAT64s of 16+ digits,
    `other` for the other types."""
    return (
        "CASE WHEN TYPEOF(__x) LIKE 'DECIMAL%' "
        "THEN regexp_replace(regexp_replace(CAST(__x AS VARCHAR), '(\\.[0-9]*[1-9])0+$|\\.0+$', '\\1'), '^-0$', '0') "
        "WHEN TYPEOF(__x) IN ('DOUBLE', 'FLOAT') THEN CASE "
        f"WHEN regexp_full_match(CAST(__x AS VARCHAR), '-?[0-9]{{16,}}\\.0') THEN {wide_float} "
        "ELSE regexp_replace(CAST(__x AS VARCHAR), '^(-?[0-9]+)\\.0$', '\\1') END "
        f"ELSE {other} END"
    )


def rule_number_to_string(node: exp.Expression) -> exp.Expression | None:
    """CAST(x AS STRING) of a NUMERIC or FLOAT64: BigQuery writes '1.5' and '2' where DuckDB
    writes '1.500000000' and '2.0'. Branches on TYPEOF(x), which DuckDB folds when it plans
    the query, so other types keep DuckDB's cast (dates and timestamps: rule_civil_string)."""
    if not isinstance(node, exp.Cast) or not node.to.is_type("text", "varchar") or node.args.get("format"):
        return None
    if node.to.expressions or node.meta.get("pulse_rule"):
        return None
    value = node.this
    if isinstance(value, exp.Literal) and not value.is_string and re.search(r"[.eE]", value.this):
        value = exp.cast(value, exp.DataType.build("DOUBLE"))  # a FLOAT64 literal
    elif isinstance(value, (exp.Literal, exp.Null)) or known_type(value) in {"VARCHAR", "TEXT", "BIGINT", "INT", "BOOLEAN"}:
        return None
    other = "CAST(__x AS VARCHAR)"
    if typed_at_bind(node):
        # a TIMESTAMP / DATETIME / TIME column: BigQuery's 0/3/6 fractional digits (typed macro)
        other = f"{macro_call('bq_civil_text')}(__x)"
    if isinstance(node, exp.TryCast):  # SAFE_CAST: NULL instead of an error
        return fill(_number_text("NULL", other), x=value)
    return fill(_number_text(_WIDE_FLOAT_TEXT, other), x=value)


def rule_string_to_bytes(node: exp.Expression) -> exp.Expression | None:
    """CAST(x AS BYTES) / SAFE_CAST of a STRING gives its UTF-8 bytes in BigQuery; DuckDB's
    VARCHAR -> BLOB cast reads `\\x..` escapes (`'a\\x41'` became `aA`) and refuses
    non-ASCII text. A TYPEOF branch, folded when DuckDB plans the query, takes `ENCODE`
    (UTF-8) for VARCHAR values; BYTES values keep the cast. String literals are done by
    `rules_bytes` (`ENCODE('...')`)."""
    if not isinstance(node, (exp.Cast, exp.TryCast)) or node.args.get("format") or node.meta.get("pulse_rule"):
        return None
    if not node.to.is_type("blob", "binary", "varbinary"):
        return None
    value = node.this
    if isinstance(value, (exp.Literal, exp.Null)) or is_bytes(value):
        return None
    cast = "TRY_CAST" if isinstance(node, exp.TryCast) else "CAST"
    out = fill(
        f"CASE WHEN TYPEOF(__x) = 'VARCHAR' THEN ENCODE(CAST(__x AS VARCHAR)) ELSE {cast}(__x AS BLOB) END",
        x=value,
    )
    for inner in out.find_all(exp.Cast):
        inner.meta["pulse_rule"] = True
    return out


def rule_cast_to_int64(node: exp.Expression) -> exp.Expression | None:
    """CAST(FLOAT64 AS INT64) rounds halfway cases away from zero in BigQuery (2.5 -> 3);
    DuckDB rounds them to even (2.5 -> 2). A TYPEOF branch, folded when DuckDB plans the
    query, rounds FLOAT64 values first; other types keep DuckDB's cast. A float literal is
    a FLOAT64, so one beyond INT64 raises as in BigQuery."""
    if not isinstance(node, exp.Cast) or not node.to.is_type("bigint") or node.args.get("format"):
        return None
    if node.meta.get("pulse_rule"):
        return None
    value = node.this
    if isinstance(value, exp.Literal) and not value.is_string and re.search(r"[.eE]", value.this):
        value = exp.cast(value, exp.DataType.build("DOUBLE"))
    elif isinstance(value, (exp.Literal, exp.Null)) or known_type(value) in {"VARCHAR", "TEXT", "BIGINT", "INT", "BOOLEAN"}:
        return None
    cast = "TRY_CAST" if isinstance(node, exp.TryCast) else "CAST"
    out = fill(
        f"CASE WHEN TYPEOF(__x) IN ('DOUBLE', 'FLOAT') THEN {cast}(ROUND({cast}(__x AS DOUBLE)) AS BIGINT) "
        f"ELSE {cast}(__x AS BIGINT) END",
        x=value,
    )
    for inner in out.find_all(exp.Cast):
        inner.meta["pulse_rule"] = True
    return out


def rule_time_literal_range(node: exp.Expression) -> exp.Expression | None:
    """TIME '24:00:00' is out of range in BigQuery (raises); DuckDB accepts it."""
    if (isinstance(node, exp.Cast) and node.to.is_type("time") and isinstance(node.this, exp.Literal)
            and node.this.is_string and re.match(r"\s*24:", node.this.name)):
        raise fail(node, f"TIME '{node.this.name}'", "BigQuery's TIME ends at 23:59:59.999999")
    return None


def rule_string_length_parameter(node: exp.Expression) -> exp.Expression | None:
    """CAST(x AS STRING(n)) raises in BigQuery when x is longer than n; DuckDB ignores n.
    Checked when run; a parameterized type inside ARRAY/STRUCT is refused."""
    if not isinstance(node, exp.Cast) or node.meta.get("pulse_length_checked"):
        return None
    to = node.to
    nested = [t for t in to.find_all(exp.DataType) if t is not to and t.is_type("text", "varchar") and t.expressions]
    if nested:
        raise fail(node, f"CAST to {to.sql(dialect='bigquery')}", "a length-limited STRING inside ARRAY/STRUCT is not checked",
                   "Cast to ARRAY<STRING> and check lengths explicitly.")
    if not (to.is_type("text", "varchar") and to.expressions):
        return None
    node.meta["pulse_length_checked"] = True
    limit = to.expressions[0]
    length = limit.this if isinstance(limit, exp.DataTypeParam) else limit
    node.set("to", exp.DataType.build("VARCHAR"))
    message = f"STRING({length.sql()}) has a maximum length of {length.sql()} (BigQuery raises this error)"
    return fill(f"CASE WHEN LENGTH(__v) > {length.sql()} THEN ERROR('{message}') ELSE __v END", v=node)


def _beyond_numeric(text: str) -> bool:
    """True when the number `text` needs more than NUMERIC's 29 integer / 9 fractional digits."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return False
    if not value.is_finite():
        return False
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        return False
    kept = list(digits)
    while exponent < 0 and len(kept) > 1 and kept[-1] == 0:  # trailing zeros (no rounding context)
        kept.pop()
        exponent += 1
    return exponent < -9 or len(kept) + exponent > 29


def rule_bignumeric_precision(node: exp.Expression) -> exp.Expression | None:
    """A BIGNUMERIC value with more than 9 decimal digits (or 29 integer digits): DuckDB's
    DECIMAL(38, 9), which stands for BIGNUMERIC, would round it silently."""
    if not isinstance(node, exp.DataType) or node.this != exp.DataType.Type.BIGDECIMAL or node.expressions:
        return None
    cast = node.find_ancestor(exp.Cast)
    if cast is None or cast.this is None:
        return None
    for literal in cast.this.find_all(exp.Literal):
        if _beyond_numeric(literal.name):
            raise fail(cast, f"BIGNUMERIC value {literal.name}",
                       "DuckDB's DECIMAL stops at 38 digits with 9 decimals here, so it would be rounded",
                       "Use NUMERIC precision (9 decimal digits), or run this model on BigQuery.")
    return None


_DECIMALS = (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL)


_NOT_FLOAT = {"VARCHAR", "TEXT", "BIGINT", "INT", "BOOLEAN", "DECIMAL", "DATE", "TIMESTAMP", "TIMESTAMPTZ"}


def _exact_decimal(value: exp.Expression, to: exp.DataType, try_: bool) -> exp.Expression:
    """CAST(value AS to) where a FLOAT64 `value` converts from its exact binary value."""
    cast = "TRY_CAST" if try_ else "CAST"
    target = to.sql(dialect="duckdb")
    out = fill(
        f"CASE WHEN TYPEOF(__x) IN ('DOUBLE', 'FLOAT') THEN {cast}({cast}({cast}(TRUNC(CAST(__x AS DOUBLE)) AS HUGEINT) "
        f"AS DECIMAL(38, 9)) + {cast}(CAST(__x AS DOUBLE) - TRUNC(CAST(__x AS DOUBLE)) AS DECIMAL(38, 9)) AS {target}) "
        f"ELSE {cast}(__x AS {target}) END",
        x=value,
    )
    for inner in out.find_all(exp.Cast):
        inner.meta["pulse_exact_decimal"] = True
    return out


def rule_double_to_numeric(node: exp.Expression) -> exp.Expression | None:
    """CAST(float64 AS NUMERIC): BigQuery converts the exact binary value (1e26 is
    100000000000000004764729344); DuckDB's conversion is off for large values
    (99999999999999996863366107.917975552, and 8.5e15 gives 8499999999999999.588958208).
    A FLOAT64 goes through its exact whole part (HUGEINT) plus its fraction; a TYPEOF
    branch DuckDB folds keeps every other type's cast. A STRUCT literal cast to a STRUCT
    type gets the same treatment field by field."""
    if not isinstance(node, exp.Cast) or node.meta.get("pulse_exact_decimal") or node.args.get("format"):
        return None
    to, value = node.to, node.this
    try_ = isinstance(node, exp.TryCast)
    if to.this == exp.DataType.Type.STRUCT and isinstance(value, (exp.Tuple, exp.Struct)):
        fields = [f for f in to.expressions if isinstance(f, exp.ColumnDef)]
        values = (list(value.expressions) if isinstance(value, exp.Tuple) else [
            f.expression if isinstance(f, exp.PropertyEQ) else f.this if isinstance(f, exp.Alias) else f
            for f in value.expressions])
        if len(fields) != len(to.expressions) or len(fields) != len(values) or not any(
                f.args.get("kind") is not None and f.args["kind"].this in _DECIMALS for f in fields):
            return None
        items: list[exp.Expression] = []
        for field, item in zip(fields, values, strict=True):
            kind = field.args["kind"]
            cast = (exp.TryCast if try_ else exp.Cast)(this=item.copy(), to=kind.copy())
            items.append(exp.PropertyEQ(this=exp.to_identifier(field.name),
                                        expression=rule_double_to_numeric(cast) or cast))
        return exp.Struct(expressions=items)
    if to.this not in _DECIMALS:
        return None
    inner = value.this if isinstance(value, exp.Paren) else value
    if isinstance(inner, exp.Literal) and not inner.is_string and re.search(r"[eE]", inner.this):
        return _exact_decimal(exp.cast(inner.copy(), exp.DataType.build("DOUBLE")), to, try_)  # DuckDB: a DOUBLE
    if isinstance(inner, (exp.Literal, exp.Null)) or (known_type(inner) or "") in _NOT_FLOAT:
        return None
    return _exact_decimal(value, to, try_)


def rule_cast_numeric_precision(node: exp.Expression) -> exp.Expression | None:
    """CAST(x AS NUMERIC) is DECIMAL(38, 9). rules.rule_numeric_type fixes the DataType node,
    but sqlglot's parser shares that node with a struct field definition inside UNNEST, so
    the Cast kept DuckDB's bare DECIMAL, i.e. DECIMAL(18, 3) (1.23456 became 1.235)."""
    if isinstance(node, exp.Cast) and isinstance(node.to, exp.DataType) and node.to.this in (
        exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL
    ) and not node.to.expressions:
        node.set("to", exp.DataType.build("DECIMAL(38, 9)"))
    return None



#: Run after every other rule of their node types (registry.py appends them): they wrap the node.
LATE_RULES: dict[type, tuple[Rule, ...]] = {
    exp.Cast: (rule_double_to_numeric,),
    exp.TryCast: (rule_double_to_numeric,),
}
