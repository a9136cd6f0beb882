"""Unit: the monitoring decisions (thresholds, counts, lag, dead letters, dbt results) and
`run_checks` wiring.

Fakes, said plainly: the source database, the CDC lag, the dead-letter reader and the consumer
status are in-memory fakes (`FakeSource`, lambdas) standing in for PostgreSQL, the replication
slot, Pub/Sub and the status file; the warehouse is a real in-memory DuckDB running the
monitor's BigQuery SQL through the real translator. The same checks against the real services
are in tests/integration/monitoring.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from pulse_local.cdc import Lag
from pulse_local.config import Settings
from pulse_local.monitoring import MonitorConfig, Probes, load_config, run_checks
from pulse_local.monitoring.config import (
    CdcSpec,
    ConsumerSpec,
    DbtSpec,
    DeadLetterSpec,
    FreshnessSpec,
    StreamingLagSpec,
)
from pulse_local.monitoring.dead_letters import DeadLetterPeek
from pulse_local.monitoring.groups.cdc import evaluate_cdc_lag
from pulse_local.monitoring.groups.completeness import evaluate_count, raw_current_count_sql
from pulse_local.monitoring.groups.dbt import evaluate_run_results
from pulse_local.monitoring.groups.freshness import evaluate_freshness
from pulse_local.monitoring.groups.streaming import (
    evaluate_consumer_status,
    evaluate_dead_letters,
    evaluate_streaming_lag,
)
from pulse_local.monitoring.probes import latest_run_results
from pulse_local.monitoring.source import SourceSnapshot
from pulse_local.translate import bigquery_to_duckdb

NOW = datetime(2024, 9, 5, 12, 0, tzinfo=UTC)


def fresh(**kw: Any) -> FreshnessSpec:
    return FreshnessSpec.model_validate({"table": "raw.responses", "timestamp": "ts",
                                         "warn_after": "1h", "error_after": "1d", **kw})


# ------------------------------------------------------------------ freshness

def test_freshness_ok_warning_error_and_empty() -> None:
    ok = evaluate_freshness(fresh(), NOW - timedelta(minutes=30), NOW)
    assert ok.ok and ok.severity == "info" and "30 min old" in ok.detail

    warn = evaluate_freshness(fresh(), NOW - timedelta(hours=2), NOW)
    assert not warn.ok and warn.severity == "warning"
    assert warn.since == NOW - timedelta(hours=1)  # newest row + warn_after
    assert "2 h old" in warn.detail and "SLA warn after 1h" in warn.detail

    error = evaluate_freshness(fresh(), NOW - timedelta(days=3), NOW)
    assert not error.ok and error.severity == "error"
    assert error.since == NOW - timedelta(days=2)
    assert "3 d old" in error.detail and "SLA error after 1d" in error.detail

    empty = evaluate_freshness(fresh(), None, NOW)
    assert not empty.ok and empty.severity == "error" and "has no rows" in empty.detail


def test_freshness_naive_timestamps_are_utc_and_where_to_look_defaults_to_the_table() -> None:
    result = evaluate_freshness(fresh(warn_after=None, error_after="10m"),
                                datetime(2024, 9, 5, 11, 55), NOW)
    assert result.ok, result
    assert result.where_to_look == "table raw.responses"
    stale = evaluate_freshness(fresh(warn_after=None, error_after="1m"),
                               datetime(2024, 9, 5, 11, 55), NOW)
    assert stale.severity == "error" and stale.since == datetime(2024, 9, 5, 11, 56, tzinfo=UTC)


def test_freshness_spec_rejects_inverted_or_missing_thresholds() -> None:
    with pytest.raises(ValueError, match="warn_after must not be longer"):
        fresh(warn_after="2d", error_after="1d")
    with pytest.raises(ValueError, match="warn_after and/or error_after"):
        fresh(warn_after=None, error_after=None)


# ------------------------------------------------------------------ completeness

def test_count_equal_missing_extra_and_tolerance() -> None:
    assert evaluate_count("c", "source", 10, "raw", 10).ok
    missing = evaluate_count("c", "source responses", 10, "raw.responses", 7, note="(see cdc:lag)")
    assert not missing.ok and missing.severity == "error"
    assert missing.detail == ("3 rows missing from raw.responses: source responses has 10, "
                              "raw.responses 7 (see cdc:lag)")
    extra = evaluate_count("c", "source", 5, "warehouse", 6, severity="warning")
    assert not extra.ok and extra.severity == "warning" and "1 rows more in warehouse" in extra.detail
    assert evaluate_count("c", "source", 10, "raw", 9, tolerance=1).ok


def _datastream_rows(conn: Any) -> None:
    """Append-only change rows: 1 inserted; 2 inserted then updated; 3 inserted then deleted;
    4 updated with the old image at the same timestamp (UPDATE-DELETE must not win)."""
    conn.execute("create schema raw")
    conn.execute("""create table raw.responses as select * from (values
        ('1', {'source_timestamp': 1000, 'change_sequence_number': 'a', 'change_type': 'INSERT'}),
        ('2', {'source_timestamp': 1000, 'change_sequence_number': 'b', 'change_type': 'INSERT'}),
        ('2', {'source_timestamp': 2000, 'change_sequence_number': 'c', 'change_type': 'UPDATE-INSERT'}),
        ('3', {'source_timestamp': 1000, 'change_sequence_number': 'd', 'change_type': 'INSERT'}),
        ('3', {'source_timestamp': 3000, 'change_sequence_number': 'e', 'change_type': 'DELETE'}),
        ('4', {'source_timestamp': 1000, 'change_sequence_number': 'f', 'change_type': 'INSERT'}),
        ('4', {'source_timestamp': 4000, 'change_sequence_number': 'g', 'change_type': 'UPDATE-DELETE'}),
        ('4', {'source_timestamp': 4000, 'change_sequence_number': 'g', 'change_type': 'UPDATE-INSERT'})
        ) t(id, datastream_metadata)""")


def test_raw_current_count_merges_append_only_changes_to_the_latest_state() -> None:
    conn = duckdb.connect()
    _datastream_rows(conn)
    sql = raw_current_count_sql("raw.responses", ["id"], "append-only")
    assert conn.execute(bigquery_to_duckdb(sql)).fetchone() == (3,)  # 1, 2, 4
    assert conn.execute(bigquery_to_duckdb(
        raw_current_count_sql("raw.responses", ["id"], "merge"))).fetchone() == (8,)
    # keyless, append-only (no is_deleted in that mode): 6 images added, 1 DELETE and 1
    # UPDATE-DELETE removed
    assert conn.execute(bigquery_to_duckdb(
        raw_current_count_sql("raw.responses", [], "append-only"))).fetchone() == (4,)


# ------------------------------------------------------------------ CDC lag

def lag(**kw: Any) -> Lag:
    values: dict[str, Any] = {"slot": "pulse_datastream", "slot_active": True, "current_lsn": "0/2",
                              "confirmed_flush_lsn": "0/1", "bytes_behind": 100,
                              "seconds_behind": 2.0, "last_landed_commit": None,
                              "landed_changes": 10}
    return Lag(**{**values, **kw})


CDC = CdcSpec.model_validate({"warn_seconds_behind": "1m", "error_seconds_behind": "15m",
                              "warn_bytes_behind": 1000, "error_bytes_behind": 10_000})


def test_cdc_lag_thresholds() -> None:
    assert evaluate_cdc_lag(CDC, lag(), NOW).ok
    warn = evaluate_cdc_lag(CDC, lag(seconds_behind=120.0), NOW)
    assert warn.severity == "warning" and not warn.ok
    assert warn.since == NOW - timedelta(seconds=120)
    error = evaluate_cdc_lag(CDC, lag(seconds_behind=5.0, bytes_behind=20_000), NOW)
    assert error.severity == "error" and "> 10000 bytes" in error.detail
    missing = evaluate_cdc_lag(CDC, lag(confirmed_flush_lsn=None, bytes_behind=None), NOW)
    assert missing.severity == "error" and "resync" in missing.detail
    never = evaluate_cdc_lag(CDC, lag(seconds_behind=None), NOW)
    assert not never.ok and "landed nothing" in never.detail


# ------------------------------------------------------------------ streaming

def test_consumer_status_alive_stale_stopped_and_missing() -> None:
    spec = ConsumerSpec()
    beat = {"pid": 1, "updated_at": NOW.timestamp() - 3, "subscribed": True, "stopped": False,
            "received": 5, "written": 4, "dead_lettered": 1, "in_flight": 0, "errors": []}
    alive = evaluate_consumer_status(spec, beat, NOW)
    assert alive.ok and "written 4" in alive.detail
    stale = evaluate_consumer_status(spec, {**beat, "updated_at": NOW.timestamp() - 600}, NOW)
    assert stale.severity == "error" and "stuck or gone" in stale.detail
    assert stale.since == NOW - timedelta(seconds=600)
    stopped = evaluate_consumer_status(spec, {**beat, "stopped": True, "errors": ["boom"]}, NOW)
    assert not stopped.ok and "stopped" in stopped.detail and "boom" in stopped.detail
    unsubscribed = evaluate_consumer_status(spec, {**beat, "subscribed": False}, NOW)
    assert not unsubscribed.ok and "no open stream" in unsubscribed.detail
    missing = evaluate_consumer_status(spec, None, NOW, "/x/status.json")
    assert not missing.ok and "/x/status.json" in missing.detail


def test_streaming_lag() -> None:
    spec = StreamingLagSpec.model_validate({"source": "s", "warehouse": "w", "warn_after": "1m",
                                            "error_after": "5m"})
    assert evaluate_streaming_lag(spec, None, None, NOW).ok  # nothing accepted yet
    assert evaluate_streaming_lag(spec, NOW - timedelta(seconds=10), NOW, NOW).ok
    behind = evaluate_streaming_lag(spec, NOW, NOW - timedelta(minutes=10), NOW)
    assert behind.severity == "error" and "10 min behind" in behind.detail
    assert behind.since == NOW - timedelta(minutes=10)
    nothing_sunk = evaluate_streaming_lag(spec, NOW - timedelta(minutes=2), None, NOW)
    assert nothing_sunk.severity == "warning" and "none" in nothing_sunk.detail


def test_dead_letters() -> None:
    spec = DeadLetterSpec()
    assert evaluate_dead_letters(spec, DeadLetterPeek("dlq", 0)).ok
    oldest = NOW - timedelta(hours=1)
    two = evaluate_dead_letters(spec, DeadLetterPeek("dlq", 2, oldest=oldest,
                                                     reasons={"invalid_json": 2}))
    assert not two.ok and two.severity == "error" and two.since == oldest
    assert "2 dead-lettered messages in dlq (reasons: invalid_json 2)" in two.detail
    assert "dlq" in two.where_to_look
    capped = evaluate_dead_letters(DeadLetterSpec(error_depth=None, warn_depth=1),
                                   DeadLetterPeek("dlq", 1000, capped=True))
    assert capped.severity == "warning" and "1000+" in capped.detail


# ------------------------------------------------------------------ dbt

def run_results(*nodes: tuple[str, str, Any, str], which: str = "build") -> dict[str, Any]:
    return {"metadata": {"generated_at": "2024-09-05T11:00:00.000000Z"},
            "args": {"which": which},
            "results": [{"unique_id": uid, "status": status, "failures": failures,
                         "message": message} for uid, status, failures, message in nodes]}


def test_run_results_pass_fail_warn_and_missing(tmp_path: Path) -> None:
    spec = DbtSpec()
    path = tmp_path / "run_results.json"
    green = evaluate_run_results(spec, run_results(
        ("model.pulse.fact_response", "success", None, "OK"),
        ("test.pulse.unique_fact_response_response_id.abc", "pass", 0, "")), path)
    assert [(c.name, c.ok) for c in green] == [("dbt:run_results", True)]
    assert "1 pass, 1 success" in green[0].detail

    red = evaluate_run_results(spec, run_results(
        ("test.pulse.assert_fact_score_matches_source_total", "fail", 3, "Got 3 results"),
        ("unit_test.pulse.fact_response.fact_response_scores_reverse_keyed_items", "error", None,
         "Runtime Error\n  boom"),
        ("test.pulse.not_null_x.def", "warn", 1, "Got 1 result")), path)
    by_name = {c.name: c for c in red}
    assert set(by_name) == {"dbt:assert_fact_score_matches_source_total",
                            "dbt:fact_response_scores_reverse_keyed_items", "dbt:not_null_x"}
    failed = by_name["dbt:assert_fact_score_matches_source_total"]
    assert failed.severity == "error" and "3 failing rows" in failed.detail
    assert failed.since == datetime(2024, 9, 5, 11, 0, tzinfo=UTC)
    assert "dbt build --select assert_fact_score_matches_source_total" in failed.where_to_look
    assert "Runtime Error boom" in by_name["dbt:fact_response_scores_reverse_keyed_items"].detail
    assert by_name["dbt:not_null_x"].severity == "warning"

    compiled = evaluate_run_results(spec, run_results(which="compile"), path)
    assert compiled[0].severity == "warning" and "not a build" in compiled[0].detail
    missing = evaluate_run_results(spec, None, None)
    assert missing[0].severity == "error" and "dbt has not run" in missing[0].detail
    assert evaluate_run_results(DbtSpec(missing=None), None, None) == []


def test_latest_run_results_prefers_the_newest_build(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert latest_run_results(settings) is None
    runs = tmp_path / "dbt" / "runs"
    older = runs / "20240901T000000.000000Z-build" / "run_results.json"
    newer_docs = tmp_path / "dbt" / "target" / "run_results.json"
    for path, which in ((older, "build"), (newer_docs, "docs")):
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(run_results(which=which)))
    os.utime(older, (time.time() - 100, time.time() - 100))
    assert latest_run_results(settings) == older  # a later `docs generate` holds no tests
    newer_build = runs / "20240902T000000.000000Z-build" / "run_results.json"
    newer_build.parent.mkdir()
    newer_build.write_text(json.dumps(run_results()))
    assert latest_run_results(settings) == newer_build


# ------------------------------------------------------------------ run_checks with fakes

class FakeSource:
    """In-memory stand-in for PostgreSQL: fixed values per query, a slot that answers `wait`."""

    def __init__(self, values: Mapping[str, Any], wait: str = "caught_up") -> None:
        self.values, self.wait, self.queries = values, wait, []  # type: ignore[var-annotated]

    def snapshot(self, queries: Mapping[str, str]) -> SourceSnapshot:
        self.queries.append(dict(queries))
        return SourceSnapshot({k: self.values[sql] for k, sql in queries.items()}, "0/10")

    def primary_keys(self, tables: Sequence[str]) -> dict[str, list[str]]:
        return {t: ["id"] for t in tables}

    def wait_for_slot(self, slot: str, lsn: str, timeout: float) -> str:
        return self.wait


class NoDeadLetters:
    """Stand-in for Pub/Sub: an empty dead-letter subscription."""

    def peek(self, subscription: str, max_count: int, timeout: float) -> DeadLetterPeek:
        return DeadLetterPeek(subscription, 0)


def _warehouse(conn: Any) -> Any:
    return lambda sql: conn.execute(bigquery_to_duckdb(sql)).fetchall()


def _probes(conn: Any, source: FakeSource, **kw: Any) -> Probes:
    values: dict[str, Any] = {
        "warehouse": _warehouse(conn), "source": source, "cdc_lag": lambda: lag(),
        "dead_letters": NoDeadLetters(),
        "consumer_status": lambda: {"pid": 1, "updated_at": NOW.timestamp(), "subscribed": True},
        "raw_mode": lambda table: "append-only", "slot": lambda: "pulse_datastream",
        "default_dead_letter_subscription": lambda: "response-events-dlq-monitor",
        "dbt_run_results": lambda: None, "now": lambda: NOW}
    return Probes(**{**values, **kw})


CONFIG = MonitorConfig.model_validate({
    "freshness": [{"table": "raw.responses",
                   "timestamp": "timestamp_millis(datastream_metadata.source_timestamp)",
                   "error_after": "1h"}],
    "completeness": {
        "source_vs_raw": {"tables": ["responses"]},
        "source_vs_warehouse": [{"name": "raw_changes", "source": "select 8",
                                 "warehouse": "select count(*) from raw.responses"}]},
    "cdc": {"error_seconds_behind": "15m"},
    "streaming": {"consumer": {}, "dead_letters": {}},
    "dbt": {"missing": "warning"},
})


def test_run_checks_with_fakes_reports_every_group(tmp_path: Path) -> None:
    conn = duckdb.connect()
    _datastream_rows(conn)
    source = FakeSource({'select count(*) from "responses"': 3, "select 8": 8})
    report = run_checks(Settings(state_dir=tmp_path), CONFIG, probes=_probes(conn, source))
    names = [c.name for c in report.checks]
    assert names == ["freshness:raw.responses", "completeness:raw.responses",
                     "completeness:raw_changes", "cdc:lag", "streaming:consumer",
                     "streaming:dead_letters", "dbt:run_results"]
    # newest change 1970-01-01T00:00:04Z: stale; dbt never ran: a warning by this config
    assert [c.name for c in report.errors] == ["freshness:raw.responses"]
    assert [c.name for c in report.warnings] == ["dbt:run_results"]
    assert not report.ok
    assert report.check("completeness:raw.responses").detail == (
        "source responses 3 rows, raw.responses 3")
    assert report.summary().splitlines()[-1] == "7 checks: 5 ok, 1 warnings, 1 errors"


def test_completeness_mismatch_says_the_cdc_was_not_streaming(tmp_path: Path) -> None:
    conn = duckdb.connect()
    _datastream_rows(conn)
    source = FakeSource({'select count(*) from "responses"': 4, "select 8": 8}, wait="inactive")
    report = run_checks(Settings(state_dir=tmp_path), CONFIG, groups=["completeness"],
                        probes=_probes(conn, source))
    raw = report.check("completeness:raw.responses")
    assert not raw.ok and raw.severity == "error"
    assert raw.detail.startswith("1 rows missing from raw.responses: source responses has 4")
    assert "no CDC process is streaming" in raw.detail
    assert report.check("completeness:raw_changes").ok


def test_a_check_that_cannot_run_fails_with_its_cause(tmp_path: Path) -> None:
    conn = duckdb.connect()  # no raw schema at all

    def no_lag() -> Lag:
        raise ConnectionError("PostgreSQL does not answer")

    report = run_checks(Settings(state_dir=tmp_path), CONFIG, groups=["freshness", "cdc"],
                        probes=_probes(conn, FakeSource({}), cdc_lag=no_lag))
    fresh_check, cdc = report.checks
    assert not fresh_check.ok and fresh_check.severity == "error"
    assert fresh_check.detail.startswith("could not check: CatalogException")
    assert "raw.responses" in fresh_check.detail or "raw" in fresh_check.detail
    assert cdc.detail == "could not check: ConnectionError: PostgreSQL does not answer"


def test_repository_monitoring_file_is_valid_and_overridable() -> None:
    config = load_config()
    tables = [f.table for f in config.freshness]
    assert {"raw.responses", "raw.pubsub_response_events", "dw.fact_response"} <= set(tables)
    tight = config.with_freshness("raw.responses", warn_after=None, error_after="1s")
    assert tight.freshness[tables.index("raw.responses")].error_after == timedelta(seconds=1)
    assert config.freshness[tables.index("raw.responses")].error_after == timedelta(hours=24)
    with pytest.raises(KeyError):
        config.with_freshness("raw.nope", error_after="1s")


def test_bad_monitoring_file_names_the_field(tmp_path: Path) -> None:
    from pulse_local.monitoring import MonitorConfigError

    bad = tmp_path / "monitoring.yaml"
    bad.write_text("freshness:\n  - table: raw.responses\n    timestamp: ts\n    error_after: 10\n")
    with pytest.raises(MonitorConfigError, match=r"freshness\.0\.error_after: .*duration"):
        load_config(bad)
    with pytest.raises(MonitorConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")


def test_command_line_help_ends_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    from pulse_local.monitoring.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "Example: python -m pulse_local.monitoring" in capsys.readouterr().out


def test_dead_letter_subscription_comes_from_the_declared_resources(tmp_path: Path) -> None:
    from pulse_local.errors import ConfigError
    from pulse_local.monitoring.dead_letters import default_dead_letter_subscription
    from pulse_local.resources import PUBSUB_FILE

    assert default_dead_letter_subscription("local") == "response-events-dlq-monitor"
    declared = yaml.safe_load(PUBSUB_FILE.read_text())
    declared["subscriptions"] = [s for s in declared["subscriptions"]
                                 if s["name"] != "response-events-dlq-monitor"]
    without_reader = tmp_path / "resources.yaml"
    without_reader.write_text(yaml.safe_dump(declared))
    with pytest.raises(ConfigError, match="no subscription reads the dead-letter topic "
                                          "'response-events-dlq'"):
        default_dead_letter_subscription("local", without_reader)
