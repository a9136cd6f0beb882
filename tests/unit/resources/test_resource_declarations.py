"""The shipped resource files: they load, and say what the pipeline needs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pulse_local.resources import load_bigtable, load_pubsub
from pulse_local.resources.models import format_duration, parse_duration


def test_pubsub_file_declares_the_topics_and_subscriptions() -> None:
    decl = load_pubsub()
    assert {t.name for t in decl.topics} == {"response-events", "response-events-dlq"}
    subs = {s.name: s for s in decl.subscriptions}
    assert set(subs) == {
        "response-events-bigtable",
        "response-events-dlq-monitor",
        "response-events-bigquery",
    }
    consumer = subs["response-events-bigtable"]
    assert consumer.topic == "response-events"
    assert consumer.dead_letter_policy is not None
    assert consumer.dead_letter_policy.dead_letter_topic == "response-events-dlq"
    assert consumer.dead_letter_policy.max_delivery_attempts == 20
    assert consumer.enable_message_ordering is False
    assert consumer.retry_policy is not None
    assert consumer.retry_policy.minimum_backoff < consumer.retry_policy.maximum_backoff
    assert consumer.expiration_ttl is None  # never expires
    assert subs["response-events-dlq-monitor"].topic == "response-events-dlq"


def test_bigquery_subscription_is_gcp_only() -> None:
    bigquery = next(s for s in load_pubsub().subscriptions if s.name == "response-events-bigquery")
    assert bigquery.profiles == ["gcp"]
    assert bigquery.bigquery_config is not None
    assert bigquery.bigquery_config.table == "raw.pubsub_response_events"
    assert bigquery.bigquery_config.write_metadata is True
    assert bigquery.bigquery_config.table_in("my-proj") == "my-proj.raw.pubsub_response_events"


@pytest.mark.parametrize(
    ("profile", "present", "absent"),
    [
        (
            "local",
            {"response-events-bigtable", "response-events-dlq-monitor"},
            {"response-events-bigquery"},
        ),
        ("gcp", {"response-events-bigtable", "response-events-bigquery"}, set()),
    ],
)
def test_profile_filter(profile: str, present: set[str], absent: set[str]) -> None:
    decl = load_pubsub()
    selected = {s.name for s in decl.for_profile(profile).subscriptions}  # type: ignore[arg-type]
    assert present <= selected
    assert not absent & selected
    assert decl.excluded_by(profile) == [f"subscription:{n}" for n in sorted(absent)]  # type: ignore[arg-type]
    assert len(decl.for_profile(profile).topics) == 2  # type: ignore[arg-type]


def test_bigtable_file_declares_tables_and_gc_rules() -> None:
    tables = {t.name: t for t in load_bigtable().tables}
    assert set(tables) == {"events_fact", "events_aggregate", "events_dedup"}
    fact = tables["events_fact"].column_families
    assert set(fact) == {"event", "meta", "quality"}
    assert all(rule.max_versions == 1 and rule.max_age is None for rule in fact.values())
    assert tables["events_aggregate"].column_families["counts"].max_versions == 1
    assert tables["events_aggregate"].column_families["pending"].max_versions == 1
    seen = tables["events_dedup"].column_families["seen"]
    assert seen.max_age == timedelta(days=7)
    assert seen.max_versions is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("12h", 43200), ("7d", 604800), (" 0s ", 0)],
)
def test_duration_roundtrip(text: str, seconds: int) -> None:
    value = parse_duration(text)
    assert value == timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("bad", [600, "600", "1w", "1.5h", "-1s", None, ""])
def test_duration_refuses_ambiguous_values(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(bad)
