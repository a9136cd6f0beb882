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
- A comparison with NaN (=, <, >, <=, >=, BETWEEN) is FALSE in BigQuery and `!=` is
  TRUE; DuckDB treats NaN as a value equal to itself and greater than all others.
- BigQuery orders NaN before every other FLOAT64 (after NULL when ascending); DuckDB
  treats NaN as the greatest value. `ORDER BY` keys (of a query and of a window without
  a RANGE frame) get a leading NaN key; `MIN` is NaN when any input is NaN, as `MAX`.
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.functions import macro_call
from pulse_local.translate.rules import Rule, fill, typed_at_bind
from pulse_local.translate.rules_casts import rule_cast_numeric_precision

_FLOAT_TYPES = "('DOUBLE', 'FLOAT')"
_NAN_TEXTS = "('nan', '-nan')"

#: TRUE when __v is a FLOAT64 NaN; FALSE for every other value (NULL too) of any type.
IS_NAN = f"(TYPEOF(__v) IN {_FLOAT_TYPES} AND COALESCE(CAST(__v AS VARCHAR) IN {_NAN_TEXTS}, FALSE))"

#: Sort key putting NaN before the other FLOAT64 values: NULL, FALSE (NaN), TRUE.
NAN_KEY = f"CASE WHEN TYPEOF(__v) IN {_FLOAT_TYPES} THEN CAST(__v AS VARCHAR) NOT IN {_NAN_TEXTS} ELSE TRUE END"

#: __s unchanged, but a CAST fails when an INT64 sum (HUGEINT) or a NUMERIC sum is out of
#: range, or when a FLOAT64 sum is infinite although no input is (__i: BOOL_OR(ISINF(x))).
SUM_CHECK = (
    "CASE WHEN TYPEOF(__s) = 'HUGEINT' AND CAST(CAST(__s AS VARCHAR) AS BIGINT) IS NULL THEN NULL "
    "WHEN TYPEOF(__s) = 'DECIMAL(38,9)' AND CAST(CAST(__s AS VARCHAR) AS DECIMAL(38, 9)) IS NULL THEN NULL "
    "WHEN TYPEOF(__s) = 'DOUBLE' AND ISINF(__s) AND NOT COALESCE(__i, FALSE) THEN (CASE WHEN "
    "CAST('double overflow: the FLOAT64 SUM is infinite (BigQuery raises this error): ' || CAST(__s AS VARCHAR) "
    "AS DOUBLE) IS NULL THEN NULL END) ELSE __s END"
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
        has_inf = exp.Anonymous(this="BOOL_OR", expressions=[exp.Anonymous(this="ISINF", expressions=[_plain_argument(node).copy()])])
        return fill(SUM_CHECK, s=node, i=has_inf)
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Sum):
        value = _plain_argument(node.this)
        window_inf = _over(exp.Anonymous(this="BOOL_OR", expressions=[exp.Anonymous(this="ISINF", expressions=[value.copy()])]), node)
        return fill(SUM_CHECK, s=node, i=window_inf)
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


def _has_offsets(spec: exp.Expression) -> bool:
    """True when a frame bound is a numeric offset (`2 PRECEDING`), not an INTERVAL."""
    bounds = [spec.args.get("start"), spec.args.get("end")]
    return any(
        b is not None and not isinstance(b, (str, exp.Var)) and not any(isinstance(n, exp.Interval) for n in b.walk())
        for b in bounds
    )


def _mirror_range_key(order: exp.Order) -> None:
    """RANGE frame with numeric offsets over one key: order by the negated key, direction
    flipped. The frames are the same (k PRECEDING of -x descending is k PRECEDING of x
    ascending), but NaN, the greatest value for DuckDB, now sits where BigQuery puts it
    (first ascending, last descending); -(+inf) keeps inf at the other end. NULLs keep their place."""
    items = order.expressions
    if len(items) != 1 or not isinstance(items[0], exp.Ordered) or items[0].meta.get("pulse_mirrored"):
        return
    item = items[0]
    desc = bool(item.args.get("desc"))
    nulls_first = item.args.get("nulls_first")
    if nulls_first is None:
        nulls_first = desc is False  # BigQuery: NULLS FIRST ascending, NULLS LAST descending
    mirrored = exp.Ordered(this=exp.Neg(this=exp.Paren(this=item.this)), desc=not desc, nulls_first=bool(nulls_first))
    mirrored.meta["pulse_mirrored"] = True
    order.set("expressions", [mirrored])


