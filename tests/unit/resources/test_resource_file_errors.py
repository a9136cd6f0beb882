"""Bad resource files fail with `ResourceFileError` naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse_local.errors import ConfigError
from pulse_local.resources import ResourceFileError, load_bigtable, load_pubsub

GOOD_TOPICS = """\
topics:
  - name: response-events
  - name: response-events-dlq
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "resources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _pubsub_error(tmp_path: Path, text: str) -> ResourceFileError:
    with pytest.raises(ResourceFileError) as info:
        load_pubsub(_write(tmp_path, text))
    return info.value


def _bigtable_error(tmp_path: Path, text: str) -> ResourceFileError:
    with pytest.raises(ResourceFileError) as info:
        load_bigtable(_write(tmp_path, text))
    return info.value


@pytest.mark.parametrize(
    ("subscription", "field", "words"),
    [
        ("ack_deadline_seconds: 601", "subscriptions[0].ack_deadline_seconds", "600"),
        ("ack_deadline_seconds: '60'", "subscriptions[0].ack_deadline_seconds", "integer"),
        ("message_retention: 7", "subscriptions[0].message_retention", "duration"),
        ("message_retention: 8d", "subscriptions[0].message_retention", "between 10m and 7d"),
        ("expiration_ttl: forever", "subscriptions[0].expiration_ttl", "'never'"),
        ("ack_deadline: 60", "subscriptions[0].ack_deadline", "Extra inputs"),
        ("enable_message_ordering: 'yes'", "subscriptions[0].enable_message_ordering", "boolean"),
        ("profiles: [staging]", "subscriptions[0].profiles[0]", "'local' or 'gcp'"),
        ("profiles: [gcp, gcp]", "subscriptions[0].profiles", "once each"),
        ("profiles: []", "subscriptions[0].profiles", "once each"),
        (
            "dead_letter_policy: {dead_letter_topic: response-events, max_delivery_attempts: 5}",
            "subscriptions[0].dead_letter_policy.dead_letter_topic",
            "must differ",
        ),
        ("expiration_ttl: 12h", "subscriptions[0].expiration_ttl", "at least 1d"),
        (
            "retry_policy: {minimum_backoff: 10m, maximum_backoff: 10s}",
            "subscriptions[0].retry_policy.minimum_backoff",
            "minimum_backoff must not exceed",
        ),
        (
            "dead_letter_policy: {dead_letter_topic: response-events-dlq, max_delivery_attempts: 3}",
            "subscriptions[0].dead_letter_policy.max_delivery_attempts",
            "greater than or equal to 5",
        ),
        (
            "dead_letter_policy: {dead_letter_topic: nowhere, max_delivery_attempts: 5}",
            "subscriptions[0].dead_letter_policy.dead_letter_topic",
            "not declared under topics",
        ),
        (
            "bigquery_config: {table: no_dataset}",
            "subscriptions[0].bigquery_config.table",
            "pattern",
        ),
    ],
)
def test_bad_subscription_fields(tmp_path: Path, subscription: str, field: str, words: str) -> None:
    text = (
        GOOD_TOPICS
        + f"subscriptions:\n  - name: consumer\n    topic: response-events\n    {subscription}\n"
    )
    error = _pubsub_error(tmp_path, text)
    assert error.field == field
    assert error.path == tmp_path / "resources.yaml"
    message = str(error)
    assert message.startswith(f"{tmp_path / 'resources.yaml'}: {field}: ")
    assert words in message
    assert "fix the file" in message
    assert isinstance(error, ConfigError)


def test_subscription_to_undeclared_topic(tmp_path: Path) -> None:
    error = _pubsub_error(
        tmp_path, GOOD_TOPICS + "subscriptions:\n  - {name: consumer, topic: typo-topic}\n"
    )
    assert error.field == "subscriptions[0].topic"
    assert "'typo-topic'" in str(error)


def test_subscription_profile_wider_than_its_topic(tmp_path: Path) -> None:
    text = (
        "topics:\n  - {name: cloud-only, profiles: [gcp]}\n"
        "subscriptions:\n  - {name: consumer, topic: cloud-only}\n"
    )
    error = _pubsub_error(tmp_path, text)
    assert error.field == "subscriptions[0].profiles"
    assert "align their profiles" in str(error)


def test_duplicate_names(tmp_path: Path) -> None:
    error = _pubsub_error(tmp_path, GOOD_TOPICS + "  - name: response-events\n")
    assert error.field == "topics[2].name"
    assert "more than once" in str(error)


@pytest.mark.parametrize("name", ["ab", "1topic", "goog-topic", "has space"])
def test_invalid_topic_names(tmp_path: Path, name: str) -> None:
    error = _pubsub_error(tmp_path, f"topics:\n  - name: '{name}'\n")
    assert error.field == "topics[0].name"


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = GOOD_TOPICS + (
        "subscriptions:\n  - name: consumer\n    topic: response-events\n"
        "    ack_deadline_seconds: 5\n    message_retention: soon\n"
    )
    message = str(_pubsub_error(tmp_path, text))
    assert "ack_deadline_seconds" in message
    assert "subscriptions[0].message_retention" in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = _pubsub_error(tmp_path, "topics: [\n  - a\n")
    assert error.field == "line 2"
    assert "invalid YAML" in str(error)


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    error = _pubsub_error(tmp_path, text)
    assert error.field == ""
    assert "expected a mapping" in str(error)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResourceFileError, match="file not found") as info:
        load_pubsub(tmp_path / "nope.yaml")
    assert info.value.path == tmp_path / "nope.yaml"


@pytest.mark.parametrize(
    ("family", "field", "words"),
    [
        ("{}", "tables[0].column_families.f", "grows forever"),
        (
            "{max_versions: 0}",
            "tables[0].column_families.f.max_versions",
            "greater than or equal to 1",
        ),
        ("{max_versions: 1, max_age: 1d}", "tables[0].column_families.f", "combine: union"),
        ("{max_age: 1d, combine: union}", "tables[0].column_families.f", "only makes sense"),
        ("{max_age: 0s}", "tables[0].column_families.f.max_age", "positive"),
        ("{max_versions: 1, ttl: 1d}", "tables[0].column_families.f.ttl", "Extra inputs"),
    ],
)
def test_bad_column_families(tmp_path: Path, family: str, field: str, words: str) -> None:
    error = _bigtable_error(
        tmp_path, f"tables:\n  - name: t1\n    column_families:\n      f: {family}\n"
    )
    assert error.field == field
    assert words in str(error)


def test_table_needs_families_and_unique_names(tmp_path: Path) -> None:
    error = _bigtable_error(tmp_path, "tables:\n  - {name: t1, column_families: {}}\n")
    assert error.field == "tables[0].column_families"
    error = _bigtable_error(
        tmp_path,
        "tables:\n  - {name: t1, column_families: {f: {max_versions: 1}}}\n"
        "  - {name: t1, column_families: {f: {max_versions: 1}}}\n",
    )
    assert error.field == "tables[1].name"


def test_bigtable_file_has_no_profiles(tmp_path: Path) -> None:
    error = _bigtable_error(
        tmp_path,
        "tables:\n  - {name: t1, profiles: [gcp], column_families: {f: {max_versions: 1}}}\n",
    )
    assert error.field == "tables[0].profiles"
