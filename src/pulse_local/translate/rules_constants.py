"""Recognising constant arguments, and the raising expression rules share.

BigQuery rejects some arguments only when they are constants (a NULL or negative LIMIT,
a zero step, a NULL frame offset); the rules that reject them, and those that make DuckDB
raise where BigQuery does, use these helpers.
"""

from __future__ import annotations

from sqlglot import exp


def is_constant(node: exp.Expression) -> bool:
    """True when `node` reads no column, aggregate, window function or subquery."""
    return not any(isinstance(n, (exp.Column, exp.AggFunc, exp.Window, exp.Subquery)) for n in node.walk())


def is_null_constant(node: exp.Expression | None) -> bool:
    """True for NULL, (NULL) and CAST(NULL AS type)."""
    inner = node.this if isinstance(node, exp.Paren) else node
    return isinstance(inner, exp.Null) or (isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Null))


def is_zero_constant(node: exp.Expression | None) -> bool:
    """True for the literal 0 (also 0.0, in parentheses, cast, or as INTERVAL 0 ...)."""
    inner = node.this if isinstance(node, (exp.Paren, exp.Interval)) else node
    inner = inner.this if isinstance(inner, exp.Paren) else inner
    if isinstance(inner, exp.Cast):
        inner = inner.this
    return isinstance(inner, exp.Literal) and inner.name.strip() in {"0", "0.0"}


def negative_constant(node: exp.Expression | None) -> bool:
    """True for a negated non-zero literal (-1, (-2.5))."""
    inner = node.this if isinstance(node, exp.Paren) else node
    return isinstance(inner, exp.Neg) and isinstance(inner.this, exp.Literal) and inner.this.name not in {"0", "0.0"}


def raise_text(message: str, value: str) -> str:
    """An expression that fails with `message` when evaluated (a CAST, no side effects, so
    SAFE. turns it into NULL and aliases of it stay usable), NULL when `value` is NULL."""
    return f"(CASE WHEN CAST('{message}: ' || CAST({value} AS VARCHAR) AS BIGINT) IS NULL THEN NULL END)"


def error_calls(node: exp.Expression) -> list[exp.Expression]:
    return [n for n in node.walk() if isinstance(n, exp.Anonymous) and n.name.upper() == "ERROR"]