def rule_order_nan_first(node: exp.Expression) -> exp.Expression | None:
    """ORDER BY of a query or a window (not a RANGE frame): NaN sorts first, as in BigQuery."""
    if isinstance(node, exp.Window):
        spec = node.args.get("spec")
        order = node.args.get("order")
        if order is None:
            return None
        if spec is not None and str(spec.args.get("kind") or "").upper() == "RANGE":
            if _has_offsets(spec):
                _mirror_range_key(order)
            elif isinstance(node.this, exp.Func):
                _nan_first(order)  # UNBOUNDED / CURRENT ROW only: peers, DuckDB takes several keys
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


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_FILTERS = (exp.Where, exp.Having, exp.Qualify, exp.Join)


def _is_filter_conjunct(node: exp.Expression) -> bool:
    """True when `node` is a top-level conjunct of WHERE/HAVING/QUALIFY/ON (NULL acts as FALSE)."""
    parent = node.parent
    while isinstance(parent, (exp.And, exp.Paren)):
        parent = parent.parent
    return isinstance(parent, _FILTERS)


def _may_be_nan(value: exp.Expression) -> bool:
    """False for operands that cannot be a FLOAT64 NaN: literals and casts of numeric literals."""
    inner = value.this if isinstance(value, exp.Paren) else value
    if isinstance(inner, exp.Neg):
        inner = inner.this
    if isinstance(inner, (exp.Literal, exp.Boolean, exp.Null)):
        return False
    return not (isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Literal) and not inner.this.is_string)


def _nan_check(*values: exp.Expression) -> exp.Expression:
    checks = [fill(IS_NAN, v=v) for v in values if _may_be_nan(v)]
    if not checks:
        return exp.false()
    out = checks[0]
    for check in checks[1:]:
        out = exp.Or(this=out, expression=check)
    return exp.Paren(this=out)


def rule_nan_comparison(node: exp.Expression) -> exp.Expression | None:
    """Comparisons with NaN: FALSE (TRUE for !=) as in BigQuery, unless an operand is NULL."""
    if isinstance(node, exp.Between):
        x, low, high = node.this, node.args.get("low"), node.args.get("high")
        if any(v is None or _unkeyable(v) for v in (x, low, high)) or not any(map(_may_be_nan, (x, low, high))):
            return None
        # x BETWEEN a AND b is x >= a AND x <= b in BigQuery, each FALSE with a NaN.
        assert low is not None and high is not None  # checked above
        lower, upper = exp.GTE(this=x.copy(), expression=low.copy()), exp.LTE(this=x.copy(), expression=high.copy())
        return exp.Paren(this=exp.and_(_nan_aware(lower), _nan_aware(upper)))
    if not isinstance(node, _COMPARISONS) or _unkeyable(node.this) or _unkeyable(node.expression):
        return None
    if isinstance(node, exp.EQ) and isinstance(node.parent, (exp.Update, exp.SetItem, exp.Set, exp.Tuple)):
        return None  # UPDATE/MERGE ... SET column = value is an assignment
    a, b = node.this, node.expression
    if any(isinstance(v, exp.Null) or isinstance(v, exp.Literal) and v.is_string for v in (a, b)):
        return None  # a string or NULL operand: not a FLOAT64 comparison
    if not _may_be_nan(a) and not _may_be_nan(b):
        return None
    if not isinstance(node, exp.NEQ) and _is_filter_conjunct(node):
        return exp.Paren(this=exp.and_(node, exp.Not(this=_nan_check(a, b))))  # keeps equi-joins hashable
    return _nan_aware(node)


def _nan_aware(node: exp.Expression) -> exp.Expression:
    """CASE form of a comparison: FALSE (TRUE for !=) when an operand is NaN and none is NULL."""
    a, b = node.this, node.expression
    if not _may_be_nan(a) and not _may_be_nan(b):
        return node
    any_nan = _nan_check(a, b)
    both_known = exp.and_(
        exp.Not(this=exp.Is(this=a.copy(), expression=exp.Null())),
        exp.Not(this=exp.Is(this=b.copy(), expression=exp.Null())),
    )
    result = exp.true() if isinstance(node, exp.NEQ) else exp.false()
    return exp.Case(ifs=[exp.If(this=exp.and_(any_nan, both_known), true=result)], default=node)


