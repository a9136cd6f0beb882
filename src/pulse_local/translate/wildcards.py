"""BigQuery wildcard tables (`dataset.prefix*`, `_TABLE_SUFFIX`) read from the DuckDB catalogue.

BigQuery reads every table of the dataset whose name starts with the prefix; the pseudo
column `_TABLE_SUFFIX` holds the rest of each name and is not part of `SELECT *`. DuckDB has
no wildcard tables, so the matching tables are looked up when a statement is translated (the
dbt plugin asks the warehouse through dbt's connection, just before the node runs) and the
wildcard becomes

    (SELECT c1, c2, ..., 'suffix1' AS _TABLE_SUFFIX FROM dataset.prefix_suffix1
     UNION ALL SELECT c1, c2, ..., 'suffix2' AS _TABLE_SUFFIX FROM dataset.prefix_suffix2 ...)

while every `*` that reads it gets `EXCEPT (_TABLE_SUFFIX)`.

What is refused, with a named error:

* no matching table: `WildcardTableNotFound` (BigQuery: "Not found: Table ... was not found");
* a matching view (BigQuery refuses views in wildcard tables);
* matching tables whose columns differ: BigQuery then uses the schema of the most recently
  *created* table, and DuckDB keeps no creation time, so the answer cannot be reproduced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from pulse_local.translate.errors import UntranslatableSQL
from pulse_local.translate.rules import fail

SUFFIX_COLUMN = "_TABLE_SUFFIX"


class WildcardTableNotFound(UntranslatableSQL):
    """No table matches a wildcard table (BigQuery: "Not found: Table <name> was not found")."""


@dataclass(frozen=True)
class Shard:
    """One table a wildcard matches: its name, kind and columns (name, DuckDB type) in order."""

    name: str
    kind: str  # "BASE TABLE" or "VIEW"
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Wildcard:
    """A wildcard table as written: catalog (project/database), schema (dataset), prefix."""

    catalog: str | None
    schema: str | None
    prefix: str

    def __str__(self) -> str:
        return ".".join(p for p in (self.catalog, self.schema, self.prefix + "*") if p)


#: Looks a wildcard up in the warehouse: every table or view whose name starts with the prefix.
Catalog = Callable[[Wildcard], Sequence[Shard]]

#: A wildcard and the tables it matched (hashable: part of the translation cache key).
Expansion = tuple[Wildcard, tuple[Shard, ...]]


def wildcard_of(table: exp.Table) -> Wildcard | None:
    """The wildcard a table reference names, or None for an ordinary table."""
    if not table.name.endswith("*") or not isinstance(table.this, exp.Identifier):
        return None
    catalog = table.args.get("catalog")
    schema = table.args.get("db")
    return Wildcard(catalog.name if catalog is not None else None,
                    schema.name if schema is not None else None, table.name[:-1])


def find_wildcards(trees: Sequence[exp.Expression]) -> list[tuple[Wildcard, exp.Table]]:
    """Every wildcard table referenced in `trees`, with its node (for error positions)."""
    found: list[tuple[Wildcard, exp.Table]] = []
    for tree in trees:
        for table in tree.find_all(exp.Table):
            wildcard = wildcard_of(table)
            if wildcard is not None:
                found.append((wildcard, table))
    return found


def _check_shards(wildcard: Wildcard, table: exp.Table, shards: Sequence[Shard]) -> None:
    if not shards:
        line, col = _position(table)
        raise WildcardTableNotFound(
            f"wildcard table {wildcard}", f"Not found: Table {wildcard} was not found "
            "(no table in that dataset starts with the prefix)", line=line, col=col,
            hint="Create or load at least one matching table (e.g. a daily shard) before "
                 "running the query, or fix the dataset/prefix.")
    views = [s.name for s in shards if s.kind.upper() == "VIEW"]
    if views:
        raise fail(table, f"wildcard table {wildcard}",
                   f"it matches the view(s) {', '.join(sorted(views))}; BigQuery wildcard tables "
                   "do not read views", "Rename the view(s) so the prefix no longer matches them.")
    first = shards[0]
    for shard in shards[1:]:
        if shard.columns != first.columns:
            raise fail(
                table, f"wildcard table {wildcard}",
                f"the matching tables have different columns ({_difference(first, shard)}); "
                "BigQuery then uses the schema of the most recently created table, which DuckDB "
                "does not record",
                "Give every matching table the same columns (ALTER TABLE ... ADD COLUMN on the "
                "older shards), as BigQuery would read them, or select the shards explicitly.")


def _difference(a: Shard, b: Shard) -> str:
    cols_a, cols_b = dict(a.columns), dict(b.columns)
    for name in sorted(set(cols_a) | set(cols_b)):
        if name not in cols_b:
            return f"{name} is in {a.name}, not in {b.name}"
        if name not in cols_a:
            return f"{name} is in {b.name}, not in {a.name}"
        if cols_a[name] != cols_b[name]:
            return f"{name} is {cols_a[name]} in {a.name}, {cols_b[name]} in {b.name}"
    return f"the columns are in another order in {a.name} and {b.name}"


def _position(node: exp.Expression) -> tuple[int | None, int | None]:
    ident = node.this if isinstance(node, exp.Table) else node
    meta = getattr(ident, "meta", None) or {}
    return meta.get("line"), meta.get("col")


def resolve(trees: Sequence[exp.Expression], catalog: Catalog) -> tuple[Expansion, ...]:
    """Look up every wildcard of `trees` in `catalog`; raise when BigQuery's answer is out of reach."""
    expansions: dict[Wildcard, tuple[Shard, ...]] = {}
    for wildcard, table in find_wildcards(trees):
        if wildcard in expansions:
            continue
        shards = tuple(sorted(catalog(wildcard), key=lambda s: s.name))
        _check_shards(wildcard, table, shards)
        expansions[wildcard] = shards
    return tuple(expansions.items())


