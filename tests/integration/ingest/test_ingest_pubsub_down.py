"""Pub/Sub unavailable: 503 naming the cause, the response stored; the sender's retries, once
Pub/Sub is back, publish every stored revision's event exactly as it was built.

The real processor over HTTP and the real Postgres. "Pub/Sub down" is a processor whose
``PUBSUB_EMULATOR_HOST`` names a closed port; the retries go to the session's processor, on
the real emulator, where a subscription created for the test receives the events.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pulse_local.events import ResponseEvent, response_event_id
from pulse_local.ingest.signature import webhook_headers
from pulse_local.ingest.testing import processor_process
from pulse_local.stack.process import free_port

pytestmark = pytest.mark.integration


def _pull_events(subscriber: Any, subscription: str, wanted: set[str],
                 seconds: float = 60) -> dict[str, ResponseEvent]:
    """The wanted events by id, pulled (and acked) from `subscription`; other tests publish to
    the same topic, so whatever else arrives is acked and dropped."""
    found: dict[str, ResponseEvent] = {}
    deadline = time.monotonic() + seconds
    while not wanted <= found.keys() and time.monotonic() < deadline:
        pulled = subscriber.pull(subscription=subscription, max_messages=1000, timeout=10)
        for m in pulled.received_messages:
            if (event_id := m.message.attributes.get("event_id")) in wanted:
                found[event_id] = ResponseEvent.from_message(m.message.data)
        if pulled.received_messages:
            subscriber.acknowledge(subscription=subscription,
                                   ack_ids=[m.ack_id for m in pulled.received_messages])
    return found


def test_superseded_revision_whose_publish_failed_is_published_on_retry(
        source_fixtures: Path, processor: str, pulse_settings: Any, make_webhook: Any,
        tenants: Any, pg_admin: Any, pubsub_subscriber: Any, tmp_path: Path) -> None:
    topic = f"projects/{pulse_settings.project}/topics/response-events"
    sub = f"projects/{pulse_settings.project}/subscriptions/test-{uuid.uuid4().hex[:8]}"
    pubsub_subscriber.create_subscription(name=sub, topic=topic)
    secret = tenants["tenant-0001"]["webhook_secret"]
    token = uuid.uuid4().hex
    bodies = [json.dumps(make_webhook(token=token, value=value, submitted_at=at)).encode()
              for value, at in ((1, "2024-09-05T10:00:00Z"), (4, "2024-09-05T11:00:00Z"))]
    down = {"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
            "PULSE_PROCESSOR_PUBLISH_TIMEOUT": "1"}
    with processor_process(down, free_port(), tmp_path / "p.log", expect_health=503) as url:
        health = httpx.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["error"] == "pubsub_unavailable"
        failed = [httpx.post(f"{url}/webhooks/typeform/tenant-0001", content=body,
                             headers=webhook_headers(secret, body), timeout=30)
                  for body in bodies]
    for answer in failed:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "publish_failed"
        assert "failed (" in answer.json()["detail"]  # the cause, never empty
        assert "failed ()" not in answer.json()["detail"]
    assert "publishing" in (tmp_path / "p.log").read_text()
    response_id, revision = pg_admin.execute(
        "select id, revision from responses where typeform_token = %s", (token,)).fetchone()
    assert revision == 2  # both revisions were stored, neither event published

    # Pub/Sub is back: the sender retries both deliveries, and a late body never stored
    retried = [httpx.post(f"{processor}/webhooks/typeform/tenant-0001", content=body,
                          headers=webhook_headers(secret, body), timeout=30) for body in bodies]
    never = json.dumps(make_webhook(token=token, value=2,
                                    submitted_at="2024-09-05T09:00:00Z")).encode()
    late = httpx.post(f"{processor}/webhooks/typeform/tenant-0001", content=never,
                      headers=webhook_headers(secret, never), timeout=30)
    assert [r.status_code for r in retried] == [200, 200], [r.text for r in retried]
    first, second = (r.json() for r in retried)
    assert (first["outcome"], first["revision"]) == ("stale", 1)
    assert (second["outcome"], second["revision"]) == ("duplicate", 2)
    wanted = {str(response_event_id(response_id, n)) for n in (1, 2)}
    assert {first["event_id"], second["event_id"]} == wanted
    assert late.status_code == 200 and late.json()["outcome"] == "stale"
    assert late.json()["event_id"] is None  # never stored: nothing to publish

    events = _pull_events(pubsub_subscriber, sub, wanted)
    pubsub_subscriber.delete_subscription(subscription=sub)
    assert events.keys() == wanted
    by_revision = {e.revision: e for e in events.values()}
    for n, body in ((1, bodies[0]), (2, bodies[1])):
        sent = json.loads(body)["form_response"]
        assert by_revision[n].submitted_at.isoformat().startswith(sent["submitted_at"][:19])
        assert by_revision[n].response_id == response_id
