"""Window-function rules: forms BigQuery answers differently from DuckDB.

- `SAFE.f(...) OVER (...)` reaches sqlglot as a dotted name `safe.f`, so none of the rules
  for `f` ran and DuckDB ran it as the plain function. It is read again as `f(...)` so the
  argument checks of the other rules apply (BigQuery's SAFE does not cover analytic
  functions' argument errors, e.g. NTILE(NULL)).
- `CORR(...) OVER (...)` over fewer than two non-NULL pairs is NULL (DuckDB: NaN).
- A RANGE frame whose bound (key ± offset) passes the end of the key's type: BigQuery
  computes the bound exactly, DuckDB overflows (NUMERIC: an error; FLOAT64: an infinite
  bound that takes the rows keyed ±inf in); an INT64 key is ordered as a HUGEINT, where the
  bound cannot overflow.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from pulse_local.translate.functions import macro_call
from pulse_local.translate.rules import (
    Rule,
    fail,
    fill,
    typed_at_bind,
)
from pulse_local.translate.rules_constants import (
    is_constant,
    is_null_constant,
    negative_constant,
)
from pulse_local.translate.rules_numbers import non_finite_statistic


def rule_safe_window_function(node: exp.Expression) -> exp.Expression | None:
    """`SAFE.f(...) OVER (...)`: the window function `f` itself, with its checks."""
    if not isinstance(node, exp.Dot) or not isinstance(node.parent, exp.Window) or node.parent.this is not node:
        return None
    prefix, call = node.this, node.expression
    if not (isinstance(prefix, exp.Identifier) and prefix.name.upper() == "SAFE" and isinstance(call, exp.Anonymous)):
        return None
    parsed = sqlglot.parse_one(call.sql(dialect="bigquery"), read="bigquery")
    return parsed if isinstance(parsed, exp.Expression) else None


def _over(function: exp.Expression, window: exp.Window) -> exp.Window:
    """`function` OVER the same window as `window`."""
    copy = window.copy()
    copy.set("this", function)
    return copy


def rule_window_statistics(node: exp.Expression) -> exp.Expression | None:
    """VAR / STDDEV / COVAR / CORR ... OVER (...): NaN over an infinite or NaN input, NULL
    for the sample forms and CORR below two (pairs of) values, as in BigQuery (DuckDB: NaN,
    0, or the error "out of range")."""
    if not isinstance(node, exp.Window) or node.meta.get("pulse_statistic"):
        return None
    node.meta["pulse_statistic"] = True
    return non_finite_statistic(node.this, node)


def rule_range_frame_saturation(node: exp.Expression) -> exp.Expression | None:
    """A RANGE frame bound that widens the frame (start PRECEDING, end FOLLOWING) past the end
    of a FLOAT64 or NUMERIC key's range: BigQuery's exact bound still includes every finite
    key and no infinite one; DuckDB's bound becomes infinite (FLOAT64) or overflows (NUMERIC).
    The offset goes through the typed macro `bq_range_upper` / `bq_range_lower`, which DuckDB
    evaluates per row and which is the offset itself for every other type."""
    window = node.parent
    if (not isinstance(node, exp.WindowSpec) or not isinstance(window, exp.Window)
            or str(node.args.get("kind") or "").upper() != "RANGE" or node.meta.get("pulse_range_saturated")):
        return None
    order = window.args.get("order")
    if order is None or len(order.expressions) != 1 or not typed_at_bind(order.expressions[0].this):
        return None
    node.meta["pulse_range_saturated"] = True
    key = order.expressions[0].this
    for side in ("start", "end"):
        bound = node.args.get(side)
        direction = str(node.args.get(f"{side}_side") or "").upper()
        if bound is None or isinstance(bound, (str, exp.Var)) or bound.find(exp.Interval) or direction not in (
                "PRECEDING", "FOLLOWING"):
            continue
        if (side == "start") != (direction == "PRECEDING"):
            continue  # a bound inside the frame (start FOLLOWING, end PRECEDING): exact already
        # the bound moves up (key + offset) for FOLLOWING ascending and PRECEDING descending
        upward = (direction == "FOLLOWING") != bool(order.expressions[0].args.get("desc"))
        name = "bq_range_upper" if upward else "bq_range_lower"
        node.set(side, exp.Anonymous(this=macro_call(name), expressions=[key.copy(), bound]))
    if _numeric_offsets(node):  # an INT64 key is ordered as a HUGEINT: key ± offset cannot overflow
        order.expressions[0].set("this", exp.Anonymous(this=macro_call("bq_range_key"), expressions=[key.copy()]))
    return None


def _numeric_offsets(spec: exp.WindowSpec) -> bool:
    """True when a bound of the frame is a numeric offset (n PRECEDING / n FOLLOWING)."""
    for side in ("start", "end"):
        bound = spec.args.get(side)
        if bound is not None and not isinstance(bound, (str, exp.Var)) and not bound.find(exp.Interval):
            return True
    return False


def rule_navigation_arguments(node: exp.Expression) -> exp.Expression | None:
    """LAG/LEAD: BigQuery requires a non-negative, non-NULL constant offset and a constant default."""
    if not isinstance(node, (exp.Lag, exp.Lead)):
        return None
    name = node.key.upper()
    offset = node.args.get("offset")
    if offset is not None:
        inner = offset.this if isinstance(offset, exp.Paren) else offset
        if isinstance(inner, (exp.Neg, exp.Null)) or (
            isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Null)
        ):
            raise fail(node, f"{name} with a negative or NULL offset", "BigQuery raises an error for it")
        if not is_constant(offset):
            raise fail(node, f"{name} with a non-constant offset", "BigQuery requires a constant offset")
    default = node.args.get("default")
    if default is not None and not is_constant(default):
        raise fail(node, f"{name} with a non-constant default", "BigQuery requires a constant default value")
    window = node.parent
    if isinstance(window, exp.Window) and frame_of(window) is not None:
        raise fail(node, f"{name} with a window frame", "BigQuery does not allow a frame for navigation functions")
    return None


def frame_of(window: exp.Window) -> exp.Expression | None:
    """The frame of `window`, also when it names a window of the WINDOW clause (OVER w)."""
    if window.args.get("spec") is not None:
        return window.args["spec"]
    name = window.args.get("alias")
    select = window.find_ancestor(exp.Select)
    if name is None or select is None:
        return None
    for named in select.args.get("windows") or []:
        if isinstance(named.this, exp.Identifier) and named.this.name.lower() == name.name.lower():
            return frame_of(named)
    return None


def rule_nth_value_n(node: exp.Expression) -> exp.Expression | None:
    """NTH_VALUE's N must be a positive non-NULL constant in BigQuery."""
    if not isinstance(node, exp.NthValue):
        return None
    n = node.args.get("offset")
    inner = n.this if isinstance(n, exp.Paren) else n
    if isinstance(inner, (exp.Neg, exp.Null)) or (isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Null)) or (
        isinstance(inner, exp.Literal) and not inner.is_string and inner.name == "0"
    ):
        raise fail(node, "NTH_VALUE with N <= 0 or NULL", "BigQuery raises an error for it")
    return None


