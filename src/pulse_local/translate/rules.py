"""AST corrections applied between sqlglot's BigQuery parser and its DuckDB generator.

sqlglot gets the *syntax* right for most of BigQuery; these rules fix the places where
the generated DuckDB SQL runs but returns something BigQuery would not (a TIMESTAMP
where BigQuery returns a DATE, a 1-based offset, Sunday = 0, ...), and they reject the
constructs that cannot be made correct. Each rule is a small function taking a node
(already rewritten below it) and returning the replacement node, or None to keep it.

The catalogue of rules, with the reason for each, is in docs/translation.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import cast

import sqlglot
from sqlglot import exp

from pulse_local.translate.errors import UntranslatableSQL

WEEKDAYS: dict[str, int] = {
    "SUNDAY": 0, "MONDAY": 1, "TUESDAY": 2, "WEDNESDAY": 3,
    "THURSDAY": 4, "FRIDAY": 5, "SATURDAY": 6,
}

Rule = Callable[[exp.Expression], "exp.Expression | None"]


# --------------------------------------------------------------------------- helpers


def position(node: exp.Expression) -> tuple[int | None, int | None]:
    """Best-known 1-based (line, column) of `node` in the BigQuery text.

    sqlglot records positions on function calls, identifiers and literals; for other
    nodes the first descendant (then the nearest ancestor) that has one is used.
    """
    for candidate in node.walk(bfs=True):
        meta = candidate.meta if candidate._meta else {}
        if "line" in meta:
            return meta["line"], meta.get("col")
    parent = node.parent
    while parent is not None:
        meta = parent.meta if parent._meta else {}
        if "line" in meta:
            return meta["line"], meta.get("col")
        parent = parent.parent
    return None, None


def fail(node: exp.Expression, construct: str, reason: str, hint: str = "") -> UntranslatableSQL:
    """Build an UntranslatableSQL pointing at `node`."""
    line, col = position(node)
    return UntranslatableSQL(construct, reason, line=line, col=col, hint=hint)


@cache
def _parsed_template(template: str) -> exp.Expression:
    return cast(exp.Expression, sqlglot.parse_one(template, read="duckdb"))


def fill(template: str, **args: exp.Expression) -> exp.Expression:
    """Parse a DuckDB `template` once and substitute the `__name` placeholders.

    Placeholders are bare column references such as `__d`; each occurrence receives
    its own copy of the argument expression.
    """
    tree = _parsed_template(template).copy()
    for col in list(tree.find_all(exp.Column)):
        name = col.name
        if col.table or not name.startswith("__"):
            continue
        key = name[2:]
        if key not in args:
            raise KeyError(f"template placeholder {name} has no argument")
        col.replace(args[key].copy())
    return tree


def as_date(node: exp.Expression) -> exp.Expression:
    """BigQuery coerces string literals to DATE in date functions; DuckDB does not."""
    if isinstance(node, exp.Literal) and node.is_string:
        return exp.cast(node, exp.DataType.build("DATE"))
    return node


def typed_at_bind(value: exp.Expression) -> bool:
    """True when DuckDB knows the type of `value` where it binds a typed macro overload.

    Overloads are chosen before aggregates, window functions and subqueries inside the
    argument are bound, and before a correlated column of an expression subquery
    (scalar, EXISTS, IN) is resolved; such arguments match several overloads."""
    if any(isinstance(n, (exp.AggFunc, exp.Window, exp.Subquery, exp.Select)) for n in value.walk()):
        return False
    ancestor = value.parent
    while ancestor is not None:
        if isinstance(ancestor, exp.Subquery) and not isinstance(ancestor.parent, (exp.From, exp.Join)):
            return False
        if isinstance(ancestor, (exp.Exists, exp.In)) and ancestor.args.get("query") is not None:
            return False
        ancestor = ancestor.parent
    return True


def known_type(node: exp.Expression) -> str | None:
    """The BigQuery type of `node` when it is evident from the syntax (casts, literals)."""
    if isinstance(node, exp.Cast):
        return node.to.this.name
    if isinstance(node, (exp.TsOrDsToDate, exp.Date, exp.DateFromParts, exp.CurrentDate)):
        return "DATE"
    if isinstance(node, (exp.CurrentTimestamp, exp.TimestampTrunc)):
        return "TIMESTAMPTZ"
    if isinstance(node, (exp.CurrentDatetime, exp.DatetimeTrunc)):
        return "TIMESTAMP"
    return None


def is_timestamp_like(node: exp.Expression) -> bool:
    return known_type(node) in {"TIMESTAMP", "TIMESTAMPTZ", "DATETIME", "TIMESTAMPLTZ"}


def unit_of(unit: exp.Expression | None) -> tuple[str, int | None]:
    """Normalise a BigQuery date part: ("WEEK", k) for WEEK / WEEK(<day>), (name, None) else."""
    if unit is None:
        return "DAY", None
    if isinstance(unit, exp.WeekStart):
        day = unit.this.name.upper()
        return "WEEK", WEEKDAYS[day]
    name = unit.name.upper()
    if name == "WEEK":
        return "WEEK", 0
    match = re.fullmatch(r"WEEK\((\w+)\)", name)
    if match:
        return "WEEK", WEEKDAYS[match.group(1)]
    return name, None


def mark(node: exp.Expression) -> exp.Expression:
    """Flag a node as produced by a rule so that later passes leave it alone."""
    node.meta["pulse_rule"] = True
    return node


# --------------------------------------------------------------------------- date/time


# --------------------------------------------------------------------------- arrays


# --------------------------------------------------------------------------- scalar


def rule_safe_prefix(node: exp.Expression) -> exp.Expression | None:
    """SAFE.f(...) returns NULL instead of raising: DuckDB's TRY(expr)."""
    if isinstance(node, exp.SafeFunc):
        return exp.Anonymous(this="TRY", expressions=[node.this])
    return None


