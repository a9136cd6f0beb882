"""The aggregate counters' exactly-once rule against the real Bigtable emulator: concurrent
duplicates, an attempt that died between its increment and its correction, and a stall."""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.streaming.quality import run_checks
from pulse_local.streaming.store import (
    AGGREGATE_TABLE,
    MARKER_PREFIX,
    Delivered,
    EventStore,
    applied,
    contributions,
)
from pulse_local.streaming.store import marker_qualifier as marker
from pulse_local.streaming.testing import event_stream, fact_event_ids, tenant_total

pytestmark = pytest.mark.integration


def _batch(tenant: uuid.UUID, count: int, seed: int = 7) -> list[Delivered]:
    events = event_stream(count, tenant, users=20, forms=3, seed=seed)
    return [Delivered(e, f"m{i}", e.submitted_at, e.to_message(), run_checks(e, e.submitted_at))
            for i, e in enumerate(events)]


def _assert_exact(settings: Settings, tenant: uuid.UUID, batch: list[Delivered]) -> None:
    total = tenant_total(settings, tenant)
    assert total.events == len(batch)
    assert total.score_sum == pytest.approx(sum(d.event.total_score or 0 for d in batch))
    assert sorted(fact_event_ids(settings, tenant)) == sorted(str(d.event.event_id)
                                                             for d in batch)


def _killed_attempt(store: EventStore, batch: list[Delivered], attempt: int = 0) -> None:
    """What an attempt killed after its increments leaves: counts and markers, no done mark
    (its token 30 s old, so it looks dead to later attempts)."""
    import time

    token = f"{int(time.time() * 1000) - 30_000 + attempt}.killed{attempt}".encode()
    for item in batch:
        for row, deltas in contributions(item.event, item.quality).items():
            rules: list[tuple[str, bytes, int | bytes]] = [
                ("counts", c.encode(), n) for c, n in deltas.items()]
            rules.append(("counts", marker(item.event.event_id), applied(token)))
            store.rpc.read_modify_write(AGGREGATE_TABLE, row, rules)


