"""The consumer's own failure count per message, against the real Bigtable emulator."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.streaming.store import EventStore

pytestmark = pytest.mark.integration


def test_failures_count_per_message_and_a_reused_message_id_starts_at_one(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    """A Pub/Sub emulator restarted while Bigtable keeps its data numbers messages from 1
    again: the new message with an old id must not inherit the old one's failures (seen in
    CI as a poison message dead-lettered after 6 failures instead of 5)."""
    message_id = f"m-{uuid.uuid4().hex[:8]}"
    first = datetime(2026, 12, 2, 9, 0, 0, 123456, tzinfo=UTC)
    store = EventStore.for_settings(pulse_settings)
    try:
        assert [store.count_attempt(message_id, first) for _ in range(3)] == [1, 2, 3]
        # same id, published later (the restarted emulator's message): its own count
        assert store.count_attempt(message_id, first + timedelta(seconds=40)) == 1
        # a microsecond apart is another message too
        assert store.count_attempt(message_id, first + timedelta(microseconds=1)) == 1
        assert store.count_attempt(message_id, first) == 4
    finally:
        store.close()
