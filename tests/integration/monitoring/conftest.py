"""Fixtures of the monitoring tests: the session stack with real pipeline data in every layer.

`pipeline` (once per module): a small fixture set (1 tenant) seeded, its webhooks replayed
through the stack's processor, the CDC drained (the stack's `cdc` service lands it), the
streaming consumer service given time to sink every published event, and `dbt build` run
(its dbt-duckdb plugin creates the raw views) and kept as the dbt_build flow keeps its runs.
Nothing here is faked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pulse_local.config import Settings


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def _sunk_everything(settings: Settings) -> bool:
    """The raw sink holds a message published after the newest accepted delivery."""
    from pulse_local.streaming.sink import raw_events_dir, read_raw

    with psycopg.connect(settings.admin_dsn()) as conn:
        row = conn.execute("select max(received_at) from webhook_deliveries "
                           "where outcome <> 'stale'").fetchone()
    accepted = row[0] if row else None
    root = raw_events_dir(settings)
    if accepted is None or not root.is_dir():
        return False
    rows = read_raw(root, dedup=False)
    return bool(rows) and max(r[2] for r in rows) >= accepted


@pytest.fixture(scope="module")
def pipeline(pulse_stack: Any, pulse_settings: Settings,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of the session stack once data went source -> raw -> warehouse (and Pub/Sub)."""
    from pulse_local.cdc import drain
    from pulse_local.source.fixtures import generate
    from pulse_local.source.migrations import migrate
    from pulse_local.source.replay import replay
    from pulse_local.source.seed import seed_reference_data
    from pulse_local.warehouse import run_dbt

    settings = pulse_settings
    migrate(settings)
    out: Path = tmp_path_factory.mktemp("monitoring-fixtures")
    generate(1, 7, out)
    seed_reference_data(settings, out)
    statuses = replay(settings, out, concurrency=8, progress=False)
    assert set(statuses) == {200}, f"webhooks not accepted: {statuses}"
    drain(settings, timeout=120)
    _wait(lambda: _sunk_everything(settings), 120, "the streaming consumer to sink every event")
    result = run_dbt(settings, ["build"], quiet=True)
    assert result.success, result.summary()
    from pulse_local.warehouse.runs import keep_run

    keep_run(settings, result)  # as the dbt_build flow does: the monitor reads kept runs
    yield settings


@pytest.fixture()
def dead_letters(pipeline: Settings) -> Iterator[Any]:
    """Helpers on the dead-letter subscription; whatever is left there is acked afterwards."""
    from pulse_local.backends import emulator_endpoints
    from pulse_local.monitoring.dead_letters import default_dead_letter_subscription
    from pulse_local.resources import close_pubsub_clients, pubsub_clients

    publisher, subscriber = pubsub_clients(emulator_endpoints(pipeline).pubsub)
    path = subscriber.subscription_path(pipeline.project, default_dead_letter_subscription(
        pipeline.profile))

    class DeadLetters:
        def publish_poison(self, data: bytes) -> None:
            """Publish an invalid event to response-events: the consumer dead-letters it."""
            topic = publisher.topic_path(pipeline.project, "response-events")
            publisher.publish(topic, data).result(timeout=30)

        def ack_all(self) -> int:
            from google.api_core.exceptions import DeadlineExceeded

            acked = 0
            while True:
                try:
                    response = subscriber.pull(request={"subscription": path,
                                                        "max_messages": 100},
                                               timeout=3, retry=None)
                except DeadlineExceeded:
                    return acked
                if not response.received_messages:
                    return acked
                subscriber.acknowledge(request={"subscription": path, "ack_ids": [
                    m.ack_id for m in response.received_messages]})
                acked += len(response.received_messages)

    helper = DeadLetters()
    try:
        yield helper
    finally:
        helper.ack_all()
        close_pubsub_clients(publisher, subscriber)
