"""Persistent SQL UDFs and wildcard tables.

`CREATE [TEMP] FUNCTION [project.]dataset.fn(...)` becomes a DuckDB macro in the schema
named like the dataset (a DuckDB catalog is a database file, not a BigQuery project, so
the project part is dropped), and calls `project.dataset.fn(...)`, `dataset.fn(...)` or
`` `project.dataset.fn`(...) `` call that macro. Wildcard tables (`dataset.prefix*` with
`_TABLE_SUFFIX`) need the catalogue (`pulse_local.translate.wildcards`, which expands them
before these rules run): without one they are refused here, saying what to do.
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.rules import Rule, fail


def rule_udf_name(node: exp.Expression) -> exp.Expression | None:
    """CREATE FUNCTION project.dataset.fn: keep dataset.fn (DuckDB schema.macro)."""
    if not isinstance(node, exp.UserDefinedFunction):
        return None
    name = node.this
    if isinstance(name, exp.Table) and name.args.get("catalog") is not None:
        name.set("catalog", None)
    return None


def _routine_call(path: list[exp.Identifier], call: exp.Anonymous) -> exp.Expression:
    """`dataset.fn(args)` from the last two parts of a dotted routine name."""
    function = exp.Anonymous(this=path[-1].copy(), expressions=call.expressions)
    if len(path) == 1:
        return function
    return exp.Dot(this=path[-2].copy(), expression=function)


def rule_routine_call(node: exp.Expression) -> exp.Expression | None:
    """project.dataset.fn(...) and `project.dataset.fn`(...) call the macro dataset.fn."""
    if isinstance(node, exp.Anonymous) and isinstance(node.this, exp.Identifier) and "." in node.this.name:
        parts = node.this.name.split(".")
        if len(parts) > 3 or not all(parts):
            raise fail(node, f"function {node.this.name}", "a routine name has at most project.dataset.name")
        idents = [exp.to_identifier(p, quoted=node.this.quoted) for p in parts]
        return _routine_call(idents, node)
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous) and isinstance(node.this, exp.Dot):
        prefix = node.this
        if isinstance(prefix.this, exp.Identifier) and isinstance(prefix.expression, exp.Identifier):
            call = node.expression
            name = call.this if isinstance(call.this, exp.Identifier) else exp.to_identifier(call.name)
            return _routine_call([prefix.this, prefix.expression, name], call)
    return None


def rule_wildcard_table(node: exp.Expression) -> exp.Expression | None:
    """dataset.prefix* reads every matching table in BigQuery: refused, with the fix."""
    if isinstance(node, exp.Table) and node.name.endswith("*"):
        raise fail(
            node, f"wildcard table {node.name}",
            "DuckDB has no wildcard tables and the matching tables are not known when translating",
            "Run it through the dbt plugin, which reads the matching tables from the warehouse "
            "(or pass catalog= to translate()), or union the tables explicitly "
            "(SELECT *, 'suffix' AS _TABLE_SUFFIX FROM prefix_suffix UNION ALL ...).",
        )
    return None


RULES: dict[type, tuple[Rule, ...]] = {
    exp.UserDefinedFunction: (rule_udf_name,),
    exp.Anonymous: (rule_routine_call,),
    exp.Dot: (rule_routine_call,),
    exp.Table: (rule_wildcard_table,),
}
