"""BigQuery Standard SQL -> DuckDB SQL with BigQuery's semantics (sqlglot + rules)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import cast

import sqlglot
from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ErrorLevel, ParseError, TokenError, UnsupportedError
from sqlglot.tokens import TokenType

from pulse_local.translate.dialect import PulseBigQuery
from pulse_local.translate.errors import UntranslatableSQL
from pulse_local.translate.functions import CALLABLE_NAMES
from pulse_local.translate.int64_literals import mark, widen
from pulse_local.translate.registry import RULES_BY_TYPE
from pulse_local.translate.rules import fail, position
from pulse_local.translate.rules_bytes import bytes_overloads
from pulse_local.translate.wildcards import Catalog, Expansion, expand, resolve

#: Function namespaces of BigQuery that have no DuckDB counterpart at all.
UNSUPPORTED_NAMESPACES = frozenset(
    {"NET", "HLL_COUNT", "KEYS", "AEAD", "DETERMINISTIC_ENCRYPT", "ML", "VECTOR_SEARCH", "OBJ"}
)

#: BigQuery statements that only make sense on BigQuery (scripting, access control).
UNSUPPORTED_STATEMENTS = tuple(
    getattr(exp, name) for name in ("Grant", "Revoke", "Declare", "IfBlock", "WhileBlock")
    if hasattr(exp, name)
)

_BIGQUERY = BigQuery()

#: DuckDB functions that duckdb_functions() does not list (special forms).
_DUCKDB_SPECIAL_FORMS = frozenset({
    "try", "unnest", "generate_subscripts", "columns", "coalesce", "ifnull", "nullif",
    "cast", "try_cast", "extract", "case", "exists", "grouping", "row", "interval",
})
_DUCKDB_GENERATOR_TRANSFORMS = DuckDB.Generator.TRANSFORMS


@lru_cache(maxsize=1)
def duckdb_function_names() -> frozenset[str]:
    """Lower-cased names of every function and macro DuckDB knows (read once)."""
    import duckdb

    con = duckdb.connect()
    try:
        rows = con.execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions()").fetchall()
    finally:
        con.close()
    return frozenset(r[0] for r in rows) | _DUCKDB_SPECIAL_FORMS | CALLABLE_NAMES


def requote_dbt_relations(sql: str) -> str:
    """Turn DuckDB-quoted relation names ("db"."schema"."table") into BigQuery `quoted` ones.

    dbt-duckdb renders ref()/source() with double quotes, which BigQuery reads as string
    literals. Only dotted chains of two or more double-quoted tokens are rewritten, so a
    lone "text" keeps its BigQuery meaning (a string).
    """
    if '"' not in sql:
        return sql
    try:
        tokens = _BIGQUERY.tokenize(sql)
    except TokenError:
        return sql
    spans: list[tuple[int, int]] = []

    def dq(i: int) -> bool:
        tok = tokens[i]
        return tok.token_type == TokenType.STRING and sql[tok.start] == '"'

    i = 0
    while i < len(tokens):
        if dq(i):
            chain = [i]
            j = i
            while j + 2 < len(tokens) and tokens[j + 1].token_type == TokenType.DOT and dq(j + 2):
                j += 2
                chain.append(j)
            if len(chain) >= 2:
                spans.extend((tokens[k].start, tokens[k].end) for k in chain)
            i = j + 1
        else:
            i += 1
    if not spans:
        return sql
    out: list[str] = []
    last = 0
    for start, end in spans:
        body = sql[start + 1 : end].replace('""', '"')
        out.append(sql[last:start])
        out.append("`" + body.replace("`", "\\`") + "`")
        last = end + 1
    out.append(sql[last:])
    return "".join(out)


def _syntax_error(err: Exception) -> UntranslatableSQL:
    """Convert a sqlglot parse/token error into one carrying the BigQuery position."""
    if isinstance(err, ParseError) and err.errors:
        first = err.errors[0]
        desc = str(first.get("description") or "syntax error")
        near = str(first.get("highlight") or "").strip()
        construct = f"'{near}'" if near else "statement"
        return UntranslatableSQL(
            construct, f"BigQuery syntax error ({desc})",
            line=first.get("line"), col=first.get("col"),
            hint="Fix the SQL so that it is valid BigQuery Standard SQL.",
        )
    match = re.search(r"[Ll]ine (\d+), [Cc]ol(?:umn)?:? (\d+)", str(err))
    line, col = (int(match.group(1)), int(match.group(2))) if match else (None, None)
    return UntranslatableSQL(
        "statement", f"BigQuery syntax error ({str(err).splitlines()[0]})", line=line, col=col,
        hint="Fix the SQL so that it is valid BigQuery Standard SQL.",
    )


def _needs_parentheses(new: exp.Expression, parent: exp.Expression | None) -> bool:
    """True when a rule's operator expression replaces an operand of another operator.

    sqlglot prints the tree as it is, so ``8 / IEEE_DIVIDE(4, 2)`` rewritten to a bare
    ``4 / 2`` would read ``8 / 4 / 2``.
    """
    return (
        isinstance(new, exp.Binary) and not isinstance(new, exp.Dot)
        and isinstance(parent, (exp.Binary, exp.Unary)) and not isinstance(parent, exp.Dot)
    )


def _apply_rules(tree: exp.Expression) -> exp.Expression:
    """Apply every rule bottom-up (children are rewritten before their parents).

    A rule sees its node still attached to the tree (so it can look at the parent) and
    may return a new node that wraps it; the new node then takes the old node's slot.
    """
    nodes = [cast(exp.Expression, n) for n in tree.walk(bfs=False)]
    root = tree
    for node in reversed(nodes):
        rules = RULES_BY_TYPE.get(type(node))
        if not rules:
            continue
        for rule in rules:
            parent, arg_key, index = cast("exp.Expression | None", node.parent), cast(str, node.arg_key), node.index
            new = rule(node)
            if new is None or new is node:
                continue
            if _needs_parentheses(new, parent):
                new = exp.Paren(this=new)
            if parent is None:
                root = new
            elif index is None:
                parent.set(arg_key, new)
            else:
                parent.set(arg_key, new, index=index)
            break
    return root


def _range_variables(select: exp.Select, table: exp.Table) -> set[str]:
    """Names of the FROM/JOIN items of `select` other than `table` (lower case)."""
    names: set[str] = set()
    source = select.args.get("from_")
    items = [source.this] if isinstance(source, exp.From) else []
    items += [join.this for join in select.args.get("joins") or []]
    for item in items:
        if item is not table and item.alias_or_name:
            names.add(item.alias_or_name.lower())
    return names


def implicit_unnest(tree: exp.Expression) -> exp.Expression:
    """`FROM t.arr AS v` where `t` is a range variable of an enclosing query: BigQuery reads
    the path as `UNNEST(t.arr) AS v` (a correlated array), not as table `arr` of dataset `t`.
    sqlglot does this for joins (`FROM t, t.arr`), not for a subquery's own FROM."""
    for table in list(tree.find_all(exp.Table)):
        if not table.args.get("db") or table.args.get("catalog") or not isinstance(table.parent, (exp.From, exp.Join)):
            continue
        prefix = table.args["db"].name.lower()
        select = table.parent.parent
        visible: set[str] = set()
        ancestor = select.parent if isinstance(select, exp.Select) else None
        while ancestor is not None:
            if isinstance(ancestor, exp.Select):
                visible |= _range_variables(ancestor, table)
            ancestor = ancestor.parent
        if prefix not in visible:
            continue
        alias = table.alias or table.name
        table.replace(exp.Unnest(
            expressions=[exp.column(table.name, table=table.args["db"].name)],
            alias=exp.TableAlias(columns=[exp.to_identifier(alias)]),
        ))
    return tree


