"""Array rules: OFFSET/ORDINAL bounds, APPROX_QUANTILES, ARRAY_CONCAT_AGG ... LIMIT.

BigQuery raises "Array index N is out of bounds" for `arr[OFFSET(i)]` / `arr[ORDINAL(i)]`
outside the array and returns NULL only for SAFE_OFFSET / SAFE_ORDINAL; DuckDB returns
NULL for both, and reads a negative index from the end (`[1,2,3][-1]` is 3), so
SAFE_OFFSET(-2) would return an element. APPROX_QUANTILES(x, n) returns n + 1
boundaries; here they are the exact nearest-rank quantiles (DuckDB QUANTILE_DISC), which
equal BigQuery's on the documented examples and lie within BigQuery's approximation
error otherwise (see docs/translation.md).
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.rules import (
    Rule,
    fail,
    fill,
)
from pulse_local.translate.rules_constants import (
    is_null_constant,
    is_zero_constant,
    negative_constant,
)

_QUANTILES_MARK = "pulse_quantiles"


def rule_array_index(node: exp.Expression) -> exp.Expression | None:
    """arr[OFFSET(i)] / arr[ORDINAL(i)] error out of range; SAFE_ variants give NULL."""
    if not isinstance(node, exp.Bracket) or node.args.get("offset") not in (0, 1):
        return None
    if len(node.expressions) != 1:
        return None
    base = int(node.args["offset"])
    shift = 1 - base
    kind = ("SAFE_" if node.args.get("safe") else "") + ("OFFSET" if base == 0 else "ORDINAL")
    out_of_range = (
        "NULL" if node.args.get("safe")
        else f"error('Array index ' || CAST(__i AS VARCHAR) || ' is out of bounds ({kind})')"
    )
    return fill(
        f"CASE WHEN __a IS NULL OR __i IS NULL THEN NULL "
        f"WHEN __i < {base} OR __i >= LEN(__a) + {base} THEN {out_of_range} "
        f"ELSE __a[__i + {shift}] END",
        a=node.this, i=node.expressions[0],
    )


def rule_approx_quantiles(node: exp.Expression) -> exp.Expression | None:
    """APPROX_QUANTILES(x, n) -> the n + 1 exact nearest-rank quantiles (NULLs ignored)."""
    if not isinstance(node, exp.ApproxQuantiles):
        return None
    if isinstance(node.parent, exp.RespectNulls):
        raise fail(node, "APPROX_QUANTILES(... RESPECT NULLS)", "NULL-respecting quantiles are not reproduced",
                   "Drop RESPECT NULLS, or filter the NULLs out first.")
    value, number = node.this, node.args.get("expression")
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        if len(value.expressions) != 2:
            raise fail(node, "APPROX_QUANTILES", "it takes an expression and a number of quantiles")
        value, number = value.expressions
    if not (isinstance(number, exp.Literal) and number.is_int and int(number.name) > 0):
        raise fail(node, "APPROX_QUANTILES with a non-literal number", "the number of quantiles must be a positive literal")
    n = int(number.name)
    fractions = ", ".join(repr(i / n) for i in range(n + 1))
    keyword = "DISTINCT " if distinct else ""
    out = fill(f"QUANTILE_DISC({keyword}__x, [{fractions}])", x=value)
    out.meta[_QUANTILES_MARK] = True
    return out


def rule_ignore_nulls_quantiles(node: exp.Expression) -> exp.Expression | None:
    """APPROX_QUANTILES(... IGNORE NULLS) is the default; drop the modifier."""
    if isinstance(node, exp.IgnoreNulls) and node.this._meta and node.this.meta.get(_QUANTILES_MARK):
        return node.this
    return None


def rule_array_agg_ignore_nulls(node: exp.Expression) -> exp.Expression | None:
    """ARRAY_AGG(x IGNORE NULLS [ORDER BY ..] [LIMIT n]) outside a window: the NULLs are dropped
    before ordering and limiting, and all-NULL input gives a NULL array (ZetaSQL's compliance
    tests); DuckDB's `ARRAY_AGG(..) FILTER (WHERE x IS NOT NULL)` does the same."""
    if not isinstance(node, exp.IgnoreNulls) or isinstance(node.parent, exp.Window):
        return None
    agg = node.this if isinstance(node.this, exp.ArrayAgg) else node.this.find(exp.ArrayAgg)
    if agg is None:
        return None
    value = agg.this
    while isinstance(value, (exp.Order, exp.Limit)):
        value = value.this
    if isinstance(value, exp.Distinct):
        value = value.expressions[0]
    not_null = exp.Where(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())))
    filtered = exp.Filter(this=agg.copy(), expression=not_null)
    if agg is node.this:
        return filtered
    agg.replace(filtered)
    return node.this


