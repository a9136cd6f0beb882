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
    return sqlglot.parse_one(template, read="duckdb")


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


def rule_date_trunc(node: exp.Expression) -> exp.Expression | None:
    """DATE_TRUNC(d, part) returns DATE in BigQuery; WEEK(<day>) starts weeks on <day>."""
    if not isinstance(node, (exp.DateTrunc, exp.TimestampTrunc, exp.DatetimeTrunc)):
        return None
    if node.meta.get("pulse_rule"):
        return None
    part, weekday = unit_of(node.args.get("unit"))
    value = node.this
    date_result = isinstance(node, exp.DateTrunc) and not is_timestamp_like(value)
    if date_result:
        value = as_date(value)
        if part == "WEEK":
            return fill(
                f"CAST(__d AS DATE) - CAST((DAYOFWEEK(__d) - {weekday} + 7) % 7 AS INTEGER)",
                d=value,
            )
        duck_part = {"ISOWEEK": "week", "ISOYEAR": "isoyear"}.get(part, part.lower())
        return fill(f"CAST(DATE_TRUNC('{duck_part}', __d) AS DATE)", d=value)
    if isinstance(value, exp.Literal) and value.is_string:
        target = "TIMESTAMP" if isinstance(node, exp.DatetimeTrunc) else "TIMESTAMPTZ"
        value = exp.cast(value, exp.DataType.build(target))
        node.set("this", value)
    if part == "WEEK":
        return fill(
            f"DATE_TRUNC('day', __d) - TO_DAYS(CAST((DAYOFWEEK(__d) - {weekday} + 7) % 7 AS INTEGER))",
            d=value,
        )
    if part in {"ISOWEEK", "ISOYEAR"}:
        duck_part = {"ISOWEEK": "week", "ISOYEAR": "isoyear"}[part]
        return fill(f"DATE_TRUNC('{duck_part}', __d)", d=value)
    return None


def rule_date_add(node: exp.Expression) -> exp.Expression | None:
    """DATE_ADD / DATE_SUB return DATE (DuckDB's DATE + INTERVAL is a TIMESTAMP)."""
    if not isinstance(node, (exp.DateAdd, exp.DateSub)) or is_timestamp_like(node.this):
        return None
    node.set("this", as_date(node.this))
    return exp.cast(node, exp.DataType.build("DATE"))


def rule_date_diff(node: exp.Expression) -> exp.Expression | None:
    """DATE_DIFF counts part boundaries; WEEK(<day>), ISOWEEK and ISOYEAR need help."""
    if not isinstance(node, exp.DateDiff):
        return None
    part, weekday = unit_of(node.args.get("unit"))
    a, b = as_date(node.this), as_date(node.expression)
    if part == "WEEK":
        start = "CAST(__{x} AS DATE) - CAST((DAYOFWEEK(__{x}) - " + str(weekday) + " + 7) % 7 AS INTEGER)"
        return fill(
            f"CAST(DATE_DIFF('day', {start.format(x='b')}, {start.format(x='a')}) // 7 AS BIGINT)",
            a=a, b=b,
        )
    if part == "ISOWEEK":
        return fill(
            "CAST(DATE_DIFF('day', CAST(DATE_TRUNC('week', __b) AS DATE), "
            "CAST(DATE_TRUNC('week', __a) AS DATE)) // 7 AS BIGINT)",
            a=a, b=b,
        )
    if part == "ISOYEAR":
        return fill("CAST(ISOYEAR(__a) - ISOYEAR(__b) AS BIGINT)", a=a, b=b)
    node.set("this", a)
    node.set("expression", b)
    return None


def rule_timestamp_diff(node: exp.Expression) -> exp.Expression | None:
    """TIMESTAMP_DIFF counts whole elapsed units (DuckDB's date_diff counts boundaries)."""
    if not isinstance(node, exp.TimestampDiff):
        return None
    part, _ = unit_of(node.args.get("unit"))
    if part not in {"MICROSECOND", "MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY"}:
        raise fail(node, f"TIMESTAMP_DIFF(..., {part})", "BigQuery only accepts parts up to DAY here")
    return fill(f"DATE_SUB('{part.lower()}', __b, __a)", a=node.this, b=node.expression)


