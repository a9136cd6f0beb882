"""Wildcard tables (`dataset.prefix*`, `_TABLE_SUFFIX`) against a real in-memory DuckDB catalogue.

BigQuery's documented behaviour: a wildcard reads every table of the dataset whose name starts
with the prefix, `_TABLE_SUFFIX` is the rest of the name and is not part of `SELECT *`; no
matching table is "Not found"; views are not read.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from pulse_local.translate import session
from pulse_local.translate.core import translate
from pulse_local.translate.errors import UntranslatableSQL
from pulse_local.translate.wildcards import WildcardTableNotFound, duckdb_catalog


@pytest.fixture()
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    session.configure(con)
    con.execute("CREATE SCHEMA ds")
    con.execute("CREATE SCHEMA other")
    for suffix, n in (("20240101", 1), ("20240102", 2), ("intraday_20240103", 3)):
        con.execute(f"CREATE TABLE ds.events_{suffix} AS SELECT {n} AS n, struct_pack(k := 'x{n}') AS s")
    con.execute("CREATE TABLE ds.eventsx AS SELECT 9 AS n, struct_pack(k := 'no') AS s")
    con.execute("CREATE TABLE other.events_20240101 AS SELECT 8 AS n, struct_pack(k := 'no') AS s")
    yield con
    con.close()


def run(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[tuple], list[str]]:
    cur = con.execute(translate(sql, catalog=duckdb_catalog(con)))
    return cur.fetchall(), [d[0] for d in cur.description]


def test_reads_every_matching_table_with_its_suffix(con: duckdb.DuckDBPyConnection) -> None:
    rows, _ = run(con, "SELECT n, _TABLE_SUFFIX AS suffix FROM `ds.events_*` ORDER BY n")
    assert rows == [(1, "20240101"), (2, "20240102"), (3, "intraday_20240103")]


def test_table_suffix_filters_and_star_leaves_it_out(con: duckdb.DuckDBPyConnection) -> None:
    rows, names = run(con, "SELECT * FROM ds.events_* WHERE _table_suffix NOT LIKE '%intraday%' "
                           "AND _TABLE_SUFFIX >= '20240102'")
    assert names == ["n", "s"] and rows == [(2, {"k": "x2"})]
    rows, names = run(con, "SELECT e.*, e.s.k FROM ds.events_* AS e WHERE e._TABLE_SUFFIX = '20240101'")
    assert names == ["n", "s", "k"] and rows == [(1, {"k": "x1"}, "x1")]


def test_new_shard_is_read_by_the_next_translation(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT count(*) FROM ds.events_*"
    assert run(con, sql)[0] == [(3,)]
    con.execute("CREATE TABLE ds.events_20240104 AS SELECT 4 AS n, struct_pack(k := 'x4') AS s")
    assert run(con, sql)[0] == [(4,)]


def test_no_matching_table_is_not_found(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(WildcardTableNotFound, match=r"Not found: Table ds\.sessions_\* was not found"):
        translate("SELECT * FROM ds.sessions_*", catalog=duckdb_catalog(con))


def test_differing_schemas_are_refused_naming_the_column(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE ds.events_20240105 AS SELECT 5 AS n, struct_pack(k := 'x5') AS s, 1 AS extra")
    with pytest.raises(UntranslatableSQL, match="extra is in events_20240105") as err:
        translate("SELECT n FROM ds.events_*", catalog=duckdb_catalog(con))
    assert "most recently created" in str(err.value)


def test_matching_view_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE VIEW ds.events_view AS SELECT * FROM ds.events_20240101")
    with pytest.raises(UntranslatableSQL, match="view"):
        translate("SELECT n FROM ds.events_*", catalog=duckdb_catalog(con))


def test_without_a_catalogue_wildcards_are_refused() -> None:
    with pytest.raises(UntranslatableSQL, match="wildcard table"):
        translate("SELECT * FROM ds.events_*")