def rule_array_concat_agg_limit(node: exp.Expression) -> exp.Expression | None:
    """ARRAY_CONCAT_AGG(a [ORDER BY k] LIMIT n): concatenate the first n non-NULL arrays."""
    if not isinstance(node, exp.ArrayConcatAgg) or not isinstance(node.this, exp.Limit):
        return None
    limit = node.this
    inner = limit.this
    value = inner.this if isinstance(inner, exp.Order) else inner
    agg = exp.Filter(
        this=exp.ArrayAgg(this=inner),
        expression=exp.Where(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))),
    )
    sliced = exp.Anonymous(this="LIST_SLICE", expressions=[agg, exp.Literal.number(1), limit.expression])
    # No non-NULL array in the first n (LIMIT 0, or all NULL): NULL in BigQuery, [] in DuckDB.
    return fill("CASE WHEN LEN(__s) = 0 THEN NULL ELSE FLATTEN(__s) END", s=sliced)


def rule_unnest_alias_fields(node: exp.Expression) -> exp.Expression | None:
    """FROM UNNEST(array) AS p: `p` is the element, and a struct's fields are columns too.

    BigQuery's UNNEST is a value table: `p` names the element (the whole struct) and
    `key` (or `p.key`) a field; `SELECT *` lists the fields. DuckDB's
    `UNNEST(a) AS _t(p)` exposes only `p`. `(SELECT UNNEST(a, max_depth := 2) AS p) AS p`
    gives the fields as columns of table `p` (which DuckDB also reads as the row
    struct), and a single column `p` for scalar arrays (BigQuery has no arrays of arrays).
    Not applied to outer joins (see below).
    """
    if not isinstance(node, exp.Unnest) or node.args.get("offset") or len(node.expressions) != 1:
        return None
    if not isinstance(node.parent, (exp.From, exp.Join)):
        return None
    alias = node.args.get("alias")
    if alias is None:
        return None
    columns = alias.columns
    name = columns[0].name if len(columns) == 1 else (alias.name if not columns else "")
    if not name:
        return None
    if isinstance(node.parent, exp.Join) and node.parent.args.get("side"):
        # LEFT JOIN: DuckDB would read the missing row as a struct of NULLs, BigQuery as
        # NULL; keep sqlglot's translation (the alias works, bare fields fail loudly).
        return None
    inner = fill("SELECT UNNEST(__a, max_depth := 2) AS __pulse_alias", a=node.expressions[0])
    inner.expressions[0].set("alias", exp.to_identifier(name))
    return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(name)))


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


def rule_generate_array_step(node: exp.Expression) -> exp.Expression | None:
    """GENERATE_ARRAY / GENERATE_DATE_ARRAY with a zero step raise in BigQuery."""
    if isinstance(node, (exp.GenerateSeries, exp.GenerateDateArray)) and is_zero_constant(node.args.get("step")):
        name = "GENERATE_DATE_ARRAY" if isinstance(node, exp.GenerateDateArray) else "GENERATE_ARRAY"
        raise fail(node, f"{name} with a zero step", "BigQuery raises an error for it")
    return None


def rule_aggregate_limit_zero(node: exp.Expression) -> exp.Expression | None:
    """ARRAY_AGG / STRING_AGG(... LIMIT 0) aggregate nothing: NULL in BigQuery (DuckDB: [] or '')."""
    if not isinstance(node, (exp.ArrayAgg, exp.GroupConcat)) or not isinstance(node.this, exp.Limit):
        return None
    count = node.this.expression
    if not is_zero_constant(count):
        return None
    node.set("this", node.this.this)
    return fill("CASE WHEN FALSE THEN __a END", a=node)


def rule_aggregate_arguments(node: exp.Expression) -> exp.Expression | None:
    """STRING_AGG with a NULL separator and ARRAY_AGG/STRING_AGG/ARRAY_CONCAT_AGG with a
    negative LIMIT raise in BigQuery; DuckDB returns NULL or slices from the end."""
    if isinstance(node, exp.GroupConcat) and is_null_constant(node.args.get("separator")):
        raise fail(node, "STRING_AGG with a NULL separator", "BigQuery raises an error for it")
    if isinstance(node, (exp.ArrayAgg, exp.GroupConcat, exp.ArrayConcatAgg)) and isinstance(node.this, exp.Limit):
        count = node.this.expression
        if negative_constant(count) or is_null_constant(count):
            raise fail(node, f"{node.sql_name()}(... LIMIT {count.sql()})",
                       "BigQuery requires a non-negative, non-NULL LIMIT count")
    return None


def rule_nested_array(node: exp.Expression) -> exp.Expression | None:
    """An array literal of array literals: BigQuery has no arrays of arrays (it raises), DuckDB builds one."""
    if isinstance(node, exp.Array) and any(isinstance(e, exp.Array) for e in node.expressions):
        raise fail(node, "array of arrays", "BigQuery does not support nested arrays",
                   "Wrap the inner arrays in STRUCTs: [STRUCT([1] AS a)].")
    return None


RULES: dict[type, tuple[Rule, ...]] = {
    exp.Unnest: (rule_unnest_alias_fields,),
    exp.Bracket: (rule_array_index,),
    exp.ApproxQuantiles: (rule_approx_quantiles,),
    exp.IgnoreNulls: (rule_ignore_nulls_quantiles, rule_array_agg_ignore_nulls),
    exp.ArrayConcatAgg: (rule_array_concat_agg_limit,),
}