def rule_float_literal(node: exp.Expression) -> exp.Expression | None:
    """1.5 is FLOAT64 in BigQuery but DECIMAL in DuckDB."""
    if (
        isinstance(node, exp.Literal)
        and not node.is_string
        and re.search(r"[.eE]", node.this)
        and not isinstance(node.parent, (exp.Cast, exp.Interval))
    ):
        return exp.cast(node, exp.DataType.build("DOUBLE"))
    return None


def rule_format(node: exp.Expression) -> exp.Expression | None:
    """FORMAT('%d', x) is printf-style; DuckDB's format() is fmt-style, printf() matches."""
    if not isinstance(node, exp.Format):
        return None
    fmt = node.this
    if isinstance(fmt, exp.Literal) and fmt.is_string:
        text = fmt.this
        if "%'" in text:
            raise fail(node, "FORMAT with the ' grouping flag", "DuckDB groups digits differently")
        fmt = exp.Literal.string(re.sub(r"%(-?\d*)[tT]", r"%\1s", text))
    return exp.Anonymous(this="PRINTF", expressions=[fmt, *node.expressions])


def rule_byte_length(node: exp.Expression) -> exp.Expression | None:
    """BYTE_LENGTH counts UTF-8 bytes of a STRING."""
    if not isinstance(node, exp.ByteLength):
        return None
    if isinstance(node.this, exp.ByteString):
        return exp.Anonymous(this="OCTET_LENGTH", expressions=[node.this])
    return exp.Anonymous(this="STRLEN", expressions=[node.this])


def rule_json_query(node: exp.Expression) -> exp.Expression | None:
    """JSON_QUERY / JSON_EXTRACT on a STRING return a STRING (DuckDB returns JSON)."""
    if isinstance(node, exp.JSONExtract) and not isinstance(node.parent, exp.Cast):
        return exp.cast(node, exp.DataType.build("VARCHAR"))
    if isinstance(node, exp.JSONExtractArray):
        return exp.cast(node, exp.DataType.build("VARCHAR[]", dialect="duckdb"))
    return None


