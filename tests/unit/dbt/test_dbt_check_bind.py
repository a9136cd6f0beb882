"""`pulse-local dbt check` predicts the build: translated SQL is bound against the sources'
schemas by an empty build (real dbt, real DuckDB in a scratch file), incremental branch
included. Fixture: tests/fixtures/bq_project_broken (models that translate but would not
build). No network: sockets are refused."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from pulse_local.cli import app
from pulse_local.config import Settings
from pulse_local.warehouse.bind import (
    BindFailure,
    SourceShape,
    create_sources,
    duckdb_type,
    explain,
    line_of,
    render_profile_value,
    scratch_output,
)
from pulse_local.warehouse.check import _upstream_selection, check_project

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BROKEN = FIXTURES / "bq_project_broken"


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: Any) -> None:
        raise OSError(f"network disabled in this test (connect to {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(profile="local", state_dir=tmp_path / "state", project="pulse-offline")


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    """A copy of the fixture (dbt writes nothing into it, but a copy keeps that so)."""
    return Path(shutil.copytree(BROKEN, tmp_path / "bq_project_broken"))


def test_check_refuses_what_would_not_build(broken: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            no_network: None) -> None:
    monkeypatch.setenv("PULSE_STATE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(app, ["dbt", "check", "--project-dir", str(broken),
                                      "--profiles-dir", str(broken), "--target", "duckdb",
                                      "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    nodes = {n["name"]: n for n in report["nodes"]}
    assert nodes["orders_ok"]["ok"] is True  # nested ARRAY<STRUCT> source column binds

    missing = nodes["selects_missing_column"]          # a column the source does not have
    assert (missing["ok"], missing["phase"], missing["line"]) == (False, "first run", 4)
    assert missing["path"] == "models/selects_missing_column.sql"
    assert 'column "discount_code" not found' in missing["reason"]
    assert missing["offending_line"] == "discount_code"

    typed = nodes["adds_string_to_number"]             # INT64 + STRING
    assert (typed["ok"], typed["line"]) == (False, 4)
    assert "+(DECIMAL(38,9), VARCHAR)" in typed["reason"]
    assert typed["offending_line"] == "amount + status as nonsense"

    incremental = nodes["incremental_missing_column"]  # only the is_incremental() branch fails
    assert (incremental["ok"], incremental["phase"], incremental["line"]) == (
        False, "incremental run", 6)
    assert 'column "loaded_at" not found' in incremental["reason"]

    untyped = nodes["reads_untyped_source"]            # a source without column types
    assert untyped["construct"] == "source shape"
    assert "shop.refunds" in untyped["reason"] and "data_type" in untyped["reason"]

    after = nodes["after_missing_column"]              # downstream of a failure: not bound
    assert (after["ok"], after["phase"]) == (False, "skipped")
    assert report["summary"] == ("1 of 6 nodes translate to DuckDB and bind; 4 do not; "
                                 "1 not bound (upstream fails)")

    text = CliRunner().invoke(app, ["dbt", "check", "--project-dir", str(broken),
                                    "--select", "incremental_missing_column"])
    assert text.exit_code == 1
    assert ("model incremental_missing_column (models/incremental_missing_column.sql, line 6): "
            "Binder Error (incremental run)") in text.output
    assert "offending line: where updated_date > (select max(loaded_at) from {{ this }})" in text.output


def test_selection_reports_only_the_selected_nodes(broken: Path, settings: Settings,
                                                   no_network: None) -> None:
    """Upstream nodes are built to bind against, but only the selection is reported."""
    report = check_project(settings, project_dir=broken, select=["--select", "adds_string_to_number"])
    assert [(n.name, n.ok) for n in report.nodes] == [("adds_string_to_number", False)]


def test_source_shape_from_the_local_warehouse(broken: Path, tmp_path: Path, settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch,
                                               no_network: None) -> None:
    """A source the yml does not type is shaped from the warehouse's catalog when it is there."""
    warehouse = tmp_path / "shop.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema shop_raw; create table shop_raw.refunds (order_id bigint, refunded numeric(38, 9))")
    monkeypatch.setenv("PULSE_BQ_BROKEN_DUCKDB", str(warehouse))
    report = check_project(settings, project_dir=broken,
                           select=["--select", "reads_untyped_source orders_ok"])
    assert {n.name: n.ok for n in report.nodes} == {"reads_untyped_source": True, "orders_ok": True}


