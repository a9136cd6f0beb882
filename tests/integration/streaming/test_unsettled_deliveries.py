"""Deliveries that end without an ack (a killed consumer's lease running out, a nack) count
towards the subscription's ``max_delivery_attempts`` on Pub/Sub; they must not dead-letter a
healthy event before the consumer has even tried it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from conftest import wait_for  # type: ignore[import-not-found]

from pulse_local.config import Settings
from pulse_local.streaming.options import DEFAULT_SUBSCRIPTION, StreamingOptions, dead_letter_config
from pulse_local.streaming.testing import (
    fact_event_ids,
    make_event,
    publish_events,
    pull_dead_letters,
    tenant_total,
)

pytestmark = pytest.mark.integration


def _pull_all(subscriber: Any, path: str, count: int, timeout: float) -> list[Any]:
    """One delivery of each of ``count`` messages."""
    got: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        response = subscriber.pull(subscription=path, max_messages=10, timeout=5)
        for received in response.received_messages:
            got[received.message.message_id] = received
    if len(got) < count:
        pytest.fail(f"{count - len(got)} message(s) not redelivered within {timeout:.0f} s "
                    "(dead-lettered by Pub/Sub?)")
    return list(got.values())


def test_unsettled_deliveries_count_for_pubsub_not_for_the_consumers_threshold(
        stream_settings: Settings, publisher: Any, spawn_consumer: Any) -> None:
    """A healthy event and a poison one each go through more unsettled deliveries than the
    consumer's threshold. The healthy one is then stored; the poison one is dead-lettered by
    the consumer after exactly its own count of failed processings."""
    from google.cloud import pubsub_v1

    policy = dead_letter_config(DEFAULT_SUBSCRIPTION)
    failures = StreamingOptions().max_failed_attempts
    unsettled = failures + 2
    assert unsettled + failures < policy.max_delivery_attempts
    tenant = uuid.uuid4()
    event = make_event(tenant)
    # A form id that makes the aggregate key exceed Bigtable's 4 KiB limit: refused every time.
    poison = make_event(tenant, uuid.uuid4(), form_id="f" * 5000)
    publish_events(publisher, stream_settings.project, [event, poison])

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(stream_settings.project, DEFAULT_SUBSCRIPTION)
    try:
        for attempt in range(1, unsettled + 1):
            received = _pull_all(subscriber, path, 2, 30)
            # Pub/Sub counts every one of them
            assert [r.delivery_attempt for r in received] == [attempt, attempt]
            # What a consumer killed while holding them amounts to, without waiting out a lease.
            subscriber.modify_ack_deadline(subscription=path, ack_ids=[
                r.ack_id for r in received], ack_deadline_seconds=0)
    finally:
        subscriber.close()

    consumer = spawn_consumer()
    wait_for(lambda: tenant_total(stream_settings, tenant).events == 1, 60, "the event stored")
    assert fact_event_ids(stream_settings, tenant) == [str(event.event_id)]
    dead = pull_dead_letters(stream_settings.project, 60)
    assert [d.message.attributes["event_id"] for d in dead] == [str(poison.event_id)]
    attributes = dead[0].message.attributes
    assert attributes["reason"] == "processing_failed"
    assert f"failed {failures} times" in attributes["reason_detail"]
    assert int(attributes["CloudPubSubDeadLetterSourceDeliveryCount"]) == unsettled + failures
    consumer.terminate()
    assert consumer.wait(timeout=30) == 0
