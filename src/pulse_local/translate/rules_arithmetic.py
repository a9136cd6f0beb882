"""Arithmetic rules: division by zero, literal NULL operands, IEEE_DIVIDE, SAFE. guards.

BigQuery raises on `x / 0`, `DIV(x, 0)`, `MOD(x, 0)` and on a FLOAT64 division that
overflows; DuckDB returns inf, NaN or NULL. BigQuery rejects a bare NULL operand of an
operator. `SAFE.f(...)` turns f's own errors into NULL, not those of its arguments.
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.rules import (
    fail,
    fill,
)
from pulse_local.translate.rules_constants import (
    error_calls,
)

#: Message of the runtime error DuckDB raises where BigQuery raises "division by zero".
DIVISION_BY_ZERO = "division by zero (BigQuery raises an error here; use SAFE_DIVIDE for NULL)"


DOUBLE_OVERFLOW = "double overflow: the FLOAT64 division is infinite (BigQuery raises this error)"


_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod)


def rule_literal_null_operand(node: exp.Expression) -> exp.Expression | None:
    """BigQuery rejects ``1 + NULL`` ("Operands of + cannot be literal NULL"); DuckDB gives NULL."""
    if not isinstance(node, _ARITHMETIC):
        return None
    for operand in (node.this, node.expression):
        inner = operand.this if isinstance(operand, exp.Paren) else operand
        if isinstance(inner, exp.Null):
            raise fail(node, f"arithmetic on a literal NULL ({node.key.upper()})",
                       "BigQuery rejects a bare NULL operand of an arithmetic operator",
                       "Write CAST(NULL AS INT64) (or the type you mean) instead of NULL.")
    return None


def rule_division_by_zero(node: exp.Expression) -> exp.Expression | None:
    """``x / 0``, ``DIV(x, 0)`` and ``MOD(x, 0)`` raise in BigQuery; DuckDB returns inf/NaN/NULL."""
    if isinstance(node, exp.Div) and not node.args.get("safe"):
        # FLOAT64 division overflowing to inf raises "double overflow" in BigQuery too
        template = (f"CASE WHEN __b = 0 THEN ERROR('{DIVISION_BY_ZERO}') "
                    f"WHEN ISINF(__a / __b) AND NOT ISINF(__a) THEN ERROR('{DOUBLE_OVERFLOW}') ELSE __a / __b END")
    elif isinstance(node, exp.IntDiv):
        template = f"CASE WHEN __b = 0 THEN ERROR('{DIVISION_BY_ZERO}') ELSE __a // __b END"
    elif isinstance(node, exp.Mod):
        template = f"CASE WHEN __b = 0 THEN ERROR('{DIVISION_BY_ZERO}') ELSE __a % __b END"
    else:
        return None
    divisor = node.expression
    if isinstance(divisor, exp.Literal) and not divisor.is_string and divisor.name not in {"0", "0.0"}:
        return None  # a non-zero constant divisor cannot fail
    return fill(template, a=node.this, b=divisor)


def rule_ieee_divide(node: exp.Expression) -> exp.Expression | None:
    """IEEE_DIVIDE is DOUBLE division with IEEE results: DuckDB's DOUBLE ``/`` (keeps -0.0's sign)."""
    if isinstance(node, exp.Anonymous) and node.name.upper() == "IEEE_DIVIDE" and len(node.expressions) == 2:
        a, b = node.expressions
        return fill("CAST(__a AS DOUBLE) / CAST(__b AS DOUBLE)", a=a, b=b)
    return None


def rule_safe_guards(node: exp.Expression) -> exp.Expression | None:
    """SAFE.f(...): f's own guarded errors become NULL; an argument that can raise is rejected.

    The rules above guard BigQuery's errors with DuckDB's ERROR(), which DuckDB refuses
    inside TRY (what SAFE. becomes), and BigQuery's SAFE only covers f itself.
    """
    if not isinstance(node, exp.SafeFunc):
        return None
    inner = node.this
    if isinstance(inner, exp.Case):
        for branch in inner.args.get("ifs") or []:
            if isinstance(branch.args.get("true"), exp.Anonymous) and branch.args["true"].name.upper() == "ERROR":
                branch.set("true", exp.Null())
    if error_calls(inner):
        raise fail(node, "SAFE. function whose argument can raise (division by zero, ...)",
                   "BigQuery raises for the argument; DuckDB cannot raise inside SAFE's TRY",
                   "Compute the argument with SAFE_DIVIDE (or a CASE) first.")
    return None


def _outside_aggregates(node: exp.Expression) -> list[exp.Expression]:
    """The nodes of `node` that are not inside an aggregate function's argument."""
    found: list[exp.Expression] = []
    stack = [node]
    while stack:
        current = stack.pop()
        found.append(current)
        if isinstance(current, (exp.AggFunc, exp.Subquery, exp.Select)):
            continue
        stack.extend(current.iter_expressions())
    return found


def rule_safe_aggregate(node: exp.Expression) -> exp.Expression | None:
    """SAFE.SUM(x) and other SAFE. aggregates: DuckDB refuses an aggregate inside TRY. The
    aggregate's own guards (the failing CASTs of the overflow checks, ERROR() calls) around
    it become NULL-returning (TRY_CAST, NULL), which is what SAFE. means; its argument keeps
    raising, as in BigQuery."""
    if not isinstance(node, exp.SafeFunc):
        return None
    outside = _outside_aggregates(node.this)
    if not any(isinstance(n, exp.AggFunc) for n in outside):
        return None
    for aggregate in [n for n in outside if isinstance(n, exp.AggFunc)]:
        if error_calls(aggregate):
            raise fail(node, "SAFE. aggregate whose argument can raise (division by zero, ...)",
                       "BigQuery raises for the argument; SAFE. only covers the aggregate itself",
                       "Compute the argument with SAFE_DIVIDE (or a CASE) first.")
    for guard in outside:
        if isinstance(guard, exp.Cast) and not isinstance(guard, exp.TryCast):
            guard.replace(exp.TryCast(this=guard.this, to=guard.to))
        elif isinstance(guard, exp.Anonymous) and guard.name.upper() == "ERROR":
            guard.replace(exp.Null())
    return node.this


def rule_not_literal_null(node: exp.Expression) -> exp.Expression | None:
    """BigQuery rejects ``NOT NULL`` ("Operands of NOT cannot be literal NULL"); DuckDB gives NULL."""
    if isinstance(node, exp.Not):
        inner = node.this.this if isinstance(node.this, exp.Paren) else node.this
        if isinstance(inner, exp.Null):
            raise fail(node, "NOT of a literal NULL", "BigQuery rejects a bare NULL operand of NOT",
                       "Write CAST(NULL AS BOOL) instead of NULL.")
    return None


def rule_safe_divide_overflow(node: exp.Expression) -> exp.Expression | None:
    """SAFE_DIVIDE is NULL where `/` raises: a zero divisor and a FLOAT64 overflow to inf."""
    if not isinstance(node, exp.SafeDivide) or node.meta.get("pulse_rule"):
        return None
    return fill(
        "CASE WHEN __b = 0 THEN NULL WHEN ISINF(__a / __b) AND NOT ISINF(__a) THEN NULL ELSE __a / __b END",
        a=node.this, b=node.expression,
    )