def test_bq_project_fixture_passes_check(settings: Settings, no_network: None) -> None:
    """tests/fixtures/bq_project passes (tests/integration/translate builds it, twice)."""
    report = check_project(settings, "duckdb", project_dir=FIXTURES / "bq_project")
    assert report.ok, "\n".join(n.describe() for n in report.failed + report.skipped)
    assert {"orders_incremental", "customers_snapshot"} <= {n.name for n in report.nodes}


# ---- unit: how a DuckDB error is explained (no dbt) ---------------------------------

def test_types_convert_as_the_translator_casts() -> None:
    assert duckdb_type("NUMERIC") == "DECIMAL(38, 9)"
    assert duckdb_type("TIMESTAMP") == "TIMESTAMPTZ"
    assert duckdb_type("ARRAY<STRUCT<k STRING, v INT64>>") == "STRUCT(k TEXT, v BIGINT)[]"


def test_explain_finds_the_subject_and_the_line() -> None:
    message = ("Runtime Error in model m (models/m.sql)\n"
               "  Binder Error: Referenced column \"nope\" not found in FROM clause!\n"
               "  Candidate bindings: \"id\"\n\n  LINE 3: SELECT nope FROM t\n"
               "                 ^\n")
    cause = explain(message)
    assert cause.construct == "Binder Error" and cause.subject == "nope"
    assert cause.reason.endswith('(Candidate bindings: "id")')
    assert line_of("select\n  id,\n  -- nope in a comment\n  nope\nfrom t", cause) == (4, "nope")
    assert line_of("select 1", BindFailure("Binder Error", "x", "missing")) == (None, None)


def test_scratch_output_keeps_the_output_but_never_its_files(tmp_path: Path) -> None:
    output = {"type": "duckdb", "path": "/data/prod.duckdb", "threads": 4,
              "plugins": [{"module": "pulse_local.cdc.dbt_plugin"}, {"module": "other.plugin"}],
              "attach": [{"path": "/data/events.duckdb", "read_only": True},
                         {"path": "/data/x.duckdb", "alias": "ga4"}]}
    out = scratch_output(output, tmp_path)
    assert out["path"] == str(tmp_path / "pulse_check.duckdb") and out["threads"] == 4
    assert [p["module"] for p in out["plugins"]] == ["pulse_local.translate.dbt_plugin", "other.plugin"]
    assert [(a["alias"], a["path"], a["read_only"]) for a in out["attach"]] == [
        ("events", str(tmp_path / "events.duckdb"), False), ("ga4", str(tmp_path / "ga4.duckdb"), False)]
    assert output["path"] == "/data/prod.duckdb"  # the caller's output is not changed


def test_selection_is_widened_to_ancestors() -> None:
    assert _upstream_selection(["--select", "a +b tag:x", "--exclude", "c"]) == [
        "--select", "+a +b +tag:x", "--exclude", "c"]
    assert _upstream_selection([]) == []


def test_profile_values_render_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULSE_NOT_SET", raising=False)
    text = "{{ env_var('PULSE_NOT_SET', 'dflt') }}/{{ env_var('A') }}.duckdb"
    assert render_profile_value(text, {"A": "w"}) == "dflt/w.duckdb"
    assert render_profile_value(3, {}) == 3
    with pytest.raises(KeyError, match="PULSE_NOT_SET"):
        render_profile_value("{{ env_var('PULSE_NOT_SET') }}", {})


def test_sources_of_an_attached_database_go_to_its_scratch_file(tmp_path: Path) -> None:
    shapes = [SourceShape("source.p.ga4.events", "ga4 events", "analytics", "events_2024",
                          (("event_name", "VARCHAR"),), "yml", "ga4"),
              SourceShape("source.p.shop.orders", "orders", "shop_raw", "orders",
                          (("order_id", "BIGINT"),), "yml", "memory")]
    create_sources(tmp_path, shapes, ["ga4"])
    with duckdb.connect(str(tmp_path / "ga4.duckdb"), read_only=True) as con:
        assert con.execute("select * from analytics.events_2024").description[0][0] == "event_name"
    with duckdb.connect(str(tmp_path / "pulse_check.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from shop_raw.orders").fetchone() == (0,)
