"""apply_pubsub against the real Pub/Sub emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any  # the `emulators` fixture of conftest.py: .pubsub_host, .bigtable_host

import pytest
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from pulse_local.resources import (
    apply_pubsub,
    close_pubsub_clients,
    load_pubsub,
    pubsub_clients,
    pubsub_ready,
)
from pulse_local.resources.pubsub import subscription_path, topic_path

pytestmark = pytest.mark.integration

Clients = tuple[PublisherClient, SubscriberClient]


@pytest.fixture
def clients(emulators: Any) -> Iterator[Clients]:
    publisher, subscriber = pubsub_clients(emulators.pubsub_host)
    yield publisher, subscriber
    close_pubsub_clients(publisher, subscriber)


def test_apply_twice_creates_then_exists(clients: Clients, project: str) -> None:
    decl = load_pubsub()
    first = apply_pubsub(decl, *clients, project, "local")
    assert first.names("created", "topic") == ["response-events", "response-events-dlq"]
    assert first.names("created", "subscription") == [
        "response-events-bigtable",
        "response-events-dlq-monitor",
    ]
    assert first.skipped == ["subscription:response-events-bigquery"]

    second = apply_pubsub(decl, *clients, project, "local")
    assert {r.action for r in second.results} == {"exists"}
    assert len(second.results) == len(first.results)
    assert not second.changed


def test_declared_settings_are_on_the_emulator(clients: Clients, project: str) -> None:
    publisher, subscriber = clients
    apply_pubsub(load_pubsub(), publisher, subscriber, project, "local")

    topics = {t.name for t in publisher.list_topics(request={"project": f"projects/{project}"})}
    assert topics == {
        topic_path(project, "response-events"),
        topic_path(project, "response-events-dlq"),
    }
    topic = publisher.get_topic(request={"topic": topic_path(project, "response-events")})
    assert topic.message_retention_duration == timedelta(days=7)

    sub = subscriber.get_subscription(
        request={"subscription": subscription_path(project, "response-events-bigtable")}
    )
    assert sub.topic == topic_path(project, "response-events")
    assert sub.ack_deadline_seconds == 10
    assert sub.dead_letter_policy.dead_letter_topic == topic_path(project, "response-events-dlq")
    assert sub.dead_letter_policy.max_delivery_attempts == 20
    assert sub.retry_policy.minimum_backoff == timedelta(seconds=10)
    assert sub.retry_policy.maximum_backoff == timedelta(seconds=600)
    assert sub.enable_message_ordering is False
    assert sub.message_retention_duration == timedelta(days=7)


def test_gcp_profile_adds_the_bigquery_subscription(clients: Clients, project: str) -> None:
    """Same code, other profile: only the YAML `profiles:` filter differs."""
    report = apply_pubsub(load_pubsub(), *clients, project, "gcp")
    assert "response-events-bigquery" in report.names("created", "subscription")
    assert report.skipped == []
    sub = clients[1].get_subscription(
        request={"subscription": subscription_path(project, "response-events-bigquery")}
    )
    assert sub.bigquery_config.table == f"{project}.raw.pubsub_response_events"
    assert sub.bigquery_config.write_metadata is True


def test_drifted_settings_are_updated(clients: Clients, project: str) -> None:
    decl = load_pubsub()
    apply_pubsub(decl, *clients, project, "local")

    consumer = decl.subscriptions[0]
    assert consumer.dead_letter_policy is not None
    drifted = consumer.model_copy(
        update={
            "ack_deadline_seconds": 30,
            "dead_letter_policy": consumer.dead_letter_policy.model_copy(
                update={"max_delivery_attempts": 7}
            ),
        }
    )
    changed = decl.model_copy(update={"subscriptions": [drifted, *decl.subscriptions[1:]]})
    report = apply_pubsub(changed, *clients, project, "local")
    assert report.names("updated") == ["response-events-bigtable"]
    detail = next(r.detail for r in report.results if r.action == "updated")
    assert detail == "ack_deadline_seconds, dead_letter_policy"

    sub = clients[1].get_subscription(
        request={"subscription": subscription_path(project, drifted.name)}
    )
    assert sub.ack_deadline_seconds == 30
    assert sub.dead_letter_policy.max_delivery_attempts == 7
    # Applying the original file puts the declared values back.
    assert apply_pubsub(decl, *clients, project, "local").names("updated") == [drifted.name]
    assert not apply_pubsub(decl, *clients, project, "local").changed


def test_immutable_drift_is_reported(clients: Clients, project: str) -> None:
    decl = load_pubsub()
    apply_pubsub(decl, *clients, project, "local")
    ordered = decl.subscriptions[0].model_copy(update={"enable_message_ordering": True})
    changed = decl.model_copy(update={"subscriptions": [ordered, *decl.subscriptions[1:]]})
    report = apply_pubsub(changed, *clients, project, "local")
    [drift] = report.drifted
    assert drift.name == "response-events-bigtable"
    assert "enable_message_ordering cannot change in place" in drift.detail
    assert "gcloud pubsub subscriptions delete response-events-bigtable" in drift.detail


def test_publish_and_pull_through_the_declared_resources(clients: Clients, project: str) -> None:
    publisher, subscriber = clients
    apply_pubsub(load_pubsub(), publisher, subscriber, project, "local")

    future = publisher.publish(
        topic_path(project, "response-events"), b'{"event_id": "e-1"}', event_id="e-1"
    )
    message_id = future.result(timeout=10)
    path = subscription_path(project, "response-events-bigtable")
    received = []
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": path, "max_messages": 10}, timeout=5)
        received = list(response.received_messages)
    assert [m.message.message_id for m in received] == [message_id]
    assert received[0].message.data == b'{"event_id": "e-1"}'
    assert received[0].message.attributes["event_id"] == "e-1"
    subscriber.acknowledge(request={"subscription": path, "ack_ids": [received[0].ack_id]})

    # The DLQ monitor sees nothing: the consumer's subscription is separate.
    dlq = subscriber.pull(
        request={
            "subscription": subscription_path(project, "response-events-dlq-monitor"),
            "max_messages": 1,
        },
        timeout=5,
    )
    assert list(dlq.received_messages) == []


def test_probe_answers_and_fails_fast(emulators: Any) -> None:
    from pulse_local.errors import ServiceUnavailable

    pubsub_ready(emulators.pubsub_host, "probe-project")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="does not answer ListTopics"):
        pubsub_ready("127.0.0.1:1", "probe-project", timeout=0.5)
    assert time.monotonic() - started < 5
