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


def _pull_one(subscriber: Any, path: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = subscriber.pull(subscription=path, max_messages=1, timeout=5)
        if response.received_messages:
            return response.received_messages[0]
    pytest.fail(f"the event was not redelivered within {timeout:.0f} s (dead-lettered?)")


def test_unsettled_deliveries_beyond_the_consumers_threshold_still_store_the_event(
        stream_settings: Settings, publisher: Any, spawn_consumer: Any) -> None:
    from google.cloud import pubsub_v1

    policy = dead_letter_config(DEFAULT_SUBSCRIPTION)
    unsettled = StreamingOptions().max_failed_attempts + 2
    assert unsettled < policy.max_delivery_attempts
    tenant = uuid.uuid4()
    event = make_event(tenant)
    publish_events(publisher, stream_settings.project, [event])

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(stream_settings.project, DEFAULT_SUBSCRIPTION)
    try:
        for attempt in range(1, unsettled + 1):
            received = _pull_one(subscriber, path, 30)
            assert received.delivery_attempt == attempt  # Pub/Sub counts every one of them
            # What a consumer killed while holding it amounts to, without waiting out a lease.
            subscriber.modify_ack_deadline(subscription=path, ack_ids=[received.ack_id],
                                           ack_deadline_seconds=0)
    finally:
        subscriber.close()

    consumer = spawn_consumer()
    wait_for(lambda: tenant_total(stream_settings, tenant).events == 1, 60, "the event stored")
    assert fact_event_ids(stream_settings, tenant) == [str(event.event_id)]
    assert pull_dead_letters(stream_settings.project, 3) == []
    consumer.terminate()
    assert consumer.wait(timeout=30) == 0