_SAMPLE_STATISTICS = (exp.Variance, exp.Stddev, exp.StddevSamp, exp.CovarSamp, exp.Corr)
_ONE_VALUE_STATISTICS = (exp.VariancePop, exp.StddevPop, exp.Variance, exp.Stddev, exp.StddevSamp)
_TWO_VALUE_STATISTICS = (exp.CovarPop, exp.CovarSamp, exp.Corr)


def non_finite_statistic(function: exp.Expression, window: exp.Window | None = None) -> exp.Expression | None:
    """VAR / STDDEV / COVAR / CORR over an infinite or NaN input are NaN in BigQuery (DuckDB
    gives 0 for a single value, inf for a covariance, or raises "out of range"); the sample
    forms and CORR are NULL below two (pairs of) values. `function` OVER `window` when given.
    The statistic itself reads the finite rows only (DuckDB raises on an infinite one)."""
    sample = isinstance(function, _SAMPLE_STATISTICS)
    if isinstance(function, _ONE_VALUE_STATISTICS):
        if isinstance(function.this, exp.Distinct) and (sample or window is not None):
            return None
        values = [_plain_argument(function)]
    elif isinstance(function, _TWO_VALUE_STATISTICS):
        values = [function.this, function.expression]
    else:
        return None
    if any(v is None for v in values):
        return None
    finite = " AND ".join(f"ISFINITE(CAST(__v{i} AS DOUBLE))" for i in range(len(values)))
    known = " AND ".join(f"__v{i} IS NOT NULL" for i in range(len(values)))
    args = {f"v{i}": v.copy() for i, v in enumerate(values)}
    for i, value in enumerate(values):
        value.replace(fill(f"CASE WHEN {finite} THEN __v{i} END", **args))
    count = fill(f"COUNT(CASE WHEN {known} THEN 1 END)", **args)
    non_finite = fill(f"BOOL_OR(CASE WHEN {known} THEN NOT ({finite}) END)", **args)
    result: exp.Expression = function
    if window is not None:
        count, non_finite, result = _over(count, window), _over(non_finite, window), window
    ifs = [exp.If(this=exp.LT(this=count, expression=exp.Literal.number(2)), true=exp.Null())] if sample else []
    ifs.append(exp.If(this=non_finite, true=fill("CAST('nan' AS DOUBLE)")))
    return exp.Case(ifs=ifs, default=result)


def rule_population_stats_non_finite(node: exp.Expression) -> exp.Expression | None:
    """VAR / STDDEV / COVAR over an infinite or NaN input (see `non_finite_statistic`).
    Aggregate form; windows: rules_windows.rule_window_statistics."""
    if isinstance(node.parent, exp.Window) or node.find_ancestor(exp.Pivot) is not None:
        return None
    if isinstance(node, exp.Corr):
        return None  # rules_windows.rule_corr_few_pairs
    return non_finite_statistic(node)


_DATETIME_ARITHMETIC: dict[type, str] = {
    exp.DatetimeAdd: "TIMESTAMP", exp.DatetimeSub: "TIMESTAMP",
    exp.TimestampAdd: "TIMESTAMPTZ", exp.TimestampSub: "TIMESTAMPTZ",
}


def rule_datetime_range(node: exp.Expression) -> exp.Expression | None:
    """DATETIME_ADD/SUB and TIMESTAMP_ADD/SUB past year 9999 (or before year 1) raise in
    BigQuery; DuckDB's timestamps reach year 294247. The result keeps its visible type."""
    target = _DATETIME_ARITHMETIC.get(type(node))
    if target is None or node.meta.get("pulse_range_checked"):
        return None
    node.meta["pulse_range_checked"] = True
    checked = fill(
        "CASE WHEN YEAR(__r) BETWEEN 1 AND 9999 THEN __r ELSE (CASE WHEN CAST("
        "'datetime overflow: the result is outside years 1 to 9999 (BigQuery raises this error): ' "
        f"|| CAST(__r AS VARCHAR) AS {target}) IS NULL THEN NULL END) END",
        r=node,
    )
    return exp.cast(checked, exp.DataType.build(target))


