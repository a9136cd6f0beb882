"""The consumer's dead-letter thresholds, read from the declared subscription (no services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse_local.errors import ConfigError
from pulse_local.streaming.options import DEFAULT_SUBSCRIPTION, dead_letter_config

_FILE = """
topics:
  - name: response-events
  - name: response-events-dlq
subscriptions:
  - name: response-events-bigtable
    topic: response-events
    dead_letter_policy: {dead_letter_topic: response-events-dlq, max_delivery_attempts: 8}
"""


def test_declared_policy_and_consumer_threshold(tmp_path: Path) -> None:
    (tmp_path / "pubsub.yaml").write_text(_FILE)
    config = dead_letter_config(DEFAULT_SUBSCRIPTION, tmp_path / "pubsub.yaml",
                                max_failed_attempts=7)
    assert (config.topic, config.dead_letter_topic) == ("response-events", "response-events-dlq")
    assert (config.max_failed_attempts, config.max_delivery_attempts) == (7, 8)


def test_consumer_threshold_must_stay_below_the_services(tmp_path: Path) -> None:
    (tmp_path / "pubsub.yaml").write_text(_FILE)
    with pytest.raises(ConfigError) as err:
        dead_letter_config(DEFAULT_SUBSCRIPTION, tmp_path / "pubsub.yaml", max_failed_attempts=8)
    message = str(err.value)
    assert "PULSE_STREAMING_MAX_FAILED_ATTEMPTS=8" in message
    assert "max_delivery_attempts=8" in message and "Lower the former" in message


def test_declared_file_keeps_the_consumer_first() -> None:
    config = dead_letter_config(DEFAULT_SUBSCRIPTION)
    assert config.max_failed_attempts < config.max_delivery_attempts
