"""Integration: `run_checks` and the `monitor_pipeline` flow against the real stack (PostgreSQL,
CDC service, Pub/Sub emulator, streaming consumer service, DuckDB warehouse built by dbt, Prefect).

Green after data went through every layer; red, each with its cause named, for a stale table
(an SLA made tiny by a config override), a source row the warehouse has not seen (inserted, no
dbt build), and a dead-lettered message (a poison event the consumer sends to the DLQ).
Tests run in file order: the green ones first, then each red one restores what it changed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from pulse_local.config import Settings
from pulse_local.monitoring import ChecksFailed, MonitorReport, load_config, run_checks
from pulse_local.orchestration import load_flow

pytestmark = pytest.mark.integration

EXPECTED_CHECKS = {
    "freshness:raw.responses", "freshness:raw.answers", "freshness:raw.pubsub_response_events",
    "freshness:dw.fact_response",
    *(f"completeness:raw.public_{t}" for t in ("organizations", "teams", "users", "assessments",
                                        "questions", "assessment_runs", "run_participants",
                                        "responses", "answers")),
    "completeness:responses_in_fact_response", "completeness:completed_responses_in_fact_response",
    "completeness:tenants_in_dim_tenant", "completeness:current_users_in_dim_user_scd",
    "completeness:runs_in_fact_run_summary",
    "cdc:lag", "streaming:consumer", "streaming:lag", "streaming:dead_letters", "dbt:run_results",
}


def test_green_after_data_went_through_every_layer(pipeline: Settings) -> None:
    report = run_checks(pipeline)
    print(report.summary())  # shown with -rP: what a healthy stack reports
    assert report.ok, report.summary()
    assert not report.failures, report.summary()
    assert {c.name for c in report.checks} == EXPECTED_CHECKS
    with psycopg.connect(pipeline.admin_dsn()) as conn:
        responses = conn.execute("select count(*) from responses").fetchone()[0]  # type: ignore[index]
    assert responses > 900  # the fixture set really is there
    assert report.check("completeness:raw.public_responses").detail == (
        f"source responses {responses} rows, raw.public_responses {responses}")
    assert report.check("completeness:responses_in_fact_response").detail == (
        f"source {responses} rows, warehouse {responses}")
    dbt = report.check("dbt:run_results")
    assert dbt.detail.startswith("dbt build at ") and " pass" in dbt.detail, dbt.detail
    assert str(pipeline.state_dir / "dbt" / "runs") in dbt.where_to_look  # the kept run
    assert report.check("streaming:dead_letters").detail == (
        "no dead letters in response-events-dlq-monitor")


def test_flow_green_returns_a_summary(pipeline: Settings) -> None:
    monitor = load_flow("monitor_pipeline")
    state = monitor(return_state=True)
    assert state.is_completed(), state.message
    outcome = state.result()
    assert outcome["ok"] is True
    assert outcome["summary"] == f"{len(EXPECTED_CHECKS)} checks: {len(EXPECTED_CHECKS)} ok, 0 warnings, 0 errors"
    assert set(outcome["checks"]) == EXPECTED_CHECKS
    assert outcome["alerts"] == "no alerts (every check passed)"


def _newest_raw_response(settings: Settings) -> datetime:
    from pulse_local.backends import for_profile
    from pulse_local.monitoring.warehouse import warehouse_query

    newest = warehouse_query(for_profile(settings).warehouse)(
        "select max(timestamp_millis(datastream_metadata.source_timestamp)) from raw.public_responses")
    return newest[0][0]


def test_stale_table_fails_with_its_age_and_sla(pipeline: Settings) -> None:
    config = load_config().with_freshness("raw.responses", warn_after=None, error_after="1s")
    newest = _newest_raw_response(pipeline)
    time.sleep(max(0.0, 1.5 - (datetime.now(UTC) - newest).total_seconds()))
    report = run_checks(pipeline, config, groups=["freshness"])
    stale = report.check("freshness:raw.responses")
    assert not report.ok and report.errors == [stale]
    assert stale.severity == "error"
    assert "SLA error after 1s" in stale.detail and "newest row" in stale.detail
    assert stale.since == newest + timedelta(seconds=1)
    assert "pulse-local logs cdc" in stale.where_to_look
    assert all(c.ok for c in report.checks if c is not stale), report.summary()


@pytest.fixture()
def extra_response(pipeline: Settings) -> Iterator[str]:
    """A complete response inserted straight into the source (no webhook, no dbt build);
    deleted again afterwards."""
    with psycopg.connect(pipeline.admin_dsn(), autocommit=True) as conn:
        tenant, assessment = conn.execute(  # type: ignore[misc]
            "select tenant_id, id from assessments order by id limit 1").fetchone()
        response_id = str(uuid.uuid4())
        conn.execute(
            "insert into responses (id, tenant_id, assessment_id, typeform_token, "
            "typeform_event_id, submitted_at, is_complete, answer_count, payload_sha256) "
            "values (%s, %s, %s, %s, %s, now(), true, 0, repeat('a', 64))",
            (response_id, tenant, assessment, f"monitor-{response_id}", f"ev-{response_id}"))
        try:
            yield response_id
        finally:
            conn.execute("delete from responses where id = %s", (response_id,))


def test_source_row_missing_from_the_warehouse_fails_completeness(
        pipeline: Settings, extra_response: str) -> None:
    report = run_checks(pipeline, groups=["completeness"])
    with psycopg.connect(pipeline.admin_dsn()) as conn:
        total = conn.execute("select count(*) from responses").fetchone()[0]  # type: ignore[index]
        complete = conn.execute(  # type: ignore[index]
            "select count(*) from responses where is_complete").fetchone()[0]
    failed = {c.name: c for c in report.failures}
    assert set(failed) == {"completeness:responses_in_fact_response",
                           "completeness:completed_responses_in_fact_response"}, report.summary()
    assert failed["completeness:responses_in_fact_response"].detail == (
        f"1 rows missing from warehouse: source has {total}, warehouse {total - 1}")
    assert failed["completeness:completed_responses_in_fact_response"].detail == (
        f"1 rows missing from warehouse: source has {complete}, warehouse {complete - 1}")
    assert all(c.severity == "error" for c in failed.values())
    assert "fact_response" in failed["completeness:responses_in_fact_response"].where_to_look
    # the CDC service landed the row before raw was counted (the check waits for the slot)
    assert report.check("completeness:raw.public_responses").ok, report.summary()


def _streaming(settings: Settings) -> MonitorReport:
    return run_checks(settings, groups=["streaming"])


def _poll(settings: Settings, done: Any, timeout: float = 60) -> MonitorReport:
    deadline = time.monotonic() + timeout
    while True:
        report = _streaming(settings)
        if done(report) or time.monotonic() > deadline:
            return report
        time.sleep(1)


def test_dead_lettered_message_fails_and_is_not_consumed_by_the_check(
        pipeline: Settings, dead_letters: Any) -> None:
    before = datetime.now(UTC)
    dead_letters.publish_poison(b"this is not JSON")
    report = _poll(pipeline, lambda r: not r.check("streaming:dead_letters").ok)
    dlq = report.check("streaming:dead_letters")
    assert not dlq.ok and dlq.severity == "error", report.summary()
    assert dlq.detail.startswith(
        "1 dead-lettered messages in response-events-dlq-monitor (reasons: "), dlq.detail
    assert dlq.since is not None and dlq.since >= before - timedelta(seconds=5)
    assert "response-events-dlq-monitor" in dlq.where_to_look
    # peeking did not consume it: the next run still sees it
    assert _streaming(pipeline).check("streaming:dead_letters").detail.startswith(
        "1 dead-lettered messages")
    assert dead_letters.ack_all() == 1
    cleared = _poll(pipeline, lambda r: r.check("streaming:dead_letters").ok, timeout=20)
    assert cleared.check("streaming:dead_letters").ok, cleared.summary()


def test_flow_fails_with_one_line_causes_and_alerts(
        pipeline: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pulse_local.monitoring import MONITORING_FILE

    declared = yaml.safe_load(MONITORING_FILE.read_text())
    for sla in declared["freshness"]:
        if sla["table"] == "dw.fact_response":
            sla.pop("warn_after", None)
            sla["error_after"] = "1s"
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(declared))
    monkeypatch.setenv("PULSE_MONITOR_CONFIG", str(path))
    time.sleep(1.5)
    alerts_file = pipeline.state_dir / "alerts" / "alerts.jsonl"
    before = alerts_file.read_text().count("\n") if alerts_file.exists() else 0
    monitor = load_flow("monitor_pipeline")
    state = monitor(return_state=True)
    assert state.is_failed()
    with pytest.raises(ChecksFailed) as caught:
        state.result()
    message = str(caught.value)
    lines = message.splitlines()
    assert lines[0] == "1 monitoring check(s) failed:"
    assert lines[1].startswith("  - freshness:dw.fact_response: newest row ")
    assert "SLA error after 1s" in lines[1] and "look at: " in lines[1]
    assert len(lines) == 2 and "Traceback" not in message
    written = alerts_file.read_text().splitlines()[before:]
    assert len(written) == 1 and '"check": "freshness:dw.fact_response"' in written[0]


def test_command_line_prints_json_and_exits_by_the_result(
        pipeline: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pulse_local.monitoring.__main__ import main

    assert main(["--group", "cdc", "--group", "dbt", "--json", "--no-alerts"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] is True and printed["alerts"] == "not sent"
    assert [r["name"] for r in printed["results"]] == ["cdc:lag", "dbt:run_results"]
