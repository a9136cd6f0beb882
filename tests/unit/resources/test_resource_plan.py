"""Dry run, endpoint selection and reports: no sockets, no API calls."""

from __future__ import annotations

import pytest

from pulse_local.config import Settings
from pulse_local.resources import ApplyReport, bigtable_endpoint, provision, pubsub_endpoint


def _settings(**values: object) -> Settings:
    """Settings independent of the caller's environment and .env file."""
    values = {"PUBSUB_EMULATOR_HOST": None, "BIGTABLE_EMULATOR_HOST": None, **values}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_dry_run_against_gcp_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    reports = provision(_settings(project="pulse-prod"), "gcp", dry_run=True)
    out = capsys.readouterr().out
    assert "would apply Pub/Sub on GCP and Bigtable on GCP; nothing was called" in out
    prerequisites, pubsub, bigtable = reports  # datasets, subscription table, bucket first
    assert prerequisites.service == "gcp"
    assert {r.action for r in prerequisites.results + pubsub.results + bigtable.results} == {
        "planned"}
    assert "response-events-bigquery" in pubsub.names("planned", "subscription")
    assert "pulse-prod.raw.pubsub_response_events" in out
    assert "dead_letter=response-events-dlq after 20 attempts" in out
    assert bigtable.target == "projects/pulse-prod/instances/pulse"
    assert "events_dedup/seen" in bigtable.names("planned", "column_family")


def test_dry_run_local_skips_gcp_only_resources(capsys: pytest.CaptureFixture[str]) -> None:
    pubsub, _ = provision(_settings(), "local", dry_run=True)
    assert pubsub.skipped == ["subscription:response-events-bigquery"]
    assert "response-events-bigquery" not in pubsub.names("planned")
    assert "emulator 127.0.0.1:8085" in capsys.readouterr().out


def test_endpoints() -> None:
    local = _settings(host="10.0.0.5", pubsub_port=9085, bigtable_port=9086)
    assert pubsub_endpoint(local, "local") == "10.0.0.5:9085"
    assert bigtable_endpoint(local, "local") == "10.0.0.5:9086"
    assert pubsub_endpoint(local, "gcp") is None
    assert bigtable_endpoint(local, "gcp") is None
    explicit = _settings(PUBSUB_EMULATOR_HOST="emu:1", BIGTABLE_EMULATOR_HOST="emu:2")
    assert pubsub_endpoint(explicit, "gcp") == "emu:1"
    assert bigtable_endpoint(explicit, "gcp") == "emu:2"


def test_report_summary_and_helpers() -> None:
    report = ApplyReport("pubsub", "projects/p", skipped=["subscription:x"])
    report.add("topic", "a-topic", "created")
    report.add("subscription", "a-sub", "drift", "topic cannot change in place")
    assert report.changed
    assert report.names("created") == ["a-topic"]
    assert [r.name for r in report.drifted] == ["a-sub"]
    text = report.summary()
    assert text.splitlines()[0] == "pubsub projects/p: 1 created, 1 drift"
    assert "drift    subscription a-sub  (topic cannot change in place)" in text
    assert "skipped  subscription:x" in text
