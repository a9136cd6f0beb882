"""Window-function rules: forms BigQuery answers differently from DuckDB.

- `SAFE.f(...) OVER (...)` reaches sqlglot as a dotted name `safe.f`, so none of the rules
  for `f` ran and DuckDB ran it as the plain function. It is read again as `f(...)` so the
  argument checks of the other rules apply (BigQuery's SAFE does not cover analytic
  functions' argument errors, e.g. NTILE(NULL)).
- `CORR(...) OVER (...)` over fewer than two non-NULL pairs is NULL (DuckDB: NaN).
- A RANGE frame whose bound (key ± offset) passes the end of the key's type: BigQuery
  computes the bound exactly, DuckDB overflows (NUMERIC: an error; FLOAT64: an infinite
  bound that takes the rows keyed ±inf in; INT64: an error, left as it is).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from pulse_local.translate.functions import macro_call
from pulse_local.translate.rules import Rule, fill, typed_at_bind


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


def rule_corr_window_few_pairs(node: exp.Expression) -> exp.Expression | None:
    """CORR(...) OVER (...) over fewer than two non-NULL pairs is NULL in BigQuery (DuckDB: NaN)."""
    if not isinstance(node, exp.Window) or not isinstance(node.this, exp.Corr) or node.meta.get("pulse_corr"):
        return None
    node.meta["pulse_corr"] = True
    corr = node.this
    pairs = fill("COUNT(CASE WHEN __y IS NOT NULL AND __x IS NOT NULL THEN 1 END)", y=corr.this, x=corr.expression)
    return exp.Case(ifs=[exp.If(this=exp.LT(this=_over(pairs, node), expression=exp.Literal.number(2)),
                                true=exp.Null())], default=node)


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
    return None


RULES: dict[type, tuple[Rule, ...]] = {
    exp.Dot: (rule_safe_window_function,),
}

#: Run after every other rule of their node types (registry.py appends them): they wrap the node.
LATE_RULES: dict[type, tuple[Rule, ...]] = {
    exp.Window: (rule_corr_window_few_pairs,),
    exp.WindowSpec: (rule_range_frame_saturation,),
}
