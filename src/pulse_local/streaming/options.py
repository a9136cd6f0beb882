"""Knobs of the streaming consumer (environment ``PULSE_STREAMING_<FIELD>``) and the
dead-letter policy read from the declared subscription (``emulators/pubsub/resources.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pulse_local.errors import ConfigError
from pulse_local.events import RESPONSE_EVENTS_TOPIC

#: The declared subscription the Bigtable consumer pulls from.
DEFAULT_SUBSCRIPTION = "response-events-bigtable"
#: The declared BigQuery subscription the local warehouse sink stands in for.
BIGQUERY_SUBSCRIPTION = "response-events-bigquery"


class StreamingOptions(BaseSettings):
    """Consumer settings. Flow control: at most ``streams * max_messages`` messages (and
    ``streams * max_bytes`` bytes) are held unacknowledged by one process."""

    model_config = SettingsConfigDict(env_prefix="PULSE_STREAMING_", env_file=".env",
                                      extra="ignore")

    subscription: str = Field(DEFAULT_SUBSCRIPTION, description="Subscription to pull from.")
    policy_subscription: str | None = Field(
        None, description="Declared subscription whose dead_letter_policy applies "
                          "(default: `subscription`).")
    intake: Literal["pull", "streaming"] = Field(
        "pull", description="Unary Pull with our own leases (default: the emulator leaks the "
                            "streaming pulls of a killed consumer, see intake.py), or the "
                            "client library's streaming pull.")
    streams: int = Field(4, ge=1, le=16, description="Parallel pull threads (or streaming pulls).")
    lease_seconds: int = Field(
        10, ge=10, le=600,
        description="Pull intake: ack deadline of held messages, extended while they are held; "
                    "a crashed consumer's messages are redelivered this long after it died.")
    max_messages: int = Field(1000, ge=1, description="Flow control: messages per stream.")
    max_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Flow control: bytes per stream.")
    max_lease_extension: int = Field(
        10, ge=10, le=600,
        description="Longest single lease extension (s): bounds how long the messages of a "
                    "crashed consumer wait before redelivery.")
    batch_size: int = Field(500, ge=1, le=5000, description="Messages written per batch.")
    batch_wait_ms: int = Field(25, ge=0, description="Wait this long to fill a batch.")
    workers: int = Field(2, ge=1, le=16, description="Threads writing batches.")
    processes: int = Field(
        2, ge=1, le=16,
        description="Consumer processes of the service (`consume` without --max-messages or "
                    "--idle-timeout): the interpreter lock holds one process to about a core. "
                    "Measured on 2 cores: 2 processes ~5,000 events/s, 1 ~4,000.")
    fold_after: float = Field(
        6.0, ge=2.0,
        description="Seconds an event must have been seen done before its pending aggregate "
                    "entries are folded into the counters; a batch's pending write is issued "
                    "within half of it after the dedup read and lands within three quarters.")
    fold_seconds: float = Field(
        2.0, gt=0,
        description="How often the consumer folds the rows it wrote. Readers add pending "
                    "entries, so this bounds how wide hot rows grow, not what they show.")
    heartbeat_seconds: float = Field(2.0, gt=0, description="Readiness file refresh period.")
    sweep_seconds: float = Field(
        60.0, ge=0,
        description="Fold every aggregate row with pending entries (what crashed consumers "
                    "left) this often, the first time 2 x fold_after after start; 0 disables.")
    max_failed_attempts: int = Field(
        5, ge=1, le=99,
        description="Failed processings of one message (our own count, kept in Bigtable) "
                    "before the consumer dead-letters it with the reason. Must stay below the "
                    "subscription's max_delivery_attempts, which also counts deliveries a "
                    "killed consumer never settled.")
    sink: bool = Field(True, description="Also land every message in the raw warehouse.")


@dataclass(frozen=True)
class DeadLetterConfig:
    """Where failing messages go: the consumer's own threshold (``max_failed_attempts``
    processing failures) and the subscription's (``max_delivery_attempts`` deliveries without
    an ack, lease expiries of killed consumers included), which must be the higher one."""

    topic: str
    dead_letter_topic: str
    max_delivery_attempts: int
    max_failed_attempts: int

    def check(self, subscription: str, where: str = "emulators/pubsub/resources.yaml") -> None:
        """Raise `ConfigError` unless the consumer dead-letters before the service does."""
        if self.max_failed_attempts >= self.max_delivery_attempts:
            raise ConfigError(
                f"PULSE_STREAMING_MAX_FAILED_ATTEMPTS={self.max_failed_attempts} is not below "
                f"max_delivery_attempts={self.max_delivery_attempts} of subscription "
                f"{subscription!r} ({where}): Pub/Sub would dead-letter failing messages "
                "without a reason first. Lower the former or raise the latter")


def dead_letter_config(subscription: str, pubsub_file: Path | None = None, *,
                       max_failed_attempts: int | None = None) -> DeadLetterConfig:
    """The topic and dead-letter policy declared for ``subscription``, with the consumer's own
    threshold (default: ``PULSE_STREAMING_MAX_FAILED_ATTEMPTS`` or its default).

    Raises `ConfigError` when the subscription is not declared, has no dead_letter_policy, or
    its ``max_delivery_attempts`` is not above ``max_failed_attempts``.
    """
    from pulse_local.resources import load_pubsub

    declarations = load_pubsub(pubsub_file)
    for sub in declarations.subscriptions:
        if sub.name == subscription:
            if sub.dead_letter_policy is None:
                raise ConfigError(
                    f"subscription {subscription!r} declares no dead_letter_policy in "
                    "emulators/pubsub/resources.yaml: add one (dead_letter_topic, "
                    "max_delivery_attempts) so poison messages have somewhere to go")
            if max_failed_attempts is None:
                from pulse_local.config import load_options

                max_failed_attempts = load_options(StreamingOptions).max_failed_attempts
            config = DeadLetterConfig(
                topic=sub.topic,
                dead_letter_topic=sub.dead_letter_policy.dead_letter_topic,
                max_delivery_attempts=sub.dead_letter_policy.max_delivery_attempts,
                max_failed_attempts=max_failed_attempts,
            )
            config.check(subscription, str(pubsub_file or "emulators/pubsub/resources.yaml"))
            return config
    names = ", ".join(s.name for s in declarations.subscriptions)
    raise ConfigError(
        f"subscription {subscription!r} is not declared in emulators/pubsub/resources.yaml "
        f"(declared: {names}): set PULSE_STREAMING_POLICY_SUBSCRIPTION to a declared one")


def declared_ack_deadline(subscription: str, pubsub_file: Path | None = None) -> int | None:
    """The ``ack_deadline_seconds`` declared for ``subscription`` (None if not declared)."""
    from pulse_local.resources import load_pubsub

    for sub in load_pubsub(pubsub_file).subscriptions:
        if sub.name == subscription:
            return sub.ack_deadline_seconds
    return None


__all__ = ["BIGQUERY_SUBSCRIPTION", "DEFAULT_SUBSCRIPTION", "RESPONSE_EVENTS_TOPIC",
           "DeadLetterConfig", "StreamingOptions", "dead_letter_config",
           "declared_ack_deadline"]
