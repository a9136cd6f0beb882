"""Unit tests (no database) of the pure rules the bulk load shares with the processor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pulse_local.ingest.store import delivery_outcome
from pulse_local.source.bulk import _run_at

T0 = datetime(2024, 9, 1, tzinfo=UTC)


def test_delivery_outcome_follows_the_processors_upsert_rule() -> None:
    stored = ("a" * 64, T0)
    assert delivery_outcome(None, "a" * 64, T0) == "created"
    assert delivery_outcome(stored, "a" * 64, T0) == "duplicate"
    assert delivery_outcome(stored, "a" * 64, T0 + timedelta(days=1)) == "duplicate"
    assert delivery_outcome(stored, "b" * 64, T0) == "revised"  # same time, new payload
    assert delivery_outcome(stored, "b" * 64, T0 + timedelta(seconds=1)) == "revised"
    assert delivery_outcome(stored, "b" * 64, T0 - timedelta(seconds=1)) == "stale"


def test_the_run_is_the_latest_opened_one_that_contains_the_time() -> None:
    early, late, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    runs = sorted([(T0, T0 + timedelta(days=30), early),
                   (T0 + timedelta(days=10), T0 + timedelta(days=20), late),
                   (T0 + timedelta(days=40), T0 + timedelta(days=50), other)])
    assert _run_at(runs, T0 + timedelta(days=5)) == early
    assert _run_at(runs, T0 + timedelta(days=15)) == late  # both open: the later opened
    assert _run_at(runs, T0 + timedelta(days=20)) == early  # closes_at is exclusive
    assert _run_at(runs, T0 + timedelta(days=35)) is None
    assert _run_at(runs, T0 - timedelta(days=1)) is None
    assert _run_at([], T0) is None