def rule_scalar_misc(node: exp.Expression) -> exp.Expression | None:
    """SUBSTR positions, UNICODE(''), NORMALIZE, PARSE_NUMERIC, SIGN(FLOAT64)."""
    if isinstance(node, exp.Substring):
        start = node.args.get("start")
        if start is None or (isinstance(start, exp.Literal) and start.is_int and int(start.name) > 0):
            return None
        node.set("start", fill(
            "CASE WHEN __p = 0 OR __p < -LENGTH(__s) THEN 1 ELSE __p END", p=start, s=node.this))
        return mark(node)
    if isinstance(node, exp.Unicode):
        return fill("CAST(CASE WHEN __s = '' THEN 0 ELSE UNICODE(__s) END AS BIGINT)", s=node.this)
    if isinstance(node, exp.Normalize):
        form = node.args.get("form")
        if form and form is not True and getattr(form, "name", "NFC").upper() != "NFC":
            raise fail(node, f"NORMALIZE(..., {form.name.upper()})", "DuckDB only implements NFC normalisation")
        return exp.Anonymous(this="NFC_NORMALIZE", expressions=[node.this])
    if isinstance(node, exp.ParseNumeric):
        return exp.cast(node.this, exp.DataType.build("DECIMAL(38, 9)"))
    if isinstance(node, exp.Sign) and any(
        isinstance(c, exp.Cast) and c.to.is_type("double") for c in node.this.walk()
    ):
        return exp.cast(node, exp.DataType.build("DOUBLE"))
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        if name == "NULLIFZERO":
            return fill("NULLIF(__x, 0)", x=node.expressions[0])
        if name == "ZEROIFNULL":
            return fill("COALESCE(__x, 0)", x=node.expressions[0])
    return None


def rule_numeric_type(node: exp.Expression) -> exp.Expression | None:
    """NUMERIC / BIGNUMERIC have 9 decimal digits; DuckDB's bare DECIMAL is (18,3)."""
    if isinstance(node, exp.DataType) and node.this in (
        exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL
    ) and not node.expressions:
        return exp.DataType.build("DECIMAL(38, 9)")
    return None


def rule_concat(node: exp.Expression) -> exp.Expression | None:
    """CONCAT of STRINGs is a STRING even when NULL (DuckDB folds it to an untyped NULL)."""
    if isinstance(node, exp.Concat) and not any(isinstance(a, exp.ByteString) for a in node.expressions):
        return exp.cast(node, exp.DataType.build("VARCHAR"))
    return None


def rule_ieee_divide(node: exp.Expression) -> exp.Expression | None:
    """IEEE_DIVIDE gives +/-inf and NaN on division by zero."""
    if isinstance(node, exp.Anonymous) and node.name.upper() == "IEEE_DIVIDE":
        a, b = node.expressions
        return fill(
            "CASE WHEN CAST(__b AS DOUBLE) = 0 THEN CASE WHEN CAST(__a AS DOUBLE) > 0 THEN "
            "CAST('inf' AS DOUBLE) WHEN CAST(__a AS DOUBLE) < 0 THEN CAST('-inf' AS DOUBLE) "
            "ELSE CAST('nan' AS DOUBLE) END ELSE CAST(__a AS DOUBLE) / CAST(__b AS DOUBLE) END",
            a=a, b=b,
        )
    return None


# --------------------------------------------------------------------------- DDL


_DROPPED_PROPERTIES = (
    exp.PartitionedByProperty, exp.Cluster, exp.ClusteredByProperty, exp.ClusterProperty,
)


def rule_create(node: exp.Expression) -> exp.Expression | None:
    """CREATE: drop storage-only options; check user-defined functions."""
    if not isinstance(node, exp.Create):
        return None
    props = node.args.get("properties")
    if props is not None:
        kept = []
        for prop in props.expressions:
            if isinstance(prop, exp.LanguageProperty) and prop.name.lower() in {"js", "javascript"}:
                raise fail(node, "JavaScript UDF", "DuckDB cannot run JavaScript",
                           "Rewrite the function in SQL, or keep this model BigQuery-only.")
            if isinstance(prop, _DROPPED_PROPERTIES):
                continue
            if type(prop) is exp.Property:
                continue  # OPTIONS(...): descriptions, expiration, labels
            if isinstance(prop, exp.ReturnsProperty) and node.kind == "FUNCTION":
                body = node.expression
                if body is not None and prop.this is not None:
                    inner = body.this if isinstance(body, exp.Paren) else body
                    node.set("expression", exp.Paren(this=exp.cast(inner, prop.this)))
                continue
            kept.append(prop)
        props.set("expressions", kept)
        if not kept:
            node.set("properties", None)
    if node.kind == "FUNCTION" and isinstance(node.this, exp.UserDefinedFunction):
        for param in node.this.expressions:
            kind = param.args.get("kind")
            if isinstance(kind, exp.DataType) and kind.this == exp.DataType.Type.VARIANT:
                param.set("kind", None)  # ANY TYPE: DuckDB macros are untyped
    return None
