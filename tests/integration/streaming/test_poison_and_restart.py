"""A poison message is dead-lettered after the declared attempts while the stream flows on;
the emulator restarted under the consumer: it reconnects and catches up."""

from __future__ import annotations

import signal
import time
import uuid
from typing import Any

import pytest
from conftest import wait_for  # type: ignore[import-not-found]

from pulse_local.config import Settings
from pulse_local.streaming.options import StreamingOptions
from pulse_local.streaming.testing import (
    event_stream,
    make_event,
    publish_events,
    pull_dead_letters,
    tenant_total,
)

pytestmark = pytest.mark.integration


def test_poison_message_is_dead_lettered_after_declared_attempts(
        stream_settings: Settings, publisher: Any, spawn_consumer: Any) -> None:
    tenant = uuid.uuid4()
    # A form id that makes the aggregate key exceed Bigtable's 4 KiB limit: GCP refuses the
    # write on every attempt (our store enforces the limit because the emulator does not).
    poison = make_event(tenant, uuid.uuid4(), form_id="f" * 5000)
    good = event_stream(500, tenant)
    consumer = spawn_consumer()
    publish_events(publisher, stream_settings.project, [poison, *good[:250]])
    publish_events(publisher, stream_settings.project, good[250:])

    dead = pull_dead_letters(stream_settings.project, 60)
    assert len(dead) == 1
    attributes = dead[0].message.attributes
    assert attributes["reason"] == "processing_failed"
    assert "4096" in attributes["reason_detail"]
    attempts = StreamingOptions().max_failed_attempts
    assert f"failed {attempts} times" in attributes["reason_detail"]
    # Nothing but these failures was delivered, so Pub/Sub's count agrees with ours.
    assert int(attributes["CloudPubSubDeadLetterSourceDeliveryCount"]) == attempts
    assert attributes["event_id"] == str(poison.event_id)
    wait_for(lambda: tenant_total(stream_settings, tenant).events == 500, 60, "good events")
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0


def test_emulator_restart_consumer_reconnects_and_catches_up(
        stream_settings: Settings, own_pubsub: Any, publisher: Any, spawn_consumer: Any) -> None:
    tenant = uuid.uuid4()
    before, after = event_stream(400, tenant, seed=1), event_stream(400, tenant, seed=2)
    consumer = spawn_consumer()
    publish_events(publisher, stream_settings.project, before)
    wait_for(lambda: tenant_total(stream_settings, tenant).events == 400, 60, "first half")

    own_pubsub.stop()  # the emulator keeps everything in memory: topics and subscriptions go
    time.sleep(2)
    own_pubsub.start()
    own_pubsub.apply(drop_retry_policy=True)
    publish_events(publisher, stream_settings.project, after)

    wait_for(lambda: tenant_total(stream_settings, tenant).events == 800, 90,
             "events published after the restart")
    assert consumer.poll() is None, "the consumer must survive the outage"
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0
    assert tenant_total(stream_settings, tenant).events == 800
