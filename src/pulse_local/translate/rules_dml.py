"""DML rules: statements DuckDB runs where BigQuery raises.

`UPDATE target SET ... FROM source WHERE cond`: BigQuery raises when a row of the target
matches more than one joined row ("UPDATE with join requires that each row of the table
being updated correspond with at most one joined row"); DuckDB updates it with one of them,
silently. The WHERE clause gets a check that counts the matching joined rows of each
updated row (the same FROM and condition, correlated to the target row).
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.rules import Rule, fill

UPDATE_JOIN_ERROR = (
    "UPDATE with join: a row of the table being updated matches more than one joined row "
    "(BigQuery raises this error)"
)


def rule_update_join_cardinality(node: exp.Expression) -> exp.Expression | None:
    """UPDATE ... FROM ... WHERE: raise when a target row matches several joined rows."""
    if not isinstance(node, exp.Update) or node.meta.get("pulse_update_checked"):
        return None
    source, where = node.args.get("from_"), node.args.get("where")
    if not isinstance(source, exp.From) or not isinstance(where, exp.Where):
        return None
    node.meta["pulse_update_checked"] = True
    matches = exp.select(exp.Count(this=exp.Star())).from_(source.this.copy())
    matches.set("where", exp.Where(this=where.this.copy()))
    check = fill(f"CASE WHEN (__m) > 1 THEN ERROR('{UPDATE_JOIN_ERROR}') ELSE TRUE END",
                 m=exp.Subquery(this=matches))
    where.set("this", exp.and_(exp.Paren(this=where.this.copy()), check))
    return None


RULES: dict[type, tuple[Rule, ...]] = {
    exp.Update: (rule_update_join_cardinality,),
}
