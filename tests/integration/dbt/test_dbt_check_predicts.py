"""`pulse-local dbt check` predicts `dbt build`: on tests/fixtures/bq_project_broken with source
rows in a real DuckDB warehouse, the models the check refuses are exactly those the real
build (first run, then incremental run) fails on, and the ones it passes build. Real dbt,
real DuckDB; no stack."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pulse_local.config import Settings
from pulse_local.warehouse import run_dbt
from pulse_local.warehouse.check import check_project

pytestmark = pytest.mark.integration

BROKEN = Path(__file__).resolve().parents[2] / "fixtures" / "bq_project_broken"


def test_check_verdicts_match_two_real_builds(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    project = Path(shutil.copytree(BROKEN, tmp_path / "project"))
    warehouse = tmp_path / "shop.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""
            create schema shop_raw;
            create table shop_raw.orders as select * from (values
              (1, 'shipped', 12.5::decimal(38, 9), timestamptz '2024-05-01 10:00:00+00',
               [{'sku': 'a', 'qty': 2}]),
              (2, 'pending', 3.0::decimal(38, 9), timestamptz '2024-05-02 11:00:00+00',
               [{'sku': 'b', 'qty': 1}, {'sku': 'c', 'qty': 4}])
            ) as t(order_id, status, amount, updated_at, items)""")
    monkeypatch.setenv("PULSE_BQ_BROKEN_DUCKDB", str(warehouse))
    settings = Settings(profile="local", state_dir=tmp_path / "state")

    report = check_project(settings, project_dir=project)
    models = {n.name: n for n in report.nodes if n.resource_type == "model"}
    refused = {name for name, n in models.items() if not n.ok}
    assert refused == {"selects_missing_column", "adds_string_to_number",
                       "incremental_missing_column", "reads_untyped_source",
                       "after_missing_column"}

    failed: set[str] = set()
    built: set[str] = set()
    for _ in range(2):  # first run, then the incremental run
        result = run_dbt(settings, ["build"], project_dir=project, target="duckdb",
                         target_path=tmp_path / "work", check=False, quiet=True)
        failed |= {n.name for n in result.nodes
                   if n.resource_type == "model" and n.status in ("error", "skipped")}
        built |= {n.name for n in result.nodes if n.resource_type == "model" and n.status == "success"}
    assert failed == refused
    assert built - failed == set(models) - refused == {"orders_ok"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select sum(quantity) from main.orders_ok").fetchone() == (7,)
