"""Pending aggregate entries: packing, one count per event, and what readers add (pure
functions; the rows here are faked in memory, no Bigtable)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pulse_local.streaming.layout import (
    COUNTS,
    ENTRY,
    FOLD_TOKEN,
    NO_HOUR,
    PENDING,
    aggregate_rows,
    first_entries,
    hours_in,
    pack_entry,
    packed_sums,
    pending_sums,
    read_counters,
)
from pulse_local.streaming.quality import run_checks
from pulse_local.streaming.testing import make_event

NOW = datetime(2026, 5, 1, 13, 30, tzinfo=UTC)
T = uuid.UUID(int=7)


@dataclass
class FakeCell:
    family: str
    qualifier: bytes
    value: bytes


@dataclass
class FakeRow:
    cells: list[FakeCell]


def _entry(scores: tuple[float, ...] = (2.0, 3.0), hourly: bool = True, **kw: object) -> bytes:
    event = make_event(T, uuid.uuid4(), submitted_at=NOW, scores=scores, **kw)  # type: ignore[arg-type]
    return pack_entry(event, run_checks(event, NOW), hourly)


def test_an_entry_round_trips_the_deltas_and_the_hour() -> None:
    event = make_event(T, uuid.uuid4(), submitted_at=NOW, scores=(2.5, 4.0), is_complete=False)
    packed = pack_entry(event, run_checks(event, NOW), True)
    assert len(packed) == ENTRY.size
    event_id, hour, *_ = ENTRY.unpack(packed)
    assert uuid.UUID(bytes=event_id) == event.event_id and hour == 13
    assert pending_sums([ENTRY.unpack(packed)]) == {
        "events": 1, "scored": 1, "score_milli": 6500, "max_score_milli": 10000,
        "h13.events": 1, "h13.scored": 1, "h13.score_milli": 6500, "h13.max_score_milli": 10000}
    assert ENTRY.unpack(pack_entry(event, run_checks(event, NOW), False))[1] == NO_HOUR


def test_an_unscored_event_adds_no_score_counters() -> None:
    sums = pending_sums([ENTRY.unpack(_entry(scores=(), hourly=False))])
    assert sums["events"] == 1 and sums["complete"] == 1
    assert not {"scored", "score_milli", "max_score_milli"} & set(sums)
    assert not [column for column in sums if column.startswith("h")]


def test_each_event_counts_once_from_its_first_column() -> None:
    a, b = _entry(), _entry()
    repeat_of_a = a[:16] + bytes([5]) + a[17:]  # a later attempt saw another hour: ignored
    entries = first_entries([(b"b0000000000002.x", repeat_of_a + b), (b"b0000000000001.y", a)])
    assert len(entries) == 2
    assert entries[a[:16]] == ENTRY.unpack(a)


def test_readers_add_pending_entries_to_the_counters() -> None:
    counters = {"events": 10, "h13.events": 4, "score_milli": 1000, "h13.score_milli": 500}
    cells = [FakeCell(COUNTS, name.encode(), n.to_bytes(8, "big", signed=True))
             for name, n in counters.items()]
    cells.append(FakeCell(COUNTS, FOLD_TOKEN, b"abc"))
    a = _entry()
    cells += [FakeCell(PENDING, b"b0000000000001.y", a + _entry()),
              FakeCell(PENDING, b"b0000000000002.z", a)]  # a's repeat
    row = FakeRow(cells)
    assert read_counters(row)["events"] == 12
    assert read_counters(row)["score_milli"] == 1000 + 2 * 5000
    assert read_counters(row, 13)["events"] == 6
    assert read_counters(row, 12)["events"] == 0
    assert hours_in(row) == [13]


def test_an_event_touches_the_total_row_and_three_hourly_day_rows() -> None:
    rows = aggregate_rows(make_event(T, uuid.uuid4(), submitted_at=NOW))
    assert [hourly for _, hourly in rows] == [False, True, True, True]
    assert len({row for row, _ in rows}) == 4


def test_the_vectorized_sums_equal_the_entry_by_entry_ones() -> None:
    """Readers sum with numpy; the fold entry by entry: both count each event once, from its
    first column (random columns with repeats, all hours, flags and scores)."""
    import random

    rng = random.Random(5)
    pool = []
    for _ in range(300):
        hour = rng.choice([NO_HOUR, *range(24)])
        pool.append(ENTRY.pack(uuid.UUID(int=rng.getrandbits(128)).bytes, hour,
                               rng.randrange(8), rng.randrange(-10**6, 10**9),
                               rng.randrange(0, 10**9)))
    for earlier in rng.sample(pool, 50):  # repeats whose deltas differ: the first one counts
        pool.append(earlier[:17] + bytes([rng.randrange(8)]) + earlier[18:])
    columns = []
    for _ in range(12):
        picked = rng.sample(pool, 60)
        columns.append((b"b%013d.x" % rng.randrange(10**12), b"".join(picked)))
    expected = pending_sums(first_entries(columns).values())
    assert packed_sums([value for _, value in sorted(columns)]) == expected
    assert packed_sums([]) == {}
