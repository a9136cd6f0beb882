"""Integration: the full session stack (PostgreSQL, Pub/Sub and Bigtable emulators, Prefect) and
the `check_stack` flow's real round trips, recorded by the real Prefect API."""

from __future__ import annotations

from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.doctor import run_checks
from pulse_local.orchestration import load_flow

pytestmark = pytest.mark.integration


def test_every_service_is_healthy(pulse_stack: Any) -> None:
    statuses = {s.name: s.health for s in pulse_stack.status()}
    assert statuses == {name: "healthy" for name in statuses}
    assert {"postgres", "pubsub", "bigtable", "prefect"} <= set(statuses)


def test_declared_resources_exist_on_the_emulators(
    pubsub_publisher: Any, bigtable_instance: Any, pulse_settings: Settings
) -> None:
    topics = {t.name.rsplit("/", 1)[1] for t in pubsub_publisher.list_topics(
        request={"project": f"projects/{pulse_settings.project}"})}
    assert {"response-events", "response-events-dlq"} <= topics
    tables = {t.table_id for t in bigtable_instance.list_tables()}
    assert {"events_fact", "events_aggregate"} <= tables


def test_round_trips_through_every_service(pulse_stack: Any, pulse_settings: Settings) -> None:
    results = run_checks(pulse_settings)
    failed = [(r.service, r.detail) for r in results if not r.ok]
    assert not failed
    assert {r.service for r in results} == {"postgres", "pubsub", "bigtable", "warehouse"}


def test_check_stack_flow_runs_on_the_stack_prefect(prefect_client: Any) -> None:
    check_stack = load_flow("check_stack")
    state = check_stack(return_state=True)
    assert state.is_completed(), state.message
    runs = prefect_client.read_flow_runs()
    assert any(r.name and r.state and r.state.is_completed() and r.id == state.state_details.flow_run_id
               for r in runs)


def test_a_failing_round_trip_fails_the_flow_with_the_cause(
    pulse_stack: Any, pulse_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = pulse_settings.app_dsn().replace(f":{pulse_settings.app_password()}@", ":wrong@")
    monkeypatch.setenv("PULSE_DATABASE_URL", wrong)
    check_stack = load_flow("check_stack")
    state = check_stack(return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError, match="postgres: .*password authentication failed"):
        state.result()
