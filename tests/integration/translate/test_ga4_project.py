"""A GA4-style BigQuery dbt project (tests/fixtures/ga4_project) built on DuckDB, unchanged.

Real dbt (in-process), real DuckDB, through ``pulse-local dbt build --project-dir``: `dbt deps`
installs the local dbt_utils-like package offline, the first build loads three daily export
shards (plus an intraday one the models skip), then new and re-exported shards land and the
second build takes every incremental path. Expected rows are worked out by hand from the
events in ga4_export.py and BigQuery's semantics (the dbt-bigquery SQL each strategy runs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

pytest.importorskip("dbt.adapters.duckdb")
from dbt.cli.main import dbtRunner
from ga4_export import FIRST, SECOND, load_shards
from typer.testing import CliRunner

from pulse_local.cli import app

PROJECT = Path(__file__).resolve().parents[2] / "fixtures" / "ga4_project"

pytestmark = pytest.mark.integration

UTC = dt.UTC


@dataclass
class Built:
    """The project's copy, its DuckDB file, and what each build printed and left."""

    dir: Path
    db: Path
    outputs: list[str] = field(default_factory=list)
    first: dict[str, list[tuple]] = field(default_factory=dict)

    def query(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")
            return con.execute(sql).fetchall()
        finally:
            con.close()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["dbt", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


SNAPSHOT = {
    "stg": "SELECT event_date_dt, count(*) FROM stg_ga4__events GROUP BY 1 ORDER BY 1",
    "page_views": "SELECT * FROM fct_daily_page_views ORDER BY 1, 2",
    "monthly": "SELECT * FROM fct_monthly_country_events ORDER BY 1, 2",
    "hourly": "SELECT * FROM fct_hourly_revenue ORDER BY 1",
    "users": "SELECT * FROM dim_users ORDER BY 1",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """deps, then `pulse-local dbt build` on the first export, then again on the second."""
    root = tmp_path_factory.mktemp("ga4_project")
    project = Built(root / "ga4_project", root / "ga4.duckdb")
    shutil.copytree(PROJECT, project.dir, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    mp = pytest.MonkeyPatch()
    mp.setenv("PULSE_GA4_PROJECT_DUCKDB", str(project.db))
    mp.setenv("PULSE_STATE_DIR", str(root / "state"))
    mp.setenv("DO_NOT_TRACK", "1")
    try:
        deps = dbtRunner().invoke(["deps", "--project-dir", str(project.dir),
                                   "--profiles-dir", str(project.dir), "--quiet"])
        assert deps.success, deps.exception
        load_shards(str(project.db), FIRST)
        project.outputs.append(_cli("build", "--project-dir", str(project.dir)))
        project.first = {name: project.query(sql) for name, sql in SNAPSHOT.items()}
        load_shards(str(project.db), SECOND)
        project.outputs.append(_cli("build", "--project-dir", str(project.dir),
                                    "--profiles-dir", str(project.dir), "--target", "duckdb"))
        yield project
    finally:
        mp.undo()


def test_both_builds_pass_every_model_and_test(built: Built) -> None:
    for output in built.outputs:
        assert "7 success" in output and "10 pass" in output, output
        assert "error" not in output.lower()


def test_first_build_reads_daily_shards_only(built: Built) -> None:
    assert built.first["stg"] == [(dt.date(2024, 1, 1), 4), (dt.date(2024, 1, 2), 3), (dt.date(2024, 1, 3), 3)]
    assert built.first["monthly"] == [
        (dt.date(2024, 1, 1), "DE", 2), (dt.date(2024, 1, 1), "FR", 2), (dt.date(2024, 1, 2), "FR", 1),
        (dt.date(2024, 1, 2), "US", 2), (dt.date(2024, 1, 3), "DE", 1), (dt.date(2024, 1, 3), "GB", 2),
    ]


def test_dynamic_insert_overwrite_replaces_days_from_max_partition(built: Built) -> None:
    """_dbt_max_partition = 2024-01-03: days 3-5 are re-read and replaced, day 3 once (its late
    event added, nothing duplicated); day 1's re-export (u6) is older and stays unread."""
    rows = built.query("SELECT event_date_dt, count(*), list(user_pseudo_id ORDER BY event_ts) "
                       "FROM stg_ga4__events GROUP BY 1 ORDER BY 1")
    assert rows == [
        (dt.date(2024, 1, 1), 4, ["u1", "u1", "u2", "u2"]),
        (dt.date(2024, 1, 2), 3, ["u1", "u3", "u3"]),
        (dt.date(2024, 1, 3), 4, ["u2", "u4", "u4", "u1"]),
        (dt.date(2024, 1, 4), 2, ["u1", "u5"]),
        (dt.date(2024, 1, 5), 1, ["u2"]),
    ]
    assert built.query("SELECT count(*) FROM stg_ga4__events WHERE user_pseudo_id IN ('u6', 'u9')") == [(0,)]


def test_static_insert_overwrite_replaces_configured_partitions(built: Built) -> None:
    """partitions = Jan 3, 4, 5: those days are replaced; Jan 1 and 2 are untouched."""
    assert built.first["page_views"][-2:] == [(dt.date(2024, 1, 3), "/home", 1, 1),
                                              (dt.date(2024, 1, 3), "/pricing", 1, 1)]
    assert built.query(SNAPSHOT["page_views"]) == [
        *built.first["page_views"][:4],
        (dt.date(2024, 1, 3), "/docs", 1, 1),
        (dt.date(2024, 1, 3), "/home", 1, 1),
        (dt.date(2024, 1, 3), "/pricing", 1, 1),
        (dt.date(2024, 1, 4), "/home", 1, 1),
        (dt.date(2024, 1, 5), "/home", 1, 1),
    ]
    assert built.first["page_views"][:4] == [
        (dt.date(2024, 1, 1), "/home", 2, 2), (dt.date(2024, 1, 1), "/pricing", 1, 1),
        (dt.date(2024, 1, 2), "/docs", 1, 1), (dt.date(2024, 1, 2), "/home", 1, 1),
    ]


def test_month_partition_is_replaced_whole(built: Built) -> None:
    """Granularity month: the run reads days 4-5 only, and BigQuery replaces all of January."""
    assert built.query(SNAPSHOT["monthly"]) == [
        (dt.date(2024, 1, 4), "FR", 1), (dt.date(2024, 1, 4), "IT", 1), (dt.date(2024, 1, 5), "CH", 1),
    ]


def test_hour_partitions_replaced_not_duplicated(built: Built) -> None:
    hour = lambda d, h: dt.datetime(2024, 1, d, h, tzinfo=UTC)
    assert built.first["hourly"] == [(hour(1, 11), 1, 20.0), (hour(2, 12), 1, 15.5), (hour(3, 14), 1, 99.99)]
    assert built.query(SNAPSHOT["hourly"]) == [
        (hour(1, 11), 1, 20.0), (hour(2, 12), 1, 15.5), (hour(3, 14), 1, 99.99), (hour(4, 9), 1, 5.0),
    ]


def test_merge_updates_touched_users_and_keeps_others(built: Built) -> None:
    d = lambda day: dt.date(2024, 1, day)
    assert built.first["users"] == [
        ("u1", d(1), d(2), 3, "FR", 0.0), ("u2", d(1), d(3), 3, "DE", 20.0),
        ("u3", d(2), d(2), 2, "US", 15.5), ("u4", d(3), d(3), 2, "GB", 99.99),
    ]
    assert built.query(SNAPSHOT["users"]) == [
        ("u1", d(1), d(4), 5, "FR", 5.0), ("u2", d(1), d(5), 4, "CH", 20.0),
        ("u3", d(2), d(2), 2, "US", 15.5), ("u4", d(3), d(3), 2, "GB", 99.99),
        ("u5", d(4), d(4), 1, "IT", 0.0),
    ]


def test_event_params_unnest_and_surrogate_key(built: Built) -> None:
    first = FIRST["events_20240101"][0]
    expected_key = hashlib.md5(f"u1-{first.micros}-page_view".encode()).hexdigest()
    assert built.query("SELECT event_key, page_location, ga_session_id, engagement_time_msec "
                       "FROM stg_ga4__events ORDER BY event_ts LIMIT 1") == [(expected_key, "/home", 1, 100)]
    params = built.query("SELECT param_key, param_value FROM stg_ga4__event_params "
                         f"WHERE event_key = '{expected_key}' ORDER BY param_key")
    assert params == [("engagement_time_msec", "100"), ("ga_session_id", "1"), ("page_location", "/home")]
    assert built.query("SELECT count(*) FROM stg_ga4__event_params") == [(14 * 3,)]
    purchase = built.query("SELECT p.param_value FROM stg_ga4__event_params p JOIN stg_ga4__events e "
                           "USING (event_key) WHERE e.user_pseudo_id = 'u4' AND p.param_key = 'value'")
    assert purchase == [("99.99",)]


def test_star_macro_and_suffix_kept_out_of_star(built: Built) -> None:
    columns = [r[0] for r in built.query("DESCRIBE events_flat")]
    assert "event_params" not in columns and "shard" not in columns and "_TABLE_SUFFIX" not in columns
    assert columns[:2] == ["event_key", "event_date_dt"]
    shards = built.query("SELECT DISTINCT shard FROM stg_ga4__events ORDER BY 1")
    assert shards == [("20240101",), ("20240102",), ("20240103",), ("20240104",), ("20240105",)]


def test_pulse_local_dbt_test_on_the_project(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_GA4_PROJECT_DUCKDB", str(built.db))
    monkeypatch.setenv("PULSE_STATE_DIR", str(built.dir.parent / "state"))
    output = _cli("test", "--project-dir", str(built.dir))
    assert "10 pass" in output
    assert not (built.dir / "target").exists()  # dbt's work files stay under the state dir


def test_broken_models_fail_loudly(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wildcard with no table: BigQuery's "Not found"; dbt._split_part_negative (a
    cross-database macro not verified on DuckDB) through a project macro: refused, naming what
    to write."""
    monkeypatch.setenv("PULSE_GA4_PROJECT_DUCKDB", str(built.db))
    result = dbtRunner().invoke([
        "run", "--select", "models/broken", "--vars", "{include_broken: true}",
        "--project-dir", str(built.dir), "--profiles-dir", str(built.dir),
        "--target-path", str(built.dir.parent / "broken-target"),
        "--log-path", str(built.dir.parent / "broken-logs"), "--quiet"])
    assert not result.success
    messages = {r.node.name: str(r.message) for r in (result.result or [])}
    assert set(messages) == {"reads_missing_shards", "uses_unverified_macro"}
    missing = messages["reads_missing_shards"]
    assert "models/broken/reads_missing_shards.sql" in missing
    assert "Not found: Table" in missing and "sessions_*" in missing
    refused = messages["uses_unverified_macro"]
    assert "dbt._split_part_negative" in refused and "safe_offset(n)" in refused


def _check(built: Built, monkeypatch: pytest.MonkeyPatch, *args: str,
           warehouse: Path | None = None) -> tuple[int, dict]:
    """`pulse-local dbt check --json` of the built project (its warehouse, or `warehouse`)."""
    monkeypatch.setenv("PULSE_GA4_PROJECT_DUCKDB", str(warehouse or built.db))
    monkeypatch.setenv("PULSE_STATE_DIR", str(built.dir.parent / "state"))
    result = CliRunner().invoke(app, ["dbt", "check", "--project-dir", str(built.dir), "--json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout.lstrip().startswith("{"), result.stdout
    return result.exit_code, json.loads(result.stdout)


def test_dbt_check_passes_every_node_and_both_incremental_branches(
        built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project the two builds above passed: check passes every node (the wildcard events_*
    bound over the warehouse's shards), and the incremental run bound all five incremental
    models (insert_overwrite dynamic/static, month and hour partitions, merge)."""
    code, report = _check(built, monkeypatch)
    assert code == 0 and report["ok"], report
    names = {n["name"] for n in report["nodes"] if n["ok"]}
    assert {"stg_ga4__events", "stg_ga4__event_params", "events_flat", "dim_users",
            "fct_daily_page_views", "fct_hourly_revenue", "fct_monthly_country_events",
            "assert_no_intraday_rows"} <= names
    assert len(report["nodes"]) == 17  # 7 models, 10 data tests: what the build ran
    incremental = next(n for n in report["notes"] if n.startswith("incremental branches bound"))
    assert incremental.endswith(": dim_users, fct_daily_page_views, fct_hourly_revenue, "
                                "fct_monthly_country_events, stg_ga4__events"), incremental


def test_dbt_check_refuses_the_broken_models_as_the_build_does(
        built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same nodes, same causes as test_broken_models_fail_loudly's build."""
    code, report = _check(built, monkeypatch, "--vars", "{include_broken: true}",
                          "--select", "models/broken")
    assert code == 1 and not report["ok"]
    failed = {n["name"]: n for n in report["nodes"] if not n["ok"]}
    assert set(failed) == {"reads_missing_shards", "uses_unverified_macro"}, report
    missing = failed["reads_missing_shards"]
    assert missing["path"] == "models/broken/reads_missing_shards.sql"
    assert "Not found: Table" in missing["reason"] and "sessions_*" in missing["reason"]
    refused = failed["uses_unverified_macro"]
    assert "dbt._split_part_negative" in refused["reason"] and "safe_offset(n)" in refused["reason"]


def test_dbt_check_without_shards_gives_the_builds_wildcard_error(
        built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """No events_* shard in the warehouse: the build's "Not found", not a vague shape error."""
    code, report = _check(built, monkeypatch, "--select", "stg_ga4__events",
                          warehouse=built.dir.parent / "no-shards.duckdb")
    assert code == 1
    failed = [n for n in report["nodes"] if not n["ok"] and n["phase"] != "skipped"]
    assert [n["name"] for n in failed] == ["stg_ga4__events"], report
    assert failed[0]["construct"].startswith("wildcard table") and failed[0]["construct"].endswith("events_*")
    assert "Not found: Table" in failed[0]["reason"]
    assert "load at least one matching table" in failed[0]["hint"]


def test_dbt_docs_of_the_built_project(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_GA4_PROJECT_DUCKDB", str(built.db))
    state = built.dir.parent / "state"
    monkeypatch.setenv("PULSE_STATE_DIR", str(state))
    assert "dbt docs of ga4_project" in _cli("docs", "--project-dir", str(built.dir), "--no-serve")
    [index] = state.rglob("index.html")
    catalog = json.loads((index.parent / "catalog.json").read_text())
    columns = catalog["nodes"]["model.ga4_project.stg_ga4__events"]["columns"]
    assert {"event_key", "event_date_dt", "shard"} <= {c.lower() for c in columns}
    manifest = json.loads((index.parent / "manifest.json").read_text())
    assert "source.ga4_project.ga4.events" in manifest["parent_map"]["model.ga4_project.stg_ga4__events"]
