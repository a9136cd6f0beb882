"""The library entry point in drain mode: facts, aggregates, quality, dedup, DLQ, raw sink."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.streaming import consume, raw_events_dir, read_raw
from pulse_local.streaming.testing import (
    event_stream,
    fact_event_ids,
    make_event,
    publish,
    publish_events,
    tenant_total,
)

pytestmark = pytest.mark.integration


def _dlq_messages(settings: Settings, count: int) -> list[Any]:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    try:
        path = subscriber.subscription_path(settings.project, "response-events-dlq-monitor")
        got: list[Any] = []
        for _ in range(20):
            response = subscriber.pull(subscription=path, max_messages=100, timeout=5)
            got += response.received_messages
            if response.received_messages:
                subscriber.acknowledge(subscription=path,
                                       ack_ids=[m.ack_id for m in response.received_messages])
            if len(got) >= count:
                break
        return got
    finally:
        subscriber.close()


def test_drain_writes_each_event_once_and_dead_letters_invalid(
        stream_settings: Settings, publisher: Any) -> None:
    tenant = uuid.uuid4()
    events = event_stream(300, tenant, users=5)
    publish_events(publisher, stream_settings.project, events)
    publish_events(publisher, stream_settings.project, events[:50])  # webhook re-deliveries
    flagged = make_event(tenant, None, submitted_at=datetime.now(UTC) + timedelta(hours=2))
    publish_events(publisher, stream_settings.project, [flagged])
    publish(publisher, stream_settings.project, "response-events", [
        (b"not json", {"tenant_id": str(tenant)}),
        (b'{"schema_version": 2}', {"schema_version": "2"}),
    ])

    report = consume(stream_settings, idle_timeout=2.0)

    # A re-delivery handled concurrently by the other writer thread is written twice (the same
    # fact row) and its aggregate repeat undone; what matters is the stored state below.
    assert report.written + report.duplicates == 351
    assert report.dead_lettered == 2
    assert sorted(fact_event_ids(stream_settings, tenant)) == sorted(
        str(e.event_id) for e in [*events, flagged])
    total = tenant_total(stream_settings, tenant)
    assert total.events == 301
    assert total.flagged == 1
    assert total.score_sum == pytest.approx(
        sum(e.total_score or 0 for e in [*events, flagged]))

    dead = _dlq_messages(stream_settings, 2)
    reasons = sorted(m.message.attributes["reason"] for m in dead)
    assert reasons == ["not_json", "unsupported_schema_version"]

    rows = read_raw(raw_events_dir(stream_settings), dedup=True,
                    where=f"json_extract_string(attributes, '$.tenant_id') = '{tenant}'")
    assert len(rows) == 302  # 301 distinct events + the invalid message carrying the tenant
    assert {json.loads(r[4]).get("event_id") for r in rows} >= {str(e.event_id) for e in events}
    assert all(r[0].endswith("/subscriptions/response-events-bigquery") for r in rows)