_NUMBERING = (exp.RowNumber, exp.Rank, exp.DenseRank, exp.PercentRank, exp.CumeDist, exp.Ntile)


def rule_window_checks(node: exp.Expression) -> exp.Expression | None:
    """Window forms BigQuery rejects and DuckDB runs: numbering functions with a frame,
    NTILE of a NULL or non-positive constant, a NULL frame offset."""
    if isinstance(node, exp.WindowSpec):
        for side in ("start", "end"):
            if is_null_constant(node.args.get(side)):
                raise fail(node, "window frame with a NULL offset", "BigQuery raises an error for it")
        return None
    if not isinstance(node, exp.Window):
        return None
    function = node.this
    if isinstance(function, _NUMBERING) and node.args.get("spec") is not None:
        raise fail(node, f"{function.sql_name()} with a window frame",
                   "BigQuery does not allow a frame for numbering functions")
    if isinstance(function, exp.Ntile):
        n = function.this
        inner = n.this if isinstance(n, exp.Paren) else n
        if is_null_constant(n) or isinstance(inner, exp.Neg) or (
            isinstance(inner, exp.Literal) and not inner.is_string and inner.name == "0"
        ):
            raise fail(node, "NTILE with a NULL or non-positive bucket count", "BigQuery raises an error for it")
    return None


_FRAME_OFFSET_ERROR = "Window frame offset for PRECEDING or FOLLOWING must be non-negative (BigQuery raises this error)"


def rule_frame_offsets(node: exp.Expression) -> exp.Expression | None:
    """A window frame offset must be non-negative (and not NaN) in BigQuery; DuckDB runs a
    negative one. A negative literal is rejected; a computed offset is checked when run."""
    if not isinstance(node, exp.WindowSpec) or node.meta.get("pulse_rule"):
        return None
    node.meta["pulse_rule"] = True
    for side in ("start", "end"):
        offset = node.args.get(side)
        if offset is None or isinstance(offset, (str, exp.Interval)) or (
            isinstance(offset, exp.Literal) and not offset.is_string
        ) or isinstance(offset, exp.Var):
            continue
        if negative_constant(offset):
            raise fail(node, f"window frame offset {offset.sql()}", "BigQuery requires a non-negative offset")
        if any(isinstance(n, (exp.Column, exp.Interval)) for n in offset.walk()):
            continue  # not a constant number: BigQuery rejects it at analysis, DuckDB too
        node.set(side, fill(
            f"CASE WHEN ISNAN(CAST(__o AS DOUBLE)) OR CAST(__o AS DOUBLE) < 0 THEN ERROR('{_FRAME_OFFSET_ERROR}') "
            "ELSE __o END", o=offset))
    return None


def _frame_offsets_only(spec: exp.Expression | None) -> bool:
    """True when both frame bounds are offsets (n PRECEDING / n FOLLOWING), so the frame can be empty."""
    if not isinstance(spec, exp.WindowSpec):
        return False
    bounds = [spec.args.get("start"), spec.args.get("end")]
    return all(b is not None and not isinstance(b, (str, exp.Var)) for b in bounds)


def rule_count_empty_frame(node: exp.Expression) -> exp.Expression | None:
    """COUNT over an empty frame (1 PRECEDING AND 2 PRECEDING) is 0; DuckDB can return -1."""
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Count) and _frame_offsets_only(node.args.get("spec")):
        if node.meta.get("pulse_count_frame"):
            return None
        node.meta["pulse_count_frame"] = True
        return fill("GREATEST(__c, 0)", c=node)
    return None


def rule_corr_few_pairs(node: exp.Expression) -> exp.Expression | None:
    """CORR over fewer than two non-NULL pairs is NULL in BigQuery (DuckDB: NaN), and NaN over
    an infinite or NaN input (DuckDB raises "out of range"). Aggregate form."""
    if not isinstance(node, exp.Corr) or isinstance(node.parent, exp.Window) or node.find_ancestor(exp.Pivot):
        return None
    return non_finite_statistic(node)


RULES: dict[type, tuple[Rule, ...]] = {
    exp.Dot: (rule_safe_window_function,),
}

#: Run after every other rule of their node types (registry.py appends them): they wrap the node.
LATE_RULES: dict[type, tuple[Rule, ...]] = {
    exp.Window: (rule_window_statistics,),
    exp.WindowSpec: (rule_range_frame_saturation,),
}
