"""Count the dead-letter backlog without consuming it.

Neither the emulator nor the Pub/Sub API has a "count messages" call (GCP's count is the Cloud
Monitoring metric ``subscription/num_undelivered_messages``, absent from the emulator). The
monitor therefore *peeks*: it pulls from the dead-letter subscription until a pull comes back
empty or waits `pull_timeout` for nothing (or `max_count` messages were seen), never acks, and at the end sets the ack deadline of
everything it pulled to 0, which hands the messages straight back to the subscription. Nothing is
consumed; the messages' delivery counts go up by one (the dead-letter subscription has no
dead-letter policy of its own, so that changes nothing).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pulse_local.config import Profile
from pulse_local.errors import ConfigError, ServiceUnavailable


@dataclass(frozen=True)
class DeadLetterPeek:
    """What the dead-letter subscription holds right now."""

    subscription: str
    count: int
    #: True when `max_count` was reached: there may be more.
    capped: bool = False
    oldest: datetime | None = None
    #: Messages by their ``reason`` attribute (set by the consumer when it dead-letters).
    reasons: dict[str, int] = field(default_factory=dict)


class DeadLetterReader(Protocol):
    """Capability: look at a dead-letter subscription without consuming it."""

    def peek(self, subscription: str, max_count: int, timeout: float) -> DeadLetterPeek: ...


def default_dead_letter_subscription(profile: Profile, pubsub_file: Path | None = None) -> str:
    """The subscription reading the dead-letter topic of the streaming consumer's subscription,
    among those ``emulators/pubsub/resources.yaml`` declares for `profile` (e.g.
    ``response-events-dlq-monitor``)."""
    from pulse_local.resources import load_pubsub
    from pulse_local.streaming.options import DEFAULT_SUBSCRIPTION, dead_letter_config

    topic = dead_letter_config(DEFAULT_SUBSCRIPTION, pubsub_file).dead_letter_topic
    declared = load_pubsub(pubsub_file).for_profile(profile)
    readers = [s.name for s in declared.subscriptions if s.topic == topic]
    if not readers:
        raise ConfigError(
            f"no subscription reads the dead-letter topic {topic!r} in "
            "emulators/pubsub/resources.yaml: declare one (e.g. response-events-dlq-monitor) so "
            "dead letters are kept and can be counted")
    return readers[0]


class PubSubDeadLetters:
    """`DeadLetterReader` through the official client (the emulator or GCP, by endpoint)."""

    def __init__(self, project: str, emulator_host: str | None) -> None:
        self.project = project
        self.emulator_host = emulator_host

    def peek(self, subscription: str, max_count: int, timeout: float) -> DeadLetterPeek:
        from google.api_core import exceptions as gexc

        from pulse_local.resources import close_pubsub_clients, pubsub_clients

        publisher, subscriber = pubsub_clients(self.emulator_host)
        path = subscriber.subscription_path(self.project, subscription)
        ack_ids: list[str] = []
        seen: set[str] = set()
        reasons: Counter[str] = Counter()
        oldest: datetime | None = None
        try:
            while len(seen) < max_count:
                try:
                    # return_immediately is deprecated (and may answer empty while messages
                    # wait): wait up to `timeout` instead; an empty backlog ends by deadline.
                    response = subscriber.pull(
                        request={"subscription": path,
                                 "max_messages": min(1000, max_count - len(seen))},
                        timeout=timeout, retry=None)
                except gexc.DeadlineExceeded:
                    break
                except gexc.NotFound:
                    raise ConfigError(
                        f"dead-letter subscription {path} does not exist: apply the declared "
                        "resources (`pulse-local up` locally, `pulse-local provision` on gcp)"
                    ) from None
                except gexc.GoogleAPICallError as exc:
                    raise ServiceUnavailable(
                        f"cannot read {path}: {exc.message or exc}") from None
                if not response.received_messages:
                    break
                for received in response.received_messages:
                    ack_ids.append(received.ack_id)
                    message = received.message
                    if message.message_id in seen:
                        continue
                    seen.add(message.message_id)
                    reasons[message.attributes.get("reason", "unknown")] += 1
                    published = _aware(message.publish_time)
                    if published is not None and (oldest is None or published < oldest):
                        oldest = published
        finally:
            try:
                for start in range(0, len(ack_ids), 1000):
                    subscriber.modify_ack_deadline(request={
                        "subscription": path, "ack_ids": ack_ids[start:start + 1000],
                        "ack_deadline_seconds": 0})
            finally:
                close_pubsub_clients(publisher, subscriber)
        return DeadLetterPeek(subscription, len(seen), capped=len(seen) >= max_count,
                              oldest=oldest, reasons=dict(reasons))


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None
