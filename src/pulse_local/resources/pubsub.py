"""Apply the Pub/Sub declarations: create what is missing, fix drifted settings, report.

The functions take ready clients, so the same code runs against the emulator and GCP: the
endpoint is chosen when the clients are built (`pulse_local.resources.clients`), never here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pulse_local.config import Profile
from pulse_local.resources._google import API_TIMEOUT, explained, get_or_none, is_already_exists
from pulse_local.resources.models import (
    PubSubDeclarations,
    SubscriptionSpec,
    TopicSpec,
    format_duration,
)
from pulse_local.resources.report import ApplyReport

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
    from google.pubsub_v1 import Subscription, Topic

#: Subscription fields UpdateSubscription can change in place.
MUTABLE_SUBSCRIPTION_FIELDS = (
    "ack_deadline_seconds",
    "message_retention_duration",
    "retain_acked_messages",
    "expiration_policy",
    "retry_policy",
    "dead_letter_policy",
    "bigquery_config",
)
#: Subscription fields fixed at creation: a difference is reported as drift.
IMMUTABLE_SUBSCRIPTION_FIELDS = ("topic", "enable_message_ordering")


def topic_path(project: str, name: str) -> str:
    """``projects/<project>/topics/<name>``."""
    return f"projects/{project}/topics/{name}"


def subscription_path(project: str, name: str) -> str:
    """``projects/<project>/subscriptions/<name>``."""
    return f"projects/{project}/subscriptions/{name}"


# Declarations -> API messages --------------------------------------------------------------------


def topic_message(spec: TopicSpec, project: str) -> Topic:
    """The `Topic` message declared by ``spec``."""
    from google.pubsub_v1 import Topic

    topic = Topic(name=topic_path(project, spec.name))
    if spec.message_retention is not None:
        topic.message_retention_duration = spec.message_retention
    return topic


def subscription_message(spec: SubscriptionSpec, project: str) -> Subscription:
    """The `Subscription` message declared by ``spec`` (every managed field set explicitly)."""
    from google.pubsub_v1 import (
        BigQueryConfig,
        DeadLetterPolicy,
        ExpirationPolicy,
        RetryPolicy,
        Subscription,
    )

    sub = Subscription(
        name=subscription_path(project, spec.name),
        topic=topic_path(project, spec.topic),
        ack_deadline_seconds=spec.ack_deadline_seconds,
        message_retention_duration=spec.message_retention,
        retain_acked_messages=spec.retain_acked_messages,
        enable_message_ordering=spec.enable_message_ordering,
        # An ExpirationPolicy without ttl means "never expires"; omitting it means 31 days.
        expiration_policy=(
            ExpirationPolicy(ttl=spec.expiration_ttl) if spec.expiration_ttl else ExpirationPolicy()
        ),
    )
    if spec.retry_policy:
        sub.retry_policy = RetryPolicy(
            minimum_backoff=spec.retry_policy.minimum_backoff,
            maximum_backoff=spec.retry_policy.maximum_backoff,
        )
    if spec.dead_letter_policy:
        sub.dead_letter_policy = DeadLetterPolicy(
            dead_letter_topic=topic_path(project, spec.dead_letter_policy.dead_letter_topic),
            max_delivery_attempts=spec.dead_letter_policy.max_delivery_attempts,
        )
    if spec.bigquery_config:
        sub.bigquery_config = BigQueryConfig(
            table=spec.bigquery_config.table_in(project),
            write_metadata=spec.bigquery_config.write_metadata,
        )
    return sub


# Drift detection --------------------------------------------------------------------------------


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def subscription_view(sub: Subscription) -> dict[str, Any]:
    """The managed settings of ``sub`` as plain values, comparable between declared and actual.

    Output-only fields the server adds (a BigQuery subscription's state, ...) are left out, so
    they never show up as drift.
    """
    ttl = _seconds(sub.expiration_policy.ttl) if "expiration_policy" in sub else 0.0
    return {
        "topic": sub.topic,
        "enable_message_ordering": sub.enable_message_ordering,
        "ack_deadline_seconds": sub.ack_deadline_seconds,
        "message_retention_duration": _seconds(sub.message_retention_duration),
        "retain_acked_messages": sub.retain_acked_messages,
        "expiration_policy": ttl or None,
        "retry_policy": (
            (_seconds(sub.retry_policy.minimum_backoff), _seconds(sub.retry_policy.maximum_backoff))
            if "retry_policy" in sub
            else None
        ),
        "dead_letter_policy": (
            (sub.dead_letter_policy.dead_letter_topic, sub.dead_letter_policy.max_delivery_attempts)
            if "dead_letter_policy" in sub and sub.dead_letter_policy.dead_letter_topic
            else None
        ),
        "bigquery_config": (
            (sub.bigquery_config.table, sub.bigquery_config.write_metadata)
            if "bigquery_config" in sub and sub.bigquery_config.table
            else None
        ),
    }


def diff_fields(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Keys whose values differ, in ``desired``'s order."""
    return [key for key, value in desired.items() if actual.get(key) != value]


# Apply ----------------------------------------------------------------------------------------


def ensure_topic(
    publisher: PublisherClient, spec: TopicSpec, project: str, report: ApplyReport
) -> None:
    """Create the topic when missing; update its retention when it drifted."""
    desired = topic_message(spec, project)
    with explained(f"reading topic {desired.name}"):
        actual = get_or_none(
            lambda: publisher.get_topic(request={"topic": desired.name}, timeout=API_TIMEOUT)
        )
    if actual is None:
        with explained(f"creating topic {desired.name}"):
            try:
                publisher.create_topic(request=desired, timeout=API_TIMEOUT)
            except Exception as exc:
                if not is_already_exists(exc):
                    raise
                report.add("topic", spec.name, "exists", "created concurrently by someone else")
                return
        report.add("topic", spec.name, "created")
        return
    if spec.message_retention is not None and (
        actual.message_retention_duration != spec.message_retention
    ):
        with explained(f"updating topic {desired.name}"):
            publisher.update_topic(
                request={
                    "topic": desired,
                    "update_mask": {"paths": ["message_retention_duration"]},
                },
                timeout=API_TIMEOUT,
            )
        report.add("topic", spec.name, "updated", "message_retention_duration")
        return
    report.add("topic", spec.name, "exists")


def ensure_subscription(
    subscriber: SubscriberClient, spec: SubscriptionSpec, project: str, report: ApplyReport
) -> None:
    """Create the subscription when missing, update drifted mutable settings, report the rest."""
    desired = subscription_message(spec, project)
    with explained(f"reading subscription {desired.name}"):
        actual = get_or_none(
            lambda: subscriber.get_subscription(
                request={"subscription": desired.name}, timeout=API_TIMEOUT
            )
        )
    if actual is None:
        with explained(f"creating subscription {desired.name}"):
            try:
                subscriber.create_subscription(request=desired, timeout=API_TIMEOUT)
            except Exception as exc:
                if not is_already_exists(exc):
                    raise
                report.add("subscription", spec.name, "exists", "created concurrently")
                return
        report.add("subscription", spec.name, "created")
        return

    changed = diff_fields(subscription_view(desired), subscription_view(actual))
    mutable = [f for f in changed if f in MUTABLE_SUBSCRIPTION_FIELDS]
    fixed = [f for f in changed if f in IMMUTABLE_SUBSCRIPTION_FIELDS]
    if mutable:
        with explained(f"updating subscription {desired.name} ({', '.join(mutable)})"):
            subscriber.update_subscription(
                request={"subscription": desired, "update_mask": {"paths": mutable}},
                timeout=API_TIMEOUT,
            )
    if fixed:
        detail = (
            f"{', '.join(fixed)} cannot change in place: delete the subscription "
            f"(gcloud pubsub subscriptions delete {spec.name}) and apply again"
        )
        if mutable:
            detail = f"updated {', '.join(mutable)}; {detail}"
        report.add("subscription", spec.name, "drift", detail)
    elif mutable:
        report.add("subscription", spec.name, "updated", ", ".join(mutable))
    else:
        report.add("subscription", spec.name, "exists")


def apply_pubsub(
    declarations: PubSubDeclarations,
    publisher: PublisherClient,
    subscriber: SubscriberClient,
    project: str,
    profile: Profile,
) -> ApplyReport:
    """Apply the declarations selected by ``profile`` to ``project``; idempotent.

    Topics come first (subscriptions and dead-letter policies refer to them). Raises
    `ResourceApplyError` when an API call fails.
    """
    report = ApplyReport("pubsub", f"projects/{project}", skipped=declarations.excluded_by(profile))
    selected = declarations.for_profile(profile)
    for topic in selected.topics:
        ensure_topic(publisher, topic, project, report)
    for subscription in selected.subscriptions:
        ensure_subscription(subscriber, subscription, project, report)
    return report


def describe_subscription(spec: SubscriptionSpec, project: str) -> str:
    """The declared settings of ``spec`` in one line (no API types involved)."""
    parts = [
        f"topic={spec.topic}",
        f"ack_deadline={spec.ack_deadline_seconds}s",
        f"retention={format_duration(spec.message_retention)}",
        f"expiration={format_duration(spec.expiration_ttl) if spec.expiration_ttl else 'never'}",
        f"ordering={'on' if spec.enable_message_ordering else 'off'}",
    ]
    if spec.retain_acked_messages:
        parts.append("retain_acked")
    if spec.retry_policy:
        parts.append(
            f"retry={format_duration(spec.retry_policy.minimum_backoff)}"
            f"..{format_duration(spec.retry_policy.maximum_backoff)}"
        )
    if spec.dead_letter_policy:
        parts.append(
            f"dead_letter={spec.dead_letter_policy.dead_letter_topic}"
            f" after {spec.dead_letter_policy.max_delivery_attempts} attempts"
        )
    if spec.bigquery_config:
        parts.append(
            f"bigquery={spec.bigquery_config.table_in(project)}"
            f" write_metadata={spec.bigquery_config.write_metadata}"
        )
    return ", ".join(parts)


def plan_pubsub(declarations: PubSubDeclarations, project: str, profile: Profile) -> ApplyReport:
    """What `apply_pubsub` would ensure, without calling any API (dry run)."""
    report = ApplyReport("pubsub", f"projects/{project}", skipped=declarations.excluded_by(profile))
    selected = declarations.for_profile(profile)
    for topic in selected.topics:
        retention = (
            f", retention={format_duration(topic.message_retention)}"
            if topic.message_retention
            else ""
        )
        report.add(
            "topic", topic.name, "planned", f"ensure {topic_path(project, topic.name)}{retention}"
        )
    for sub in selected.subscriptions:
        report.add("subscription", sub.name, "planned", describe_subscription(sub, project))
    return report