def rule_extract(node: exp.Expression) -> exp.Expression | None:
    """EXTRACT parts whose numbering differs: DAYOFWEEK (Sunday = 1), WEEK, ISOWEEK, DATE."""
    if not isinstance(node, exp.Extract):
        return None
    part, weekday = unit_of(node.this)
    value = node.expression
    if known_type(value) == "TIMESTAMPTZ":
        # The session runs in UTC (like BigQuery), so the wall-clock parts are the UTC ones.
        value = exp.cast(value, exp.DataType.build("TIMESTAMP"))
        node.set("expression", value)
    if part == "DAYOFWEEK":
        return fill("CAST(DAYOFWEEK(__d) + 1 AS BIGINT)", d=value)
    if part == "WEEK":
        return fill(
            f"CAST((DAYOFYEAR(__d) - CAST((DAYOFWEEK(__d) - {weekday} + 7) % 7 AS INTEGER) + 6)"
            " // 7 AS BIGINT)",
            d=value,
        )
    if part == "ISOWEEK":
        return fill("CAST(WEEKOFYEAR(__d) AS BIGINT)", d=value)
    if part == "ISOYEAR":
        return fill("CAST(ISOYEAR(__d) AS BIGINT)", d=value)
    if part == "DATE":
        return exp.cast(value, exp.DataType.build("DATE"))
    return mark(node) if value is not node.expression else None


def rule_date_from_unix_date(node: exp.Expression) -> exp.Expression | None:
    """DATE_FROM_UNIX_DATE returns a DATE."""
    if isinstance(node, exp.DateFromUnixDate):
        return fill("CAST(DATE '1970-01-01' + CAST(__n AS INTEGER) AS DATE)", n=node.this)
    return None


_TIMESTAMP_RESULT_FUNCTIONS = {
    "PARSE_TIMESTAMP", "TIMESTAMP_MILLIS", "TIMESTAMP_MICROS", "TIMESTAMP_SECONDS",
}


def rule_timestamp_result(node: exp.Expression) -> exp.Expression | None:
    """Functions returning TIMESTAMP (an instant) where DuckDB builds a naive TIMESTAMP."""
    name = str(node.meta.get("bigquery_name", "")).upper() if node._meta else None
    if isinstance(node, exp.GenerateTimestampArray):
        return exp.cast(node, exp.DataType.build("TIMESTAMPTZ[]", dialect="duckdb"))
    if isinstance(node, (exp.StrToTime, exp.UnixToTime)) and name in _TIMESTAMP_RESULT_FUNCTIONS:
        return exp.cast(node, exp.DataType.build("TIMESTAMPTZ"))
    return None


def rule_time_functions(node: exp.Expression) -> exp.Expression | None:
    """TIME_TRUNC and FORMAT_TIME: DuckDB only truncates/formats timestamps."""
    if isinstance(node, exp.TimeTrunc):
        part, _ = unit_of(node.args.get("unit"))
        return fill(f"CAST(DATE_TRUNC('{part.lower()}', DATE '1970-01-01' + __t) AS TIME)", t=node.this)
    if isinstance(node, exp.TimeToStr):
        fmt = node.args.get("format")
        if isinstance(fmt, exp.Literal) and re.search(r"%[RTD]", fmt.name):
            text = fmt.name.replace("%R", "%H:%M").replace("%T", "%H:%M:%S").replace("%D", "%m/%d/%y")
            node.set("format", exp.Literal.string(text))
    if isinstance(node, exp.TimeToStr) and node._meta and str(node.meta.get("bigquery_name", "")).upper() == "FORMAT_TIME":
        node.set("this", fill("DATE '1970-01-01' + CAST(__t AS TIME)", t=node.this))
        return mark(node)
    return None


def rule_timestamp_string(node: exp.Expression) -> exp.Expression | None:
    """STRING(ts[, zone]) / CAST(ts AS STRING) print the offset: '2008-12-25 15:30:00+00'."""
    if isinstance(node, exp.String) and node.args.get("zone") is None or (
        isinstance(node, exp.String) and isinstance(node.args.get("zone"), exp.Literal)
        and node.args["zone"].name.upper() in {"UTC", "+00", "Z"}
    ):
        return fill("STRFTIME(CAST(__t AS TIMESTAMPTZ), '%Y-%m-%d %H:%M:%S+00')", t=node.this)
    return None


# --------------------------------------------------------------------------- arrays


