"""INT64/NUMERIC overflow and FLOAT64 NaN semantics (learned from `make conformance`).

The translator does not see column types, so these rules emit expressions that branch
on `TYPEOF(...)`, which DuckDB folds to a constant when it plans the query: the same
translation serves an INT64, NUMERIC, FLOAT64 or STRING column, does what BigQuery does
for each, and costs nothing for the types it does not concern. (Typed DuckDB macros
would be neater, but DuckDB picks a macro overload before it knows the type of an
aggregate argument.) The expressions have no side effects (an out-of-range value makes
a CAST fail) so that HAVING and QUALIFY may still name their aliases.

- `SUM` of INT64 raises "int64 overflow" in BigQuery; DuckDB sums into HUGEINT and
  returns a number no INT64 can hold. A NUMERIC sum beyond NUMERIC's range raises too.
- BigQuery orders NaN before every other FLOAT64 (after NULL when ascending); DuckDB
  treats NaN as the greatest value. `ORDER BY` keys (of a query and of a window without
  a RANGE frame) get a leading NaN key; `MIN` is NaN when any input is NaN, as `MAX`.
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.rules import Rule, fill

_FLOAT_TYPES = "('DOUBLE', 'FLOAT')"
_NAN_TEXTS = "('nan', '-nan')"

#: TRUE when __v is a FLOAT64 NaN; FALSE for every other value of any type.
IS_NAN = f"(TYPEOF(__v) IN {_FLOAT_TYPES} AND CAST(__v AS VARCHAR) IN {_NAN_TEXTS})"

#: Sort key putting NaN before the other FLOAT64 values: NULL, FALSE (NaN), TRUE.
NAN_KEY = f"CASE WHEN TYPEOF(__v) IN {_FLOAT_TYPES} THEN CAST(__v AS VARCHAR) NOT IN {_NAN_TEXTS} ELSE TRUE END"

#: __s unchanged, but a CAST fails when an INT64 sum (HUGEINT) or a NUMERIC sum is out of range.
SUM_CHECK = (
    "CASE WHEN TYPEOF(__s) = 'HUGEINT' AND CAST(CAST(__s AS VARCHAR) AS BIGINT) IS NULL THEN NULL "
    "WHEN TYPEOF(__s) = 'DECIMAL(38,9)' AND CAST(CAST(__s AS VARCHAR) AS DECIMAL(38, 9)) IS NULL THEN NULL "
    "ELSE __s END"
)


def _over(function: exp.Expression, window: exp.Window) -> exp.Window:
    """`function` OVER the same window as `window`."""
    copy = window.copy()
    copy.set("this", function)
    return copy


def _plain_argument(agg: exp.Expression) -> exp.Expression:
    """The aggregated expression without DISTINCT."""
    value = agg.this
    if isinstance(value, exp.Distinct) and len(value.expressions) == 1:
        return value.expressions[0]
    return value


def rule_sum_overflow(node: exp.Expression) -> exp.Expression | None:
    """SUM of INT64 / NUMERIC: BigQuery raises on overflow (DuckDB widens to HUGEINT)."""
    if node.find_ancestor(exp.Pivot) is not None:
        return None  # PIVOT takes a bare aggregate
    if isinstance(node, exp.Sum) and not isinstance(node.parent, exp.Window):
        return fill(SUM_CHECK, s=node)
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Sum):
        return fill(SUM_CHECK, s=node)
    return None


def rule_min_nan(node: exp.Expression) -> exp.Expression | None:
    """MIN is NaN when any input is NaN (DuckDB skips NaN as the greatest value).

    DuckDB's MAX is already NaN then, so MAX gives the NaN of any type-correct width.
    """
    if node.find_ancestor(exp.Pivot) is not None:
        return None  # PIVOT takes a bare aggregate
    if isinstance(node, exp.Min) and not node.expressions and not isinstance(node.parent, exp.Window):
        value = _plain_argument(node)
        return fill(f"CASE WHEN BOOL_OR({IS_NAN}) THEN MAX(__v) ELSE __m END", v=value, m=node)
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Min) and not node.this.expressions:
        value = _plain_argument(node.this)
        has_nan = _over(exp.Anonymous(this="BOOL_OR", expressions=[fill(IS_NAN, v=value)]), node)
        return exp.Case(
            ifs=[exp.If(this=has_nan, true=_over(exp.Max(this=value.copy()), node))],
            default=node,
        )
    return None


def _nan_first(order: exp.Order, resolve: dict[str, exp.Expression] | None = None) -> None:
    """Put a NaN key before each ORDER BY item (BigQuery sorts NaN first ascending)."""
    items: list[exp.Expression] = []
    for item in order.expressions:
        if isinstance(item, exp.Ordered) and not item.meta.get("pulse_nan_key"):
            key = item.this
            if resolve is not None and (isinstance(key, exp.Literal) or isinstance(key, exp.Column) and not key.table):
                key = resolve.get(key.name.lower() if isinstance(key, exp.Column) else key.name, key)
            if not isinstance(key, exp.Literal) and not _unkeyable(key):
                nan_key = exp.Ordered(
                    this=fill(NAN_KEY, v=key),
                    desc=item.args.get("desc"),
                    nulls_first=item.args.get("nulls_first"),
                )
                nan_key.meta["pulse_nan_key"] = True
                items.append(nan_key)
        items.append(item)
    order.set("expressions", items)


def _raises(node: exp.Expression) -> bool:
    return any(isinstance(n, exp.Anonymous) and n.name.upper() == "ERROR" for n in node.walk())


_VOLATILE = frozenset({"RAND", "RANDOM", "GEN_RANDOM_UUID", "UUID", "GENERATE_UUID"})


def _unkeyable(node: exp.Expression) -> bool:
    """A select expression a NaN key cannot name: DuckDB refuses an alias of an expression
    with a subquery inside another expression, and repeating a random one changes it."""
    for n in node.walk():
        if isinstance(n, (exp.Subquery, exp.Select, exp.Rand)):
            return True
        if isinstance(n, exp.Func) and n.sql_name().upper() in _VOLATILE:
            return True
    return False


def _ordinals(select: exp.Select) -> dict[str, exp.Expression]:
    """ORDER BY ordinal or alias -> what the NaN key should read.

    An alias normally; the expression itself when it can raise (DuckDB refuses an alias
    of an expression with side effects inside another expression).
    """
    out: dict[str, exp.Expression] = {}
    for i, projection in enumerate(select.expressions, start=1):
        if isinstance(projection, exp.Alias) and _unkeyable(projection.this):
            out[str(i)] = out[projection.alias.lower()] = exp.Literal.number(i)  # no NaN key
        elif isinstance(projection, exp.Alias):
            target = projection.this if _raises(projection.this) else exp.column(projection.alias)
            out[str(i)] = target
            if _raises(projection.this):
                out[projection.alias.lower()] = projection.this
        elif isinstance(projection, exp.Column):
            out[str(i)] = projection
    return out


def rule_order_nan_first(node: exp.Expression) -> exp.Expression | None:
    """ORDER BY of a query or a window (not a RANGE frame): NaN sorts first, as in BigQuery."""
    if isinstance(node, exp.Window):
        spec = node.args.get("spec")
        order = node.args.get("order")
        if order is None or (spec is not None and str(spec.args.get("kind") or "").upper() == "RANGE"):
            return None
        if not isinstance(node.this, exp.Func):
            return None  # a named window (WINDOW w AS ...): its users may add a RANGE frame
        _nan_first(order)
        return None
    if isinstance(node, exp.Select):
        order = node.args.get("order")
        group = node.args.get("group")
        if order is None or node.args.get("distinct") is not None or (group is not None and group.args.get("all")):
            return None  # DISTINCT / GROUP BY ALL: DuckDB only accepts ORDER BY items of the select list
        if any(isinstance(p, exp.Star) or isinstance(p, exp.Column) and isinstance(p.this, exp.Star)
               for p in node.expressions):
            return None  # ordinals over * cannot be resolved here
        _nan_first(order, _ordinals(node))
    return None


RULES: dict[type, tuple[Rule, ...]] = {
    exp.Sum: (rule_sum_overflow,),
    exp.Min: (rule_min_nan,),
    exp.Window: (rule_order_nan_first, rule_sum_overflow, rule_min_nan),
    exp.Select: (rule_order_nan_first,),
}
