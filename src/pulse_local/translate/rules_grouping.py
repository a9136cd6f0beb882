"""Query-level rules: GROUPING SETS / ROLLUP / CUBE, statement-level SELECT AS STRUCT,
LIMIT NULL, and float literals beside NUMERIC values in UNION columns and arrays.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from pulse_local.translate.rules import (
    fail,
)
from pulse_local.translate.rules_constants import (
    is_null_constant,
)

_GROUPING_LISTS = (exp.GroupingSets, exp.Rollup, exp.Cube, exp.Tuple)


def _grouping_resolver(select: exp.Expression) -> Callable[[exp.Expression], exp.Expression]:
    """Map a grouping item to what it names: an ordinal or a select-list alias -> the expression."""
    projections = list(select.expressions) if isinstance(select, exp.Select) else []
    aliases = {p.alias.lower(): p.this for p in projections if isinstance(p, exp.Alias)}

    def resolve(item: exp.Expression) -> exp.Expression:
        if isinstance(item, exp.Literal) and item.is_int and 1 <= int(item.name) <= len(projections):
            chosen = projections[int(item.name) - 1]
            return chosen.this if isinstance(chosen, exp.Alias) else chosen
        if isinstance(item, exp.Column) and not item.table and item.name.lower() in aliases:
            return aliases[item.name.lower()]
        return item

    return resolve


def _leaves(node: exp.Expression, resolve: Callable[[exp.Expression], exp.Expression]) -> list[exp.Expression]:
    if isinstance(node, _GROUPING_LISTS):
        return [leaf for item in node.expressions for leaf in _leaves(item, resolve)]
    if isinstance(node, exp.Paren):
        return _leaves(node.this, resolve)
    return [resolve(node)]


def _unify_aliases(node: exp.Group, resolve: Callable[[exp.Expression], exp.Expression]) -> None:
    """A select-list alias in a grouping list that names an expression also grouped by
    itself (or by ordinal) elsewhere: BigQuery groups both as one item, DuckDB as two."""
    items = [item for lst in node.find_all(*_GROUPING_LISTS) for item in lst.expressions]
    aliased = [(item, resolve(item)) for item in items if isinstance(item, exp.Column) and resolve(item) is not item]
    plain = {item.sql() for item in items if not any(item is a for a, _ in aliased)}
    if any(target.sql() in plain for _, target in aliased):
        for item, target in aliased:
            item.replace(target.copy())


def rule_grouping_sets(node: exp.Expression) -> exp.Expression | None:
    """GROUPING SETS / ROLLUP / CUBE cases where DuckDB groups differently from BigQuery.

    BigQuery computes a select expression over a grouped column (``a + 1`` next to ``a``)
    from that column, DuckDB matches it to the grouping item ``a + 1`` instead; and a
    ROLLUP/CUBE that repeats an item yields other grouping sets. Both are rejected.
    """
    if not isinstance(node, exp.Group) or not any(isinstance(e, _GROUPING_LISTS[:3]) for e in node.expressions):
        return None
    parent = node.parent
    resolve = _grouping_resolver(parent) if isinstance(parent, exp.Expression) else (lambda e: e)
    for multi in node.find_all(exp.Rollup, exp.Cube):
        keys = [tuple(leaf.sql() for leaf in _leaves(item, resolve)) for item in multi.expressions]
        if len(set(keys)) != len(keys):
            raise fail(node, f"{multi.key.upper()} with a repeated item",
                       "DuckDB builds other grouping sets from repeated items than BigQuery",
                       "List each item once.")
    for sets in node.find_all(exp.GroupingSets):
        keys = [tuple(leaf.sql() for leaf in _leaves(item, resolve)) for item in sets.expressions]
        if len(set(keys)) != len(keys):
            raise fail(node, "GROUPING SETS with a repeated set",
                       "BigQuery returns each repeated set's rows again, DuckDB once",
                       "List each grouping set once.")
    for lst in list(node.find_all(*_GROUPING_LISTS)):
        for item in list(lst.expressions):
            if isinstance(item, exp.Literal) and item.is_int:
                target = resolve(item)
                if target is item or isinstance(target, exp.Literal):
                    raise fail(node, f"grouping item {item.name}", "an ordinal naming a constant (or no column)",
                               "Group by the column or expression itself.")
                item.replace(target.copy())
    _unify_aliases(node, resolve)
    leaves = [leaf for e in node.expressions for leaf in _leaves(e, resolve)]
    columns = {leaf.sql() for leaf in leaves if isinstance(leaf, exp.Column)}
    for leaf in leaves:
        if not isinstance(leaf, exp.Column) and any(c.sql() in columns for c in leaf.find_all(exp.Column)):
            raise fail(node, f"grouping item {leaf.sql(dialect='bigquery')} next to one of its columns",
                       "BigQuery computes the expression from the grouped column, DuckDB groups by it",
                       "Group by the column only and compute the expression in the select list.")
    return None


def rule_top_level_select_as_struct(node: exp.Expression) -> exp.Expression | None:
    """A statement's own ``SELECT AS STRUCT`` returns the struct's fields as columns in BigQuery."""
    if not isinstance(node, exp.Select) or str(node.args.get("kind") or "").upper() != "STRUCT":
        return None
    parent = node.parent
    while isinstance(parent, exp.SetOperation):
        parent = parent.parent
    if parent is not None:
        return None
    node.set("kind", None)
    return None


def rule_limit_null(node: exp.Expression) -> exp.Expression | None:
    """LIMIT NULL / OFFSET NULL raise in BigQuery; DuckDB treats them as no limit / no offset."""
    if isinstance(node, (exp.Limit, exp.Offset)) and is_null_constant(node.expression):
        raise fail(node, f"{node.key.upper()} NULL", "BigQuery requires a non-NULL count")
    return None


_NUMERIC = "DECIMAL(38, 9)"


def _float_literal_cast(node: exp.Expression) -> exp.Cast | None:
    """The DOUBLE cast rules.rule_float_literal put around a float literal (also under a minus)."""
    inner = node.this if isinstance(node, exp.Neg) else node
    if isinstance(inner, exp.Cast) and inner.to.is_type("double") and isinstance(inner.this, exp.Literal):
        return inner
    return None


def _is_numeric(node: exp.Expression) -> bool:
    inner = node.this if isinstance(node, exp.Alias) else node
    return isinstance(inner, exp.Cast) and inner.to.this == exp.DataType.Type.DECIMAL


def _coerce_literals(items: list[exp.Expression]) -> None:
    """BigQuery coerces float literals to NUMERIC next to a NUMERIC value; DOUBLE would win on DuckDB."""
    if not any(_is_numeric(item) for item in items):
        return
    for item in items:
        cast = _float_literal_cast(item.this if isinstance(item, exp.Alias) else item)
        if cast is not None:
            cast.set("to", exp.DataType.build(_NUMERIC))


def _union_branches(node: exp.Expression) -> list[exp.Select] | None:
    if isinstance(node, exp.Union):
        left, right = _union_branches(node.this), _union_branches(node.expression)
        return None if left is None or right is None else left + right
    if isinstance(node, exp.Subquery):
        return _union_branches(node.this)
    return [node] if isinstance(node, exp.Select) else None


def rule_numeric_literal_coercion(node: exp.Expression) -> exp.Expression | None:
    """Float literals in a UNION column or an array literal that also holds a NUMERIC become NUMERIC."""
    if isinstance(node, exp.Array):
        _coerce_literals(list(node.expressions))
        return None
    if not isinstance(node, exp.Union) or isinstance(node.parent, exp.Union):
        return None
    branches = _union_branches(node)
    if not branches or len({len(b.expressions) for b in branches}) != 1:
        return None
    for position in range(len(branches[0].expressions)):
        _coerce_literals([b.expressions[position] for b in branches])
    return None