def _avg_parts(avg: exp.Avg) -> tuple[exp.Expression, bool] | None:
    """(argument, distinct) of AVG when its DuckDB type can be read at bind time, else None.

    A typed macro overload is chosen from its argument's type before aggregates, window
    functions and subqueries are bound, so an argument holding one cannot be used; a bare
    NULL has no type to choose by.
    """
    value = avg.this
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        if len(value.expressions) != 1:
            return None
        value = value.expressions[0]
    if value is None or isinstance(value, exp.Null) or any(
        isinstance(n, (exp.AggFunc, exp.Window, exp.Subquery, exp.Select)) for n in value.walk()
    ):
        return None
    return value, distinct


def _avg_pick(value: exp.Expression, distinct: bool, over: exp.Window | None) -> exp.Expression:
    """bq_avg_pick(x, SUM(units(x)), COUNT(x), AVG(x)), each aggregate OVER `over` when given."""
    def arg(x: exp.Expression) -> exp.Expression:
        return exp.Distinct(expressions=[x]) if distinct else x

    parts: list[exp.Expression] = [
        exp.Sum(this=arg(exp.Anonymous(this=macro_call("bq_numeric_units"), expressions=[value.copy()]))),
        exp.Count(this=arg(value.copy())),
        exp.Avg(this=arg(value.copy())),
    ]
    if over is not None:
        parts = [_over(p, over) for p in parts]
    return exp.Anonymous(this=macro_call("bq_avg_pick"), expressions=[value.copy(), *parts])


def rule_avg_numeric(node: exp.Expression) -> exp.Expression | None:
    """AVG of a NUMERIC is a NUMERIC in BigQuery (exact, rounded half away from zero to 9
    digits); DuckDB's AVG of a DECIMAL is a DOUBLE. The macro `bq_avg_pick` (functions.py)
    keeps DuckDB's AVG for every other type, chosen by the argument's type at bind time."""
    if node.find_ancestor(exp.Pivot) is not None:
        return None  # PIVOT takes a bare aggregate
    if isinstance(node, exp.Avg) and not isinstance(node.parent, exp.Window):
        parts = _avg_parts(node)
        return _avg_pick(*parts, None) if parts else None
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Avg):
        parts = _avg_parts(node.this)
        return _avg_pick(*parts, node) if parts else None
    return None


def _float_fraction(node: exp.Expression) -> bool:
    """True for a FLOAT64 literal (rules.rule_float_literal's DOUBLE cast), also negated or in parentheses."""
    inner = node
    while isinstance(inner, (exp.Paren, exp.Neg)):
        inner = inner.this
    return isinstance(inner, exp.Cast) and inner.to.is_type("double")


def rule_percentile_cont_nan(node: exp.Expression) -> exp.Expression | None:
    """PERCENTILE_CONT over a FLOAT64 holding NaN: BigQuery orders NaN below every value,
    DuckDB above. When the partition holds a NaN the mirrored form -PERCENTILE_CONT(-x, 1 - p)
    is used (NaN then sorts where BigQuery puts it); otherwise DuckDB's own result."""
    if not isinstance(node, exp.Window) or not isinstance(node.this, exp.PercentileCont) or node.meta.get("pulse_rule"):
        return None
    node.meta["pulse_rule"] = True
    value, fraction = node.this.this, node.this.expression
    if value is None or fraction is None:
        return None
    if _float_fraction(fraction):
        # A FLOAT64 percentile makes the result FLOAT64 (supertype of NUMERIC and FLOAT64);
        # DuckDB would return a DECIMAL for a NUMERIC value.
        value = exp.cast(value, exp.DataType.build("DOUBLE"))
        node.this.set("this", value)
    has_nan = _over(exp.Anonymous(this="BOOL_OR", expressions=[fill(IS_NAN, v=value)]), node)
    mirrored = _over(exp.PercentileCont(this=fill("-(__x)", x=value), expression=fill("1 - (__p)", p=fraction)), node)
    return exp.Case(ifs=[exp.If(this=has_nan, true=exp.Neg(this=exp.Paren(this=mirrored)))], default=node)


_SPREAD_KINDS: dict[type, str] = {
    exp.Variance: "var_samp", exp.VariancePop: "var_pop",
    exp.Stddev: "stddev_samp", exp.StddevSamp: "stddev_samp", exp.StddevPop: "stddev_pop",
}


