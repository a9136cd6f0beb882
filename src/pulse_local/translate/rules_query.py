"""Query-shape and operator rules: COUNTIF, datetime subtraction, column order of `*`.

These fix translations that run on DuckDB but answer differently from BigQuery:
COUNTIF over no TRUE input (BigQuery 0, DuckDB NULL), `DATE - DATE` (BigQuery INTERVAL,
DuckDB BIGINT), and the column order of `SELECT *` after `JOIN ... USING` (BigQuery puts
the USING columns first, once) and after `UNPIVOT` (BigQuery puts the value columns
before the name column).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from pulse_local.translate.rules import (
    Rule,
    fail,
    fill,
    known_type,
)
from pulse_local.translate.rules_numbers import IS_NAN


def rule_countif(node: exp.Expression) -> exp.Expression | None:
    """COUNTIF(x) is 0 (INT64) when no row is TRUE, also as a window function."""
    if not isinstance(node, exp.CountIf):
        return None
    condition = node.this
    if isinstance(condition, exp.Distinct) and len(condition.expressions) == 1:
        # COUNTIF(DISTINCT c) counts the distinct TRUE values: 1 or 0 (DuckDB: NULL when none)
        return fill("COUNT(DISTINCT CASE WHEN __c THEN TRUE END)", c=condition.expressions[0])
    if isinstance(condition, exp.Distinct):
        return None
    return fill("COUNT(CASE WHEN __c THEN 1 END)", c=condition)


_DATE_TYPES = {"DATE"}
_INSTANT_TYPES = {"TIMESTAMPTZ", "TIMESTAMP", "DATETIME", "TIMESTAMPLTZ"}

#: Functions whose BigQuery result type is evident, beyond `rules.known_type`.
_RESULT_TYPES: dict[type, str] = {
    exp.LastDay: "DATE", exp.StrToDate: "DATE", exp.DateFromParts: "DATE",
    exp.Timestamp: "TIMESTAMPTZ", exp.TimestampAdd: "TIMESTAMPTZ", exp.TimestampSub: "TIMESTAMPTZ",
    exp.TimestampFromParts: "TIMESTAMP", exp.DatetimeAdd: "TIMESTAMP", exp.DatetimeSub: "TIMESTAMP",
}


def _evident_type(node: exp.Expression) -> str | None:
    """The BigQuery type of `node` when the SQL shows it (casts, literals, date functions)."""
    return known_type(node) or _RESULT_TYPES.get(type(node))


def rule_datetime_subtraction(node: exp.Expression) -> exp.Expression | None:
    """DATE - DATE and TIMESTAMP - TIMESTAMP give an INTERVAL in BigQuery.

    DATE - DATE becomes a whole-day interval; instant differences become an interval
    of microseconds only (BigQuery shows 36 hours as `0-0 0 36:0:0`, not 1 day 12 h).
    Only applied when both operand types are evident from the SQL (literals, casts,
    date functions); a bare column keeps DuckDB's arithmetic.
    """
    if not isinstance(node, exp.Sub):
        return None
    left, right = _evident_type(node.this), _evident_type(node.expression)
    if left in _DATE_TYPES and right in _DATE_TYPES:
        return fill("TO_DAYS(CAST(__a - __b AS INTEGER))", a=node.this, b=node.expression)
    if left in _INSTANT_TYPES and right in _INSTANT_TYPES:
        return fill("TO_MICROSECONDS(EPOCH_US(__a) - EPOCH_US(__b))", a=node.this, b=node.expression)
    return None


def _plain_star(select: exp.Select) -> exp.Star | None:
    """The unqualified `*` (optionally with EXCEPT) of `select`, if any."""
    for item in select.expressions:
        if isinstance(item, exp.Star) and not any(item.args.get(k) for k in ("replace", "rename", "ilike")):
            return item
    return None


def rule_star_after_using(node: exp.Expression) -> exp.Expression | None:
    """SELECT * over JOIN ... USING lists the USING columns first, once (BigQuery order).

    DuckDB keeps each USING column where the left input had it. When every join of
    the FROM clause has USING, `*` becomes `k1, k2, * EXCLUDE (k1, k2)` with the keys
    of the last join first, as BigQuery nests them. When only the first join has USING
    (then ON or cross joins), `k, * EXCLUDE (a.k, b.k)`. Other mixes keep DuckDB's order.
    """
    if not isinstance(node, exp.Select) or node.meta.get("pulse_star_using"):
        return None
    joins = node.args.get("joins") or []
    star = _plain_star(node)
    if not joins or star is None:
        return None
    excepted = [c.name for c in star.args.get("except_") or []]
    if all(j.args.get("using") for j in joins):
        order: list[str] = []
        for join in joins:
            keys = [ident.name for ident in join.args["using"]]
            order = keys + [k for k in order if k not in keys]
        dropped = [exp.column(name, quoted=True) for name in dict.fromkeys(order + excepted)]
    else:
        # FROM a JOIN b USING (k) followed by ON/cross joins: drop a.k and b.k only, so
        # a later table's own column k stays (BigQuery lists it too).
        first = joins[0]
        source = node.args.get("from_")
        left = source.this.alias_or_name if source is not None else ""
        right = first.this.alias_or_name
        if not first.args.get("using") or any(j.args.get("using") for j in joins[1:]) or not (left and right):
            return None
        order = [ident.name for ident in first.args["using"]]
        dropped = [exp.column(k, table=t, quoted=True) for k in order for t in (left, right)]
        dropped += [exp.column(name, quoted=True) for name in excepted if name not in order]
    columns: list[exp.Expression] = [exp.column(name, quoted=True) for name in order if name not in excepted]
    rest = exp.Star(except_=dropped)
    new_items: list[exp.Expression] = []
    for item in node.expressions:
        if item is star:
            new_items.extend(columns)
            new_items.append(rest)
        else:
            new_items.append(item)
    node.set("expressions", new_items)
    node.meta["pulse_star_using"] = True
    return node


def rule_unpivot_columns(node: exp.Expression) -> exp.Expression | None:
    """UNPIVOT's output lists the value columns before the name column (BigQuery).

    DuckDB puts the name column first; the unpivoted source becomes a subquery that
    moves the name column(s) to the end, keeping the source's alias.
    """
    if not isinstance(node, (exp.Table, exp.Subquery)):
        return None
    pivots = node.args.get("pivots") or []
    unpivots = [p for p in pivots if p.args.get("unpivot")]
    if not unpivots or len(pivots) != 1:
        return None
    pivot = unpivots[0]
    names = [f.this.name for f in pivot.args.get("fields") or [] if isinstance(f, exp.In)]
    if not names:
        return None
    alias = pivot.args.get("alias")
    alias_name = alias.name if alias is not None and alias.name else node.alias_or_name
    source = node.copy()
    pivot_copy = source.args["pivots"][0]
    pivot_copy.set("alias", None)
    inner = exp.select(
        exp.Star(except_=[exp.column(n, quoted=True) for n in names]),
        *[exp.column(n, quoted=True) for n in names],
    ).from_(source)
    return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias_name)))


def _groups_by_column(item: exp.Expression) -> bool:
    """True when the select item references a column outside aggregates and window functions."""
    if isinstance(item, exp.Star) or isinstance(item.unalias(), exp.Star):
        return True
    for column in item.find_all(exp.Column):
        if not column.find_ancestor(exp.AggFunc, exp.Window, exp.Subquery):
            return True
    return False


def rule_group_by_all_without_keys(node: exp.Expression) -> exp.Expression | None:
    """GROUP BY ALL with no select item that references a column groups every row into one
    group in BigQuery (an empty grouping set); DuckDB then does not group at all."""
    if not isinstance(node, exp.Group) or not node.args.get("all") or node.expressions:
        return None
    select = node.parent
    if not isinstance(select, exp.Select) or any(_groups_by_column(i) for i in select.expressions):
        return None
    return exp.Group(expressions=[exp.Tuple()])


def rule_using_join_nan(node: exp.Expression) -> exp.Expression | None:
    """JOIN ... USING (k) on a FLOAT64 key: NaN matches nothing in BigQuery, DuckDB's join
    matches NaN with NaN. For INNER and LEFT joins the right input's NaN keys become NULL
    (such rows can never match, so nothing visible changes); a TYPEOF branch DuckDB folds
    away for other key types. RIGHT and FULL joins keep DuckDB's behaviour."""
    if not isinstance(node, exp.Join) or not node.args.get("using") or node.meta.get("pulse_nan_using"):
        return None
    side = str(node.args.get("side") or "").upper()
    kind = str(node.args.get("kind") or "").upper()
    if side not in ("", "LEFT") or kind not in ("", "INNER", "OUTER"):
        return None
    right = node.this
    if not isinstance(right, (exp.Table, exp.Subquery)) or right.args.get("pivots"):
        return None
    alias = right.alias_or_name
    if not alias:
        return None
    node.meta["pulse_nan_using"] = True
    replaced = [
        exp.alias_(fill(f"CASE WHEN {IS_NAN} THEN NULL ELSE __v END", v=exp.column(key.name, quoted=True)),
                   key.name, quoted=True)
        for key in node.args["using"]
    ]
    source = right.copy()
    if isinstance(source, exp.Table):
        source.set("alias", None)
    else:
        source.set("alias", None)
    inner = exp.select(exp.Star(replace=replaced)).from_(source)
    node.set("this", exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return None


def _pivot_value_name(value: exp.Expression) -> str | None:
    """The column-name part both BigQuery and DuckDB derive from a PIVOT value, if they agree."""
    if isinstance(value, exp.PivotAlias):
        return value.alias
    if isinstance(value, exp.Literal) and (value.is_string or value.is_int):
        return value.name
    if isinstance(value, exp.Null):
        return "NULL"
    if isinstance(value, exp.Boolean):
        return "true" if value.this else "false"
    return None


def _check_pivot_values(node: exp.Expression, pivot: exp.Expression) -> None:
    """A NULL pivot value matches no row in BigQuery (`y = NULL`) but the NULL rows in
    DuckDB; a value given twice makes two equal columns in BigQuery and a binder error in
    DuckDB. Both are refused."""
    seen: set[str] = set()
    for field in pivot.args.get("fields") or []:
        for value in field.expressions if isinstance(field, exp.In) else []:
            bare = value.this if isinstance(value, exp.PivotAlias) else value
            if isinstance(bare, exp.Null):
                raise fail(node, "PIVOT value NULL", "BigQuery matches no row with it (its columns aggregate no rows), "
                           "DuckDB matches the rows whose pivot column is NULL",
                           "Drop the NULL value from IN (...).")
            text = bare.sql(dialect="bigquery")
            if text in seen:
                raise fail(node, f"PIVOT value {text} given twice", "DuckDB refuses a repeated pivot value",
                           "Give each value once and copy the column in the SELECT list.")
            seen.add(text)


def rule_pivot_column_names(node: exp.Expression) -> exp.Expression | None:
    """PIVOT(SUM(x) AS s FOR y IN ('a', 'b')) names its columns `s_a`, `s_b` in BigQuery and
    `a_s`, `b_s` in DuckDB. The pivoted source becomes a subquery renaming the columns
    (`SELECT * RENAME (...)`), keeping the alias; values whose column name could differ
    (no alias, not a string, whole-number or boolean literal) are refused."""
    if not isinstance(node, (exp.Table, exp.Subquery)) or node.meta.get("pulse_pivot_names"):
        return None
    pivots = node.args.get("pivots") or []
    if len(pivots) != 1 or pivots[0].args.get("unpivot"):
        return None
    pivot = pivots[0]
    _check_pivot_values(node, pivot)
    aggregates = list(pivot.expressions)
    aliases = [a.alias for a in aggregates if isinstance(a, exp.Alias) and a.alias]
    if not aliases:
        return None  # DuckDB and BigQuery both name the columns after the values
    fields = [f for f in pivot.args.get("fields") or [] if isinstance(f, exp.In)]
    if len(aliases) != len(aggregates) or len(fields) != 1:
        raise fail(node, "PIVOT with aggregates without an alias", "BigQuery and DuckDB name such columns differently",
                   "Give every aggregate of the PIVOT an alias.")
    renames: list[str] = []
    for value in fields[0].expressions:
        name = _pivot_value_name(value)
        if name is None:
            raise fail(node, f"PIVOT value {value.sql(dialect='bigquery')}",
                       "BigQuery and DuckDB derive different column names from it",
                       "Give the value an alias: IN (1.5 AS v1_5).")
        renames += [f'"{name}_{a}" AS "{a}_{name}"'.replace("'", "''") for a in aliases]
    alias = pivot.args.get("alias")
    alias_name = alias.name if alias is not None and alias.name else node.alias_or_name
    source = node.copy()
    source.args["pivots"][0].set("alias", None)
    source.meta["pulse_pivot_names"] = True
    inner = sqlglot.parse_one(f"SELECT * RENAME ({', '.join(renames)}) FROM __pulse_pivot", read="duckdb")
    inner.set("from_", exp.From(this=source))
    if not alias_name:
        return exp.Subquery(this=inner)
    return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias_name)))


RULES: dict[type, tuple[Rule, ...]] = {
    exp.Join: (rule_using_join_nan,),
    exp.Group: (rule_group_by_all_without_keys,),
    exp.CountIf: (rule_countif,),
    exp.Sub: (rule_datetime_subtraction,),
    exp.Select: (rule_star_after_using,),
    exp.Table: (rule_unpivot_columns, rule_pivot_column_names),
    exp.Subquery: (rule_unpivot_columns, rule_pivot_column_names),
}