def rule_unnest_offset(node: exp.Expression) -> exp.Expression | None:
    """UNNEST(...) WITH OFFSET counts from 0 (DuckDB's ORDINALITY counts from 1)."""
    if not isinstance(node, exp.Unnest) or not node.args.get("offset"):
        return None
    offset = node.args["offset"]
    offset_name = offset.name if isinstance(offset, exp.Expression) and offset.name else "offset"
    alias = node.args.get("alias")
    columns = alias.columns if alias is not None else []
    table_alias = alias.name if alias is not None and alias.name else None
    if len(node.expressions) != 1:
        raise fail(node, "UNNEST of several arrays WITH OFFSET", "not supported")
    array = node.expressions[0]
    value_name = columns[0].name if columns else (table_alias or "value")
    sub = fill(
        "SELECT UNNEST(__a) AS v, GENERATE_SUBSCRIPTS(__a, 1) - 1 AS o",
        a=array,
    )
    sub.expressions[0].set("alias", exp.to_identifier(value_name))
    sub.expressions[1].set("alias", exp.to_identifier(offset_name))
    return exp.Subquery(
        this=sub,
        alias=exp.TableAlias(this=exp.to_identifier(f"_unnest_{value_name}")),
    )


def rule_unnest_struct_columns(node: exp.Expression) -> exp.Expression | None:
    """FROM UNNEST(array_of_structs) without alias exposes the struct fields as columns."""
    if not isinstance(node, exp.Unnest) or node.args.get("alias") or node.args.get("offset"):
        return None
    if not isinstance(node.parent, (exp.From, exp.Join)) or len(node.expressions) != 1:
        return None
    sub = fill("SELECT UNNEST(__a, max_depth := 2)", a=node.expressions[0])
    return exp.Subquery(this=sub)


def rule_string_agg_limit(node: exp.Expression) -> exp.Expression | None:
    """STRING_AGG(x, sep ORDER BY y LIMIT n): aggregate to a list, slice, join."""
    if not isinstance(node, exp.GroupConcat) or not isinstance(node.this, exp.Limit):
        return None
    limit = node.this
    inner = limit.this
    value = inner.this if isinstance(inner, exp.Order) else inner
    if isinstance(value, exp.Distinct):
        value = value.expressions[0]
    agg = exp.Filter(
        this=exp.ArrayAgg(this=inner),
        expression=exp.Where(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))),
    )
    sliced = exp.Anonymous(this="LIST_SLICE", expressions=[agg, exp.Literal.number(1), limit.expression])
    sep = node.args.get("separator") or exp.Literal.string(",")
    return exp.Anonymous(this="ARRAY_TO_STRING", expressions=[sliced, sep])


def rule_array_functions(node: exp.Expression) -> exp.Expression | None:
    """ARRAY_FIRST/LAST, ARRAY_AVG, ARRAY_INCLUDES, RANGE_BUCKET, GENERATE_ARRAY(FLOAT64)."""
    if isinstance(node, (exp.ArrayFirst, exp.ArrayLast)):
        # BigQuery raises for an empty array (SAFE. gives NULL: rule_safe_guards).
        which, index = ("first", "1") if isinstance(node, exp.ArrayFirst) else ("last", "-1")
        message = f"ARRAY_{which.upper()} cannot get the {which} element of an empty array (BigQuery raises this error)"
        return fill(
            f"CASE WHEN LEN(__a) = 0 THEN ERROR('{message}') "
            f"ELSE __a[{index}] END",
            a=node.this,
        )
    if isinstance(node, exp.RangeBucket):
        return fill("CASE WHEN __x IS NULL THEN NULL ELSE CAST(LEN(LIST_FILTER(__a, b -> b <= __x)) AS BIGINT) END",
                    x=node.this, a=node.expression)
    if isinstance(node, exp.GenerateSeries) and any(
        isinstance(a, exp.Cast) and a.to.is_type("double") for a in (node.args.get("start"), node.args.get("end"), node.args.get("step"))
    ):
        step = node.args.get("step") or exp.Literal.number(1)
        return fill(
            "LIST_TRANSFORM(GENERATE_SERIES(0, CAST(FLOOR((__e - __s) / __p) AS BIGINT)), i -> __s + i * __p)",
            s=node.args["start"], e=node.args["end"], p=step,
        )
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        renames = {"ARRAY_AVG": "LIST_AVG", "ARRAY_INCLUDES": "LIST_CONTAINS"}
        if name in renames:
            return exp.Anonymous(this=renames[name], expressions=node.expressions)
    return None


def rule_array_agg_limit(node: exp.Expression) -> exp.Expression | None:
    """ARRAY_AGG(x ORDER BY y LIMIT n): DuckDB has no LIMIT there; slice the list."""
    if not isinstance(node, exp.ArrayAgg) or not isinstance(node.this, exp.Limit):
        return None
    limit = node.this
    node.set("this", limit.this)
    return exp.Anonymous(this="LIST_SLICE", expressions=[node, exp.Literal.number(1), limit.expression])


