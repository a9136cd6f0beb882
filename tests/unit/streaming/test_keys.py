"""Row keys and reversed timestamps (no sockets)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulse_local.streaming import keys
from pulse_local.streaming.keys import Dimension, Granularity

T = uuid.UUID("11111111-1111-4111-8111-111111111111")
U = uuid.UUID("22222222-2222-4222-8222-222222222222")
E = uuid.UUID("33333333-3333-4333-8333-333333333333")
times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                     timezones=st.just(UTC))


def test_fact_key_layout_and_roundtrip() -> None:
    ts = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    key = keys.fact_key(T, U, ts, E)
    assert key.startswith(keys.user_prefix(T, U))
    parsed = keys.parse_fact_key(key)
    assert (parsed.tenant_id, parsed.user, parsed.timestamp, parsed.event_id) == (T, str(U), ts, E)


@given(a=times, b=times)
def test_newer_events_sort_first(a: datetime, b: datetime) -> None:
    ka, kb = keys.fact_key(T, U, a, E), keys.fact_key(T, U, b, E)
    if keys.to_millis(a) > keys.to_millis(b):
        assert ka < kb
    elif keys.to_millis(a) == keys.to_millis(b):
        assert ka == kb


@given(ts=times)
def test_reversed_component_roundtrip_to_the_millisecond(ts: datetime) -> None:
    back = keys.from_reversed_component(keys.reversed_component(ts))
    assert keys.to_millis(back) == keys.to_millis(ts)
    assert len(keys.reversed_component(ts)) == keys.REVERSED_WIDTH


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        keys.to_millis(datetime(2024, 1, 1))


@given(ts=times, start=times, end=times)
def test_fact_range_selects_exactly_start_inclusive_end_exclusive(
        ts: datetime, start: datetime, end: datetime) -> None:
    low, high = keys.fact_range(T, U, start, end)
    key = keys.fact_key(T, U, ts, E)
    inside = keys.to_millis(start) <= keys.to_millis(ts) < keys.to_millis(end)
    assert (low <= key < high) == inside


def test_fact_range_stays_inside_the_tenant_and_user() -> None:
    low, high = keys.fact_range(T, U)
    other_user = keys.fact_key(T, uuid.uuid4(), datetime.now(UTC), E)
    other_tenant = keys.fact_key(uuid.uuid4(), U, datetime.now(UTC), E)
    assert low == keys.user_prefix(T, U)
    for key in (other_user, other_tenant):
        assert not low <= key < high or key.startswith(keys.user_prefix(T, U))


def test_aggregate_keys_escape_the_separator() -> None:
    key = keys.aggregate_key(T, Dimension.FORM, "a#b%c", Granularity.DAY, "2024-05-01")
    assert key.decode().count("#") == 4
    parsed = keys.parse_aggregate_key(key)
    assert parsed.value == "a#b%c" and parsed.bucket == "2024-05-01"
    assert key.startswith(keys.aggregate_prefix(T, Dimension.FORM, "a#b%c", Granularity.DAY))


def test_buckets_are_utc() -> None:
    ts = datetime(2024, 5, 1, 23, 30, tzinfo=UTC) + timedelta(hours=2)
    local = ts.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert keys.bucket(local, Granularity.DAY) == "2024-05-02"
    assert keys.bucket(local, Granularity.HOUR) == "2024-05-02T01"
    assert keys.bucket(local, Granularity.TOTAL) == "all"


def test_keys_over_4_kib_are_refused() -> None:
    with pytest.raises(keys.RowKeyTooLong, match="4096"):
        keys.aggregate_key(T, Dimension.FORM, "x" * 5000, Granularity.DAY, "2024-05-01")


def test_prefix_end() -> None:
    assert keys.prefix_end(b"abc#") == b"abc$"
    assert keys.prefix_end(b"a\xff") == b"b"