def rule_numeric_spread(node: exp.Expression) -> exp.Expression | None:
    """VAR_* / STDDEV_* of a NUMERIC are computed exactly by BigQuery; DuckDB converts each
    value to DOUBLE first, so values that differ beyond DOUBLE's 16 digits (1e24 + 0.1 and
    1e24 + 0.2) give 0. The typed macro `bq_<kind>_pick` computes the spread from the exact
    differences for a NUMERIC argument and keeps DuckDB's result (and the NaN rule's) for
    every other type. Aggregate form only; DISTINCT, windows and PIVOT keep DuckDB's."""
    kind = _SPREAD_KINDS.get(type(node))
    if kind is None or isinstance(node.parent, exp.Window) or node.find_ancestor(exp.Pivot) is not None:
        return None
    value = node.this
    if value is None or isinstance(value, (exp.Distinct, exp.Null)) or not typed_at_bind(value):
        return None
    value = value.copy()
    units = exp.Anonymous(this=macro_call("bq_numeric_units"), expressions=[value.copy()])
    values = exp.Filter(
        this=exp.Anonymous(this="LIST", expressions=[units]),
        expression=exp.Where(this=exp.Not(this=exp.Is(this=units.copy(), expression=exp.Null()))),
    )
    result = rule_population_stats_non_finite(node) or node
    return exp.Anonymous(this=macro_call(f"bq_{kind}_pick"), expressions=[value, values, result])


def _numeric_fraction(node: exp.Expression) -> bool:
    """True for an evidently NUMERIC percentile (a NUMERIC literal or a cast to NUMERIC)."""
    inner = node.this if isinstance(node, exp.Paren) else node
    return isinstance(inner, exp.Cast) and inner.to.this in (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL)


def rule_percentile_cont_numeric(node: exp.Expression) -> exp.Expression | None:
    """PERCENTILE_CONT(x, p) OVER (...) with a NUMERIC p and a NUMERIC x is NUMERIC, computed
    exactly by BigQuery; DuckDB interpolates in DOUBLE (1e28-scale values come back off by
    1e12). The typed macro `bq_percentile_cont_pick` uses the exact helper for a NUMERIC x
    and DuckDB's result (with the NaN rule) for every other type."""
    if not isinstance(node, exp.Window) or not isinstance(node.this, exp.PercentileCont):
        return None
    if node.meta.get("pulse_pct_numeric"):
        return None
    value, fraction = node.this.this, node.this.expression
    if value is None or fraction is None or not _numeric_fraction(fraction) or not typed_at_bind(value):
        return None
    node.meta["pulse_pct_numeric"] = True
    values = _over(exp.Anonymous(this="LIST", expressions=[value.copy()]), node)
    result = rule_percentile_cont_nan(node) or node
    return exp.Anonymous(this=macro_call("bq_percentile_cont_pick"),
                         expressions=[value.copy(), values, fraction.copy(), result])


RULES: dict[type, tuple[Rule, ...]] = {
    exp.Variance: (rule_numeric_spread, rule_population_stats_non_finite),
    exp.Stddev: (rule_numeric_spread, rule_population_stats_non_finite),
    exp.StddevSamp: (rule_numeric_spread, rule_population_stats_non_finite),
    exp.CovarSamp: (rule_population_stats_non_finite,),
    exp.Avg: (rule_avg_numeric,),
    exp.Cast: (rule_cast_numeric_precision,),
    **{t: (rule_datetime_range,) for t in _DATETIME_ARITHMETIC},
    exp.VariancePop: (rule_numeric_spread, rule_population_stats_non_finite),
    exp.StddevPop: (rule_numeric_spread, rule_population_stats_non_finite),
    exp.CovarPop: (rule_population_stats_non_finite,),
    **{t: (rule_nan_comparison,) for t in _COMPARISONS},
    exp.Between: (rule_nan_comparison,),
    exp.Sum: (rule_sum_overflow,),
    exp.Min: (rule_min_nan,),
    exp.Window: (rule_order_nan_first, rule_sum_overflow, rule_min_nan, rule_avg_numeric, rule_percentile_cont_numeric,
                  rule_percentile_cont_nan),
    exp.Select: (rule_order_nan_first,),
}
