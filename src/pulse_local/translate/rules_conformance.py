"""Rules learned from ZetaSQL's compliance tests (`make conformance`).

Each rule fixes a place where DuckDB returned an answer where BigQuery returns a
different one or raises an error: division by zero (BigQuery raises, DuckDB gives
inf, NaN or NULL), arithmetic on a literal NULL (rejected by BigQuery), IEEE_DIVIDE by
a negative zero, and the navigation functions' argument checks. They are registered
in `pulse_local.translate.rules.RULES_BY_TYPE` ahead of the older rules.
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.rules import Rule, fail, fill

#: Message of the runtime error DuckDB raises where BigQuery raises "division by zero".
DIVISION_BY_ZERO = "division by zero (BigQuery raises an error here; use SAFE_DIVIDE for NULL)"

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
        template = f"CASE WHEN __b = 0 THEN ERROR('{DIVISION_BY_ZERO}') ELSE __a / __b END"
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


def _is_constant(node: exp.Expression) -> bool:
    return not any(isinstance(n, (exp.Column, exp.AggFunc, exp.Window, exp.Subquery)) for n in node.walk())


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
        if not _is_constant(offset):
            raise fail(node, f"{name} with a non-constant offset", "BigQuery requires a constant offset")
    default = node.args.get("default")
    if default is not None and not _is_constant(default):
        raise fail(node, f"{name} with a non-constant default", "BigQuery requires a constant default value")
    window = node.parent
    if isinstance(window, exp.Window) and window.args.get("spec") is not None:
        raise fail(node, f"{name} with a window frame", "BigQuery does not allow a frame for navigation functions")
    return None


#: Registered ahead of the rules in `rules.RULES_BY_TYPE` (see the end of rules.py).
CONFORMANCE_RULES: dict[type, tuple[Rule, ...]] = {
    exp.Add: (rule_literal_null_operand,),
    exp.Sub: (rule_literal_null_operand,),
    exp.Mul: (rule_literal_null_operand,),
    exp.Div: (rule_literal_null_operand, rule_division_by_zero),
    exp.IntDiv: (rule_literal_null_operand, rule_division_by_zero),
    exp.Mod: (rule_literal_null_operand, rule_division_by_zero),
    exp.Anonymous: (rule_ieee_divide,),
    exp.Lag: (rule_navigation_arguments,),
    exp.Lead: (rule_navigation_arguments,),
}
