"""`pulse-local dbt check` on projects with wildcard sources (GA4's ``events_*``), without dbt:
source shapes read from a real DuckDB warehouse file, the scratch tables made from them, the
check's wildcard catalog, the ``--empty`` unwrapping the scratch build uses, and the macro
guard over manifest.json. The manifests are hand-written dicts (a fake of dbt's)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from pulse_local.translate.core import translate
from pulse_local.translate.dbt_plugin import (
    EMPTY_BUILD_OPTION,
    _duckdb_flavoured_macros,
    _plugin_option,
    unwrap_empty_wildcards,
)
from pulse_local.translate.wildcards import Wildcard, WildcardTableNotFound
from pulse_local.warehouse.bind import SourceShape, create_sources, scratch_output, source_shapes
from pulse_local.warehouse.check import shapes_catalog

SHARD = "create table analytics.{} (event_date varchar, geo struct(country varchar))"


def _manifest(identifier: str) -> dict[str, Any]:
    return {"sources": {"source.p.ga4.events": {
        "source_name": "ga4", "name": "events", "original_file_path": "models/sources.yml",
        "schema": "analytics", "identifier": identifier, "database": "wh", "columns": {}}}}


@pytest.fixture()
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema analytics")
        for name in ("events_20240101", "events_20240102", "events_intraday_20240103"):
            con.execute(SHARD.format(name))
        con.execute("create table analytics.sessions (id bigint)")
    return path


def test_a_wildcard_source_is_shaped_by_every_matching_shard(warehouse: Path) -> None:
    shapes, unknown, notes = source_shapes(_manifest("events_*"), warehouse)
    assert [s.identifier for s in shapes] == ["events_20240101", "events_20240102",
                                              "events_intraday_20240103"]
    assert {s.columns for s in shapes} == {(("event_date", "VARCHAR"),
                                            ("geo", "STRUCT(country VARCHAR)"))}
    assert {(s.unique_id, s.origin, s.database, s.kind) for s in shapes} == {
        ("source.p.ga4.events", "warehouse", "wh", "BASE TABLE")}
    assert unknown == {} and notes == []


def test_a_wildcard_with_no_shard_is_not_shaped_and_translation_says_not_found(warehouse: Path) -> None:
    shapes, unknown, _ = source_shapes(_manifest("pageviews_*"), warehouse)
    assert shapes == [] and unknown == {}  # not "no known columns": the wildcard error says it
    with pytest.raises(WildcardTableNotFound, match="Not found: Table wh.analytics.pageviews_"):
        translate('select * from "wh"."analytics"."pageviews_*"', dbt_relations=True,
                  catalog=shapes_catalog(shapes))
    assert source_shapes(_manifest("events_*"), warehouse.parent / "missing.duckdb")[0] == []


def test_the_scratch_database_holds_the_shards_and_the_wildcard_reads_them(
        warehouse: Path, tmp_path: Path) -> None:
    shapes, _, _ = source_shapes(_manifest("events_*"), warehouse)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    create_sources(scratch, [*shapes, shapes[0]])  # a shard named twice is made once
    sql = translate('select event_date, _table_suffix from "wh"."analytics"."events_*"',
                    dbt_relations=True, catalog=shapes_catalog(shapes))
    with duckdb.connect(str(scratch / "pulse_check.duckdb")) as con:
        assert con.execute(sql.replace('"wh".', "")).fetchall() == []
        assert len(con.execute("select * from information_schema.tables "
                               "where table_name like 'events_%'").fetchall()) == 3


def test_a_view_stays_a_view_so_the_wildcard_refuses_it_as_in_the_build(tmp_path: Path) -> None:
    view = SourceShape("source.p.ga4.events", "events", "analytics", "events_v",
                       (("a", "BIGINT"),), "warehouse", "wh", "VIEW")
    create_sources(tmp_path, [view])
    with duckdb.connect(str(tmp_path / "pulse_check.duckdb")) as con:
        assert con.execute("select table_type from information_schema.tables "
                           "where table_name = 'events_v'").fetchall() == [("VIEW",)]
    with pytest.raises(Exception, match="BigQuery wildcard tables do not read views"):
        translate('select a from "wh"."analytics"."events_*"', dbt_relations=True,
                  catalog=shapes_catalog([view]))


def test_the_check_catalog_matches_schema_prefix_and_database() -> None:
    shapes = [SourceShape("s", "s", "analytics", name, (("a", "BIGINT"),), "yml", db)
              for name, db in (("events_1", "wh"), ("events_2", ""), ("other_1", "wh"))]
    look_up = shapes_catalog(shapes)
    assert [s.name for s in look_up(Wildcard("wh", "analytics", "events_"))] == ["events_1", "events_2"]
    assert [s.name for s in look_up(Wildcard(None, "analytics", "events_"))] == ["events_1", "events_2"]
    assert look_up(Wildcard("elsewhere", "analytics", "events_")) == [look_up(Wildcard(None, "analytics", "events_"))[1]]
    assert look_up(Wildcard("wh", "staging", "events_")) == []


def test_empty_builds_read_wildcards_without_the_wrapper_and_only_wildcards() -> None:
    code = ('select _table_suffix from (select * from "wh"."analytics"."events_*" where false limit 0)\n'
            'join (select * from "wh"."analytics"."users" where false limit 0) using (id)')
    assert unwrap_empty_wildcards(code) == (
        'select _table_suffix from "wh"."analytics"."events_*"\n'
        'join (select * from "wh"."analytics"."users" where false limit 0) using (id)')


def test_the_scratch_profile_turns_the_option_on_and_the_plugin_reads_it(tmp_path: Path) -> None:
    out = scratch_output({"type": "duckdb", "path": "x.duckdb",
                          "plugins": [{"module": "pulse_local.translate.dbt_plugin"}]}, tmp_path)
    assert out["plugins"] == [{"module": "pulse_local.translate.dbt_plugin",
                               "config": {EMPTY_BUILD_OPTION: True}}]
    credentials = SimpleNamespace(type="duckdb", plugins=[
        SimpleNamespace(module="pulse_local.translate.dbt_plugin", config={EMPTY_BUILD_OPTION: True})])
    assert _plugin_option(credentials, EMPTY_BUILD_OPTION) is True
    credentials.plugins[0].config = None
    assert _plugin_option(credentials, EMPTY_BUILD_OPTION) is None


def test_the_macro_guard_follows_macros_in_a_manifest_json() -> None:
    manifest = {"macros": {"macro.p.hashed": {"depends_on": {"macros": ["macro.dbt._split_part_negative"]}},
                           "macro.p.plain": {"depends_on": {"macros": []}}}}
    node = SimpleNamespace(depends_on=SimpleNamespace(macros=["macro.p.hashed", "macro.p.plain"]))
    assert _duckdb_flavoured_macros(node, manifest) == ["_split_part_negative"]
    node.depends_on.macros = ["macro.p.plain"]
    assert _duckdb_flavoured_macros(node, manifest) == []