def test_concurrent_duplicates_are_counted_once(pulse_stack: Any,
                                                pulse_settings: Settings) -> None:
    tenant = uuid.uuid4()
    batch = _batch(tenant, 200)
    stores = [EventStore.for_settings(pulse_settings) for _ in range(4)]
    try:
        barrier = threading.Barrier(len(stores))

        def write(store: EventStore) -> None:
            barrier.wait()
            store.write(batch)

        threads = [threading.Thread(target=write, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in stores:
            s.close()
    _assert_exact(pulse_settings, tenant, batch)


def test_an_attempt_killed_between_increment_and_correction_is_healed(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    """Two earlier attempts incremented every row and were killed before taking back or
    marking done (the second was a repeat): the redelivery brings every row back to once."""
    tenant = uuid.uuid4()
    batch = _batch(tenant, 50)
    store = EventStore.for_settings(pulse_settings)
    try:
        for attempt in range(2):
            _killed_attempt(store, batch, attempt)
        assert tenant_total(pulse_settings, tenant).events == 2 * len(batch)
        result = store.write(batch)
    finally:
        store.close()
    assert len(result.written) == len(batch)
    assert result.compensated > 0
    _assert_exact(pulse_settings, tenant, batch)


def test_a_stalled_attempt_starts_again_and_counts_once(
        pulse_stack: Any, pulse_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first attempt stalls past marker_ttl/2 after some rows were incremented: it starts
    again, and the rows already incremented are corrected."""
    import time

    tenant = uuid.uuid4()
    batch = _batch(tenant, 40)
    store = EventStore.for_settings(pulse_settings, marker_ttl=2.0, max_in_flight=1)
    real = store.rpc.start_read_modify_write
    calls = {"n": 0}

    def slow_third_call(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        out = real(*args, **kwargs)
        if calls["n"] == 3:
            time.sleep(1.5)  # past the 1 s budget: the next row's increment must not go out
        return out

    monkeypatch.setattr(store.rpc, "start_read_modify_write", slow_third_call)
    try:
        result = store.write(batch)
    finally:
        store.close()
    assert len(result.written) == len(batch)
    assert result.compensated > 0  # the rows of the first attempt were seen twice, corrected
    _assert_exact(pulse_settings, tenant, batch)


def _markers(settings: Settings, tenant: uuid.UUID) -> set[bytes]:
    """The marker columns left in a tenant's aggregate rows."""
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange

    from pulse_local.streaming.store import bigtable_data_client

    client = bigtable_data_client(settings)
    try:
        table = client.get_table(settings.bigtable_instance, AGGREGATE_TABLE)
        prefix = f"{tenant}#".encode()
        rows = table.read_rows(ReadRowsQuery(row_ranges=[RowRange(prefix, prefix + b"\xff")]))
        return {c.qualifier for r in rows for c in r.cells
                if c.qualifier.startswith(MARKER_PREFIX)}
    finally:
        client.close()


def test_sweep_deletes_markers_a_crash_left_once_their_events_are_done_long_enough(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    """A bare store never runs its delayed cleanup: what a crashed consumer leaves behind. The
    sweep deletes the markers of events done more than ``older_than`` ago; it keeps those of
    events done since, even when the markers themselves are older (an attempt killed before
    the redelivery marked them done), and the counts do not move."""
    import time
    from datetime import timedelta

    tenant = uuid.uuid4()
    early, late = _batch(tenant, 40, seed=1), _batch(tenant, 30, seed=2)
    store = EventStore.for_settings(pulse_settings)
    try:
        store.write(early)
        _killed_attempt(store, late)  # late's markers are as old as early's
        time.sleep(4.0)
        store.write(late)  # the redelivery heals and marks late done: now
        assert _markers(pulse_settings, tenant) == {marker(d.event.event_id)
                                                    for d in early + late}
        swept = store.sweep_markers(timedelta(seconds=2.5))
    finally:
        store.close()
    assert _markers(pulse_settings, tenant) == {marker(d.event.event_id) for d in late}
    # each event has a marker in its 4 aggregate rows; the sweep covers every tenant, so it
    # also took what earlier tests of the session left
    assert swept >= 4 * len(early)
    _assert_exact(pulse_settings, tenant, early + late)


def _write_old_markers(store: EventStore, row: bytes, event_ids: list[uuid.UUID],
                       stamp_us: int) -> None:
    """Marker cells for ``event_ids`` in one aggregate row, stamped ``stamp_us``, 20,000 a
    call (what attempts that died before their cleanup leave on a hot row)."""
    from pulse_local.streaming.store import COUNTS

    for first in range(0, len(event_ids), 20_000):
        request = store.rpc.new_mutate_request(AGGREGATE_TABLE)
        entry = request.entries.add(row_key=row)
        for event_id in event_ids[first:first + 20_000]:
            cell = entry.mutations.add().set_cell
            cell.family_name, cell.column_qualifier = COUNTS, marker(event_id)
            cell.timestamp_micros, cell.value = stamp_us, applied(b"1.dead")
        store.rpc.mutate_rows(request)


def _largest_read_message(store: EventStore, row: bytes) -> int:
    """Bytes of the largest ReadRows response message for ``row``, values stripped."""
    request = store.rpc._t["ReadRowsRequest"][0](
        table_name=store.rpc.table_name(AGGREGATE_TABLE), rows={"row_keys": [row]},
        filter={"strip_value_transformer": True})
    return max(type(r).pb(r).ByteSize() for r in store.rpc.gapic.read_rows(request=request))


def test_sweep_handles_a_row_whose_markers_exceed_a_4_mb_message(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    """A hot row can hold more markers than fit gRPC's default 4 MB message (the emulator
    sends a row as one message): the sweep reads it and deletes exactly the markers of events
    done long enough ago (the stop-14 CI failure: the scan raised ResourceExhausted)."""
    import random
    from datetime import timedelta

    from pulse_local.streaming import keys
    from pulse_local.streaming.keys import Dimension, Granularity
    from pulse_local.streaming.store import DEDUP_TABLE, SEEN

    tenant = uuid.uuid4()
    rng = random.Random(14)
    # in column order: the emulator keeps a row's columns sorted, and appends are its fast case
    event_ids = sorted((uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(50_000)),
                       key=lambda e: e.hex)
    done, undone = event_ids[::2], event_ids[1::2]
    row = keys.aggregate_key(tenant, Dimension.ALL, keys.ALL_VALUE, Granularity.TOTAL,
                             keys.TOTAL_BUCKET)
    minute_ago = int((time.time() - 60) * 1000) * 1000
    store = EventStore.for_settings(pulse_settings)
    try:
        _write_old_markers(store, row, event_ids, minute_ago)
        marks = store.rpc.new_mutate_request(DEDUP_TABLE)
        for event_id in done:
            cell = marks.entries.add(row_key=keys.dedup_key(tenant, event_id)).mutations.add()
            cell.set_cell.family_name, cell.set_cell.column_qualifier = SEEN, b"done"
            cell.set_cell.timestamp_micros, cell.set_cell.value = minute_ago, b"m"
        store.rpc.mutate_rows(marks)
        assert _largest_read_message(store, row) > 4 * 1024 * 1024  # the case is real (~108 bytes a marker)

        swept = store.sweep_markers(timedelta(seconds=30))

        # a row-key regex filter must match the whole key: this row alone
        left = {q for _, qs in store.rpc.scan_columns(AGGREGATE_TABLE, store.rpc.row_filter(
                    row_key_regex_filter=re.escape(row))) for q in qs}
    finally:
        store.close()
    assert left == {marker(e) for e in undone}
    assert swept >= len(done)  # and what earlier tests of the session left in other rows


def test_cleanup_keeps_one_version_per_counter_and_the_counts(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    """Each increment writes a new version of every counter cell; the emulator never drops old
    ones (GCP does, at compaction), so the delayed cleanup deletes those older than the
    version its own increment wrote: one version per counter column is left, counts exact."""
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange

    from pulse_local.streaming.store import bigtable_data_client

    tenant = uuid.uuid4()
    batches = [_batch(tenant, 20, seed=10 + i) for i in range(6)]
    store = EventStore.for_settings(pulse_settings, marker_ttl=1.0)
    try:
        for batch in batches:
            store.write(batch)
        time.sleep(1.1)
        assert store.cleanup_due() == sum(4 * len(b) for b in batches)
    finally:
        store.close()
    client = bigtable_data_client(pulse_settings)
    try:
        table = client.get_table(pulse_settings.bigtable_instance, AGGREGATE_TABLE)
        prefix = f"{tenant}#".encode()
        rows = list(table.read_rows(ReadRowsQuery(row_ranges=[RowRange(prefix,
                                                                        prefix + b"\xff")])))
    finally:
        client.close()
    assert rows
    for row in rows:  # no markers left, and exactly one cell per counter column
        qualifiers = [c.qualifier for c in row.cells]
        assert not [q for q in qualifiers if q.startswith(MARKER_PREFIX)]
        assert len(qualifiers) == len(set(qualifiers)), row.row_key
    _assert_exact(pulse_settings, tenant, [d for b in batches for d in b])