def rule_array_slice(node: exp.Expression) -> exp.Expression | None:
    """ARRAY_SLICE uses 0-based inclusive offsets, negative from the end, clamped."""
    if not isinstance(node, exp.ArraySlice):
        return None
    start, end = node.args.get("start"), node.args.get("end")
    if start is None or end is None:
        return None
    return fill(
        "CASE WHEN __s IS NULL OR __e IS NULL THEN NULL ELSE LIST_FILTER(__a, (x, i) -> "
        "i - 1 BETWEEN (CASE WHEN __s < 0 THEN LEN(__a) + __s ELSE __s END) "
        "AND (CASE WHEN __e < 0 THEN LEN(__a) + __e ELSE __e END)) END",
        a=node.this, s=start, e=end,
    )


def rule_code_points(node: exp.Expression) -> exp.Expression | None:
    """TO_CODE_POINTS / CODE_POINTS_TO_STRING on STRING values."""
    if isinstance(node, exp.ToCodePoints):
        if isinstance(node.this, exp.ByteString):
            raise fail(node, "TO_CODE_POINTS on BYTES", "only STRING arguments are supported")
        return fill(
            "CASE WHEN __s = '' THEN CAST([] AS BIGINT[]) ELSE "
            "LIST_TRANSFORM(STRING_SPLIT(__s, ''), c -> CAST(UNICODE(c) AS BIGINT)) END",
            s=node.this,
        )
    if isinstance(node, exp.CodePointsToString):
        return fill("ARRAY_TO_STRING(LIST_TRANSFORM(__a, c -> CHR(c)), '')", a=node.this)
    return None


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


def rule_int_literal(node: exp.Expression) -> exp.Expression | None:
    """Large integer literals in arithmetic are INT64 in BigQuery (INT32 in DuckDB)."""
    if (
        isinstance(node, exp.Literal) and not node.is_string and node.is_int
        and abs(int(node.name)) >= 65536
        and isinstance(node.parent, (exp.Add, exp.Sub, exp.Mul, exp.Neg))
    ):
        return exp.cast(node, exp.DataType.build("BIGINT"))
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



#: The first rules, by node type; `registry` puts the family modules' rules (rules_*.py) ahead
#: of these, in this same dict, and is what the translator reads.
RULES_BY_TYPE: dict[type, tuple[Rule, ...]] = {
    exp.DateTrunc: (rule_date_trunc,),
    exp.TimestampTrunc: (rule_date_trunc,),
    exp.DatetimeTrunc: (rule_date_trunc,),
    exp.DateAdd: (rule_date_add,),
    exp.DateSub: (rule_date_add,),
    exp.DateDiff: (rule_date_diff,),
    exp.Extract: (rule_extract,),
    exp.TimestampDiff: (rule_timestamp_diff,),
    exp.DateFromUnixDate: (rule_date_from_unix_date,),
    exp.Unnest: (rule_unnest_offset, rule_unnest_struct_columns),
    exp.ArrayAgg: (rule_array_agg_limit,),
    exp.ArraySlice: (rule_array_slice,),
    exp.ToCodePoints: (rule_code_points,),
    exp.CodePointsToString: (rule_code_points,),
    exp.SafeFunc: (rule_safe_prefix,),
    exp.Literal: (rule_float_literal, rule_int_literal),
    exp.GenerateTimestampArray: (rule_timestamp_result,),
    exp.StrToTime: (rule_timestamp_result,),
    exp.UnixToTime: (rule_timestamp_result,),
    exp.TimeTrunc: (rule_time_functions,),
    exp.TimeToStr: (rule_time_functions,),
    exp.String: (rule_timestamp_string,),
    exp.GroupConcat: (rule_string_agg_limit,),
    exp.ArrayFirst: (rule_array_functions,),
    exp.ArrayLast: (rule_array_functions,),
    exp.RangeBucket: (rule_array_functions,),
    exp.GenerateSeries: (rule_array_functions,),
    exp.Substring: (rule_scalar_misc,),
    exp.Unicode: (rule_scalar_misc,),
    exp.Normalize: (rule_scalar_misc,),
    exp.ParseNumeric: (rule_scalar_misc,),
    exp.Sign: (rule_scalar_misc,),
    exp.Concat: (rule_concat,),
    exp.DataType: (rule_numeric_type,),
    exp.Format: (rule_format,),
    exp.ByteLength: (rule_byte_length,),
    exp.JSONExtract: (rule_json_query,),
    exp.JSONExtractArray: (rule_json_query,),
    exp.Anonymous: (rule_ieee_divide, rule_array_functions, rule_scalar_misc),
    exp.Create: (rule_create,),
}