def _user_functions(trees: list[exp.Expression]) -> set[str]:
    names: set[str] = set()
    for tree in trees:
        if isinstance(tree, exp.Create) and tree.kind == "FUNCTION":
            udf = tree.this
            name = udf.this.name if isinstance(udf, exp.UserDefinedFunction) else udf.name
            names.add(name.lower())
    return names


def _generator_knows(node: exp.Func) -> bool:
    """True when sqlglot's DuckDB generator has a specific translation for `node`."""
    if type(node) in _DUCKDB_GENERATOR_TRANSFORMS:
        return True
    return hasattr(DuckDB.Generator, f"{node.key}_sql")


def _check_functions(tree: exp.Expression, user_functions: set[str]) -> None:
    """Reject functions DuckDB does not have, naming the BigQuery function and position."""
    known = duckdb_function_names()
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.Anonymous):
            name = node.name
            parent = node.parent
            if isinstance(parent, exp.Dot):
                namespace = parent.this.name.upper() if parent.this is not None else ""
                if namespace in UNSUPPORTED_NAMESPACES:
                    raise fail(node, f"{namespace}.{name.upper()}()", "this BigQuery function family has no DuckDB equivalent")
                continue  # dataset.udf(...): a persistent UDF the project defines
            if name.lower() in user_functions or name.lower() in known:
                continue
            raise fail(node, f"function {name.upper()}()", "it is not a BigQuery function sqlglot knows and DuckDB has no function of that name",
                       "Check the spelling; if it is a UDF, define it with CREATE TEMP FUNCTION in SQL.")
        elif not _generator_knows(node):
            name = node.sql_name()
            if name.lower() in known or name.lower() in user_functions:
                continue
            bq_name = node.meta.get("bigquery_name", name) if node._meta else name
            raise fail(cast(exp.Expression, node), f"function {bq_name}()", "DuckDB has no equivalent")


