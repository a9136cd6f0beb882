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

from pulse_local.translate.rules import Rule, fail, fill

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


RULES: dict[type, tuple[Rule, ...]] = {
    exp.Unnest: (rule_unnest_alias_fields,),
    exp.Bracket: (rule_array_index,),
    exp.ApproxQuantiles: (rule_approx_quantiles,),
    exp.IgnoreNulls: (rule_ignore_nulls_quantiles, rule_array_agg_ignore_nulls),
    exp.ArrayConcatAgg: (rule_array_concat_agg_limit,),
}