def _union(wildcard: Wildcard, shards: Sequence[Shard]) -> exp.Expression:
    """SELECT the columns of the first shard plus _TABLE_SUFFIX from every shard, UNION ALL."""
    names = [name for name, _ in shards[0].columns]
    selects: list[exp.Select] = []
    for shard in shards:
        suffix = exp.alias_(exp.Literal.string(shard.name[len(wildcard.prefix):]), SUFFIX_COLUMN)
        projections = [*(exp.column(n, quoted=True) for n in names), suffix]
        source = exp.Table(
            this=exp.to_identifier(shard.name, quoted=True),
            db=exp.to_identifier(wildcard.schema, quoted=True) if wildcard.schema else None,
            catalog=exp.to_identifier(wildcard.catalog, quoted=True) if wildcard.catalog else None,
        )
        selects.append(exp.select(*projections).from_(source))
    union: exp.Expression = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    return union


def _exclude_suffix(select: exp.Select, aliases: list[str | None]) -> None:
    """Add EXCEPT (_TABLE_SUFFIX) to every `*` / `alias.*` of `select` that reads a wildcard.

    `aliases` are the aliases of the wildcards `select` reads (None: no alias)."""
    for projection in select.expressions:
        if isinstance(projection, exp.Star):
            star, targets = projection, aliases
        elif (isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
              and projection.table in aliases):
            star, targets = projection.this, [projection.table]
        else:
            continue
        if len(targets) > 1 and None in targets:
            raise fail(select, f"SELECT * over {len(targets)} wildcard tables",
                       "_TABLE_SUFFIX would be ambiguous", "Give each wildcard table an alias.")
        excluded = list(star.args.get("except_") or [])
        excluded += [exp.column(SUFFIX_COLUMN, table=a) if a else exp.column(SUFFIX_COLUMN)
                     for a in targets]
        star.set("except_", excluded)


def expand(tree: exp.Expression, expansions: Sequence[Expansion]) -> exp.Expression:
    """Replace every wildcard table of `tree` by the union of its shards (BigQuery AST)."""
    by_wildcard = dict(expansions)
    readers: dict[int, tuple[exp.Select, list[str | None]]] = {}
    for table in list(tree.find_all(exp.Table)):
        wildcard = wildcard_of(table)
        if wildcard is None or wildcard not in by_wildcard:
            continue
        alias = table.alias
        subquery = exp.Subquery(this=_union(wildcard, by_wildcard[wildcard]))
        if alias:
            subquery.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        select = table.parent_select
        table.replace(subquery)
        if isinstance(select, exp.Select):
            readers.setdefault(id(select), (select, []))[1].append(alias or None)
    for select, aliases in readers.values():
        _exclude_suffix(select, aliases)
    return tree


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def catalog_sql(wildcard: Wildcard, default_catalog: str | None = None) -> str:
    """DuckDB query listing the tables a wildcard matches: one row per column
    (table_name, table_type, column_name, data_type), in table then column order.

    A missing schema means DuckDB's current schema; a missing catalog `default_catalog`
    (else the current database). The prefix matches case-sensitively, as in BigQuery."""
    catalog = wildcard.catalog or default_catalog
    where = [f"starts_with(t.table_name, {_literal(wildcard.prefix)})",
             "t.table_schema = " + (_literal(wildcard.schema) if wildcard.schema else "current_schema()"),
             "t.table_catalog = " + (_literal(catalog) if catalog else "current_database()")]
    return (
        "SELECT t.table_name, t.table_type, c.column_name, c.data_type "
        "FROM information_schema.tables AS t JOIN information_schema.columns AS c "
        "ON c.table_catalog = t.table_catalog AND c.table_schema = t.table_schema "
        "AND c.table_name = t.table_name WHERE " + " AND ".join(where)
        + " ORDER BY t.table_name, c.ordinal_position"
    )


def shards_from_rows(rows: Sequence[Sequence[object]]) -> list[Shard]:
    """`Shard`s from the rows of `catalog_sql`."""
    tables: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for name, kind, column, data_type in rows:
        entry = tables.setdefault(str(name), (str(kind), []))
        entry[1].append((str(column), str(data_type)))
    return [Shard(name, kind, tuple(cols)) for name, (kind, cols) in tables.items()]


def duckdb_catalog(connection: object, default_catalog: str | None = None) -> Catalog:
    """A `Catalog` over a DuckDB connection (anything with ``execute(sql).fetchall()``)."""

    def look_up(wildcard: Wildcard) -> list[Shard]:
        rows = connection.execute(catalog_sql(wildcard, default_catalog)).fetchall()  # type: ignore[attr-defined]
        return shards_from_rows(rows)

    return look_up