def _check_statement(tree: exp.Expression) -> None:
    if isinstance(tree, exp.Command):
        raise fail(tree, f"statement {tree.name.upper()}", "BigQuery scripting/administration statements are not translated",
                   "Keep scripting (DECLARE, SET, IF, LOOP, CALL) out of dbt models.")
    if isinstance(tree, UNSUPPORTED_STATEMENTS):
        raise fail(tree, f"statement {tree.key.upper()}", "BigQuery scripting and access control have no DuckDB equivalent",
                   "Keep scripting (DECLARE, SET, IF, LOOP, CALL) and GRANT/REVOKE out of dbt models.")


def _generate(tree: exp.Expression) -> str:
    try:
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as err:
        line, col = position(tree)
        message = str(err).splitlines()[0]
        raise UntranslatableSQL("construct", message, line=line, col=col) from err


def _parse(sql: str, dbt_relations: bool) -> list[exp.Expression]:
    text = requote_dbt_relations(sql) if dbt_relations else sql
    try:
        return [cast(exp.Expression, t) for t in sqlglot.parse(text, read=PulseBigQuery) if t is not None]
    except (ParseError, TokenError) as err:
        raise _syntax_error(err) from err


@lru_cache(maxsize=4096)
def _translate_cached(sql: str, dbt_relations: bool, wildcards: tuple[Expansion, ...] = ()) -> str:
    trees = _parse(sql, dbt_relations)
    user_functions = _user_functions(trees)
    out: list[str] = []
    for tree in trees:
        _check_statement(tree)
        if wildcards:
            tree = expand(tree, wildcards)
        tree = widen(_apply_rules(bytes_overloads(implicit_unnest(mark(tree)))))
        _check_functions(tree, user_functions)
        out.append(_generate(tree))
    return ";\n".join(out)


#: A word character followed by `*`: the text may name a wildcard table (cheap pre-check).
_MAYBE_WILDCARD = re.compile(r"[A-Za-z0-9_]\*")


def translate(sql: str, *, dbt_relations: bool = False, catalog: Catalog | None = None) -> str:
    """Translate BigQuery SQL to DuckDB SQL; see `bigquery_to_duckdb`.

    `dbt_relations=True` also accepts relation names rendered by dbt-duckdb
    ("db"."schema"."table"), which BigQuery itself would read as strings.
    `catalog` looks wildcard tables (`dataset.prefix*`) up in the warehouse
    (`pulse_local.translate.wildcards`); without it they are refused.
    """
    if catalog is not None and _MAYBE_WILDCARD.search(sql):
        wildcards = resolve(_parse(sql, dbt_relations), catalog)
        return _translate_cached(sql, dbt_relations, wildcards)
    return _translate_cached(sql, dbt_relations)
