"""The aggregate counters' exactly-once rule against the real Bigtable emulator: concurrent
duplicates, an attempt that died after its pending write, a partly done column, a stall,
folds that race, and events redelivered after their fold."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.streaming.keys import Dimension
from pulse_local.streaming.layout import AGGREGATE_TABLE, DONE_SUFFIX, PENDING
from pulse_local.streaming.quality import run_checks
from pulse_local.streaming.store import Delivered, EventStore, FoldReport
from pulse_local.streaming.testing import (
    event_stream,
    fact_event_ids,
    fold_until_settled,
    pending_event_ids,
    tenant_total,
)

pytestmark = pytest.mark.integration

#: A short fold delay, so the tests wait little; not the shortest the store accepts (2 s), which
#: leaves a write 1 s after its dedup read: a loaded machine's first call can take that.
FOLD_AFTER = 3.0


@pytest.fixture()
def stores(pulse_stack: Any, pulse_settings: Settings) -> Iterator[tuple[EventStore, EventStore]]:
    """Two stores on the session's Bigtable (two consumer processes, or an attempt that dies
    and the one that redelivers), closed after the test."""
    pair = (EventStore.for_settings(pulse_settings, fold_after=FOLD_AFTER),
            EventStore.for_settings(pulse_settings, fold_after=FOLD_AFTER))
    yield pair
    for store in pair:
        store.close()


def _batch(tenant: uuid.UUID, count: int, seed: int = 7) -> list[Delivered]:
    events = event_stream(count, tenant, users=20, forms=3, seed=seed)
    return [Delivered(e, f"m{i}", e.submitted_at, e.to_message(), run_checks(e, e.submitted_at))
            for i, e in enumerate(events)]


def _assert_settled(settings: Settings, tenant: uuid.UUID, batch: list[Delivered]) -> None:
    """Nothing pending for the tenant, and its counters and facts are exactly ``batch``."""
    assert pending_event_ids(settings, tenant) == []
    _assert_exact(settings, tenant, batch)


def _assert_exact(settings: Settings, tenant: uuid.UUID, batch: list[Delivered]) -> None:
    total = tenant_total(settings, tenant)
    assert total.events == len(batch)
    assert total.complete == sum(d.event.is_complete for d in batch)
    assert total.score_sum == pytest.approx(sum(d.event.total_score or 0 for d in batch))
    assert sorted(fact_event_ids(settings, tenant)) == sorted(str(d.event.event_id)
                                                             for d in batch)


def _day_buckets(settings: Settings, tenant: uuid.UUID) -> list[Any]:
    """The tenant's hourly form aggregates over the last two days, as the serving API reads them."""
    from pulse_local.serving import ServingStore, aggregates
    from pulse_local.streaming.keys import Granularity

    store = ServingStore.for_settings(settings)
    try:
        today = datetime.now(UTC).date()
        return aggregates(store, tenant, Dimension.FORM, start=today - timedelta(days=1),
                          end=today, granularity=Granularity.HOUR).buckets
    finally:
        store.close()


def _fold_until_settled(store: EventStore, settings: Settings, tenant: uuid.UUID) -> None:
    if not fold_until_settled(store, settings, tenant):
        pytest.fail("entries still pending after 4 folds")


def _die_after_pending_write(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``store`` die like a killed consumer right after its pending write: the facts
    and done marks of the attempt are never written."""
    real = store.rpc.mutate_rows

    def mutate_rows(request: Any, **kwargs: Any) -> None:
        if not request.table_name.endswith(f"/{AGGREGATE_TABLE}"):
            raise RuntimeError("killed")
        real(request, **kwargs)

    monkeypatch.setattr(store.rpc, "mutate_rows", mutate_rows)


def test_concurrent_duplicates_are_counted_once_before_and_after_the_fold(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    tenant = uuid.uuid4()
    batch = _batch(tenant, 200)
    # Four stores in one process share its interpreter lock and each opens its channel on
    # the first call: the production fold delay keeps their writes clear of a stall.
    stores = [EventStore.for_settings(pulse_settings) for _ in range(4)]
    try:
        barrier = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def write(store: EventStore) -> None:
            barrier.wait()
            try:
                store.write(batch)
            except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        _assert_exact(pulse_settings, tenant, batch)
        before = _day_buckets(pulse_settings, tenant)
        assert sum(b.counters.events for b in before) == len(batch)
        assert set(pending_event_ids(pulse_settings, tenant)) == {d.event.event_id for d in batch}
        _fold_until_settled(stores[0], pulse_settings, tenant)
    finally:
        for s in stores:
            s.close()
    assert pending_event_ids(pulse_settings, tenant) == []
    _assert_exact(pulse_settings, tenant, batch)
    assert _day_buckets(pulse_settings, tenant) == before  # hourly counters moved intact


def test_an_attempt_killed_after_its_pending_write_and_its_redelivery_count_once(
        stores: tuple[EventStore, EventStore], pulse_settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = uuid.uuid4()
    batch = _batch(tenant, 50)
    killed, store = stores
    _die_after_pending_write(killed, monkeypatch)
    for _ in range(2):  # two deaths: the event is pending twice
        with pytest.raises(RuntimeError, match="killed"):
            killed.write(batch)
    assert tenant_total(pulse_settings, tenant).events == len(batch)
    # a fold now must not touch them: nobody marked them done
    time.sleep(FOLD_AFTER + 0.1)
    report = store.fold(everything=True)
    assert report.folded_entries == 0 and report.waiting >= 4 * len(batch)
    result = store.write(batch)  # the redelivery
    assert len(result.written) == len(batch)
    _assert_exact(pulse_settings, tenant, batch)
    assert len(pending_event_ids(pulse_settings, tenant)) == 3 * 4 * len(batch)
    _fold_until_settled(store, pulse_settings, tenant)
    _assert_settled(pulse_settings, tenant, batch)


def test_a_column_partly_done_is_folded_in_part(
        stores: tuple[EventStore, EventStore], pulse_settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed attempt wrote events A and B in one column; only A's redelivery has come: the
    fold moves A and rewrites the column with B alone, and every count stays exact."""
    tenant = uuid.uuid4()
    batch = _batch(tenant, 30)
    a, b = batch[:20], batch[20:]
    killed, store = stores
    _die_after_pending_write(killed, monkeypatch)
    with pytest.raises(RuntimeError):
        killed.write(batch)
    store.write(a)
    time.sleep(FOLD_AFTER + 0.1)
    report = store.fold(everything=True)
    assert report.folded_entries == 4 * len(a)
    assert sorted(pending_event_ids(pulse_settings, tenant)) == sorted(
        d.event.event_id for d in b for _ in range(4))
    total = tenant_total(pulse_settings, tenant)
    assert total.events == len(batch)  # A from the counters, B from its entries
    assert total.score_sum == pytest.approx(sum(d.event.total_score or 0 for d in batch))
    store.write(b)
    _fold_until_settled(store, pulse_settings, tenant)
    _assert_settled(pulse_settings, tenant, batch)


def test_an_event_redelivered_after_its_fold_is_a_duplicate(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    tenant = uuid.uuid4()
    batch = _batch(tenant, 40)
    store = EventStore.for_settings(pulse_settings, fold_after=FOLD_AFTER)
    try:
        store.write(batch)
        time.sleep(FOLD_AFTER + 0.1)
        assert store.fold().folded_entries == 4 * len(batch)
        again = store.write(batch)
    finally:
        store.close()
    assert len(again.duplicates) == len(batch) and not again.written
    assert pending_event_ids(pulse_settings, tenant) == []
    _assert_exact(pulse_settings, tenant, batch)


def test_a_fold_waits_until_it_has_seen_the_events_done_for_fold_after(
        stores: tuple[EventStore, EventStore], pulse_settings: Settings) -> None:
    """Another consumer's events: a fresh store first learns they are done, and folds them
    only fold_after later (by then any write of them that raced their done mark has landed)."""
    tenant = uuid.uuid4()
    batch = _batch(tenant, 30)
    writer, folder = stores
    writer.write(batch)
    first = folder.fold(everything=True)
    assert first.waiting >= 4 * len(batch) and first.folded_entries == 0
    time.sleep(FOLD_AFTER + 0.1)
    second = folder.fold(everything=True)
    assert second.folded_entries >= 4 * len(batch)
    _assert_settled(pulse_settings, tenant, batch)


def test_another_process_folds_done_columns_from_their_done_cells_alone(
        stores: tuple[EventStore, EventStore], pulse_settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that did not write the columns learns from their done cells that every event
    is done: no dedup reads (each consumer process folding the other's entries used to look up
    every one of them)."""
    tenant = uuid.uuid4()
    batch = _batch(tenant, 30)
    writer, folder = stores

    def no_dedup_reads(*_: Any, **__: Any) -> set[bytes]:
        raise AssertionError("the folder read the dedup table")

    monkeypatch.setattr(folder, "done_keys", no_dedup_reads)
    writer.write(batch)
    first = folder.fold(everything=True)  # the done cells are seen now: not yet foldable
    assert first.folded_entries == 0 and first.waiting >= 4 * len(batch)
    time.sleep(FOLD_AFTER + 0.1)
    assert folder.fold(everything=True).folded_entries >= 4 * len(batch)
    _assert_settled(pulse_settings, tenant, batch)


def test_racing_folds_apply_once(stores: tuple[EventStore, EventStore],
                                 pulse_settings: Settings) -> None:
    """Two folders read the same row state; the second one's write is refused (the row's fold
    token changed), so the entries are not added twice."""
    tenant = uuid.uuid4()
    batch = _batch(tenant, 30)
    one, two = stores
    one.write(batch)
    two.write(batch)  # all duplicates, but `two` now knows them as done too
    time.sleep(FOLD_AFTER + 0.1)
    rows = sorted(one._to_fold)
    read_at = time.monotonic()
    stale = two._read_rows(rows)
    assert one.fold().folded_rows == len(rows)
    report = FoldReport()
    for state in stale:
        two._fold_row(state, report, read_at)
    assert report.conflicts == len(rows) and report.folded_entries == 0
    _assert_exact(pulse_settings, tenant, batch)


def test_a_duplicate_held_up_after_its_dedup_read_never_lands_after_the_fold(
        stores: tuple[EventStore, EventStore], pulse_settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The race the fold's rules exist for: B reads the dedup table before A marks the events
    done, then is held up past fold_after while A finishes and folds. B must not write its
    pending column after the fold (the events would count twice): it starts again, finds the
    events done and writes nothing."""
    tenant = uuid.uuid4()
    batch = _batch(tenant, 40)
    a, b = stores
    real_read = b.done_keys
    reads: list[set[bytes]] = []

    def read_then_stall(*args: Any, **kwargs: Any) -> set[bytes]:
        found = real_read(*args, **kwargs)
        reads.append(found)
        if len(reads) == 1:  # A writes, marks done and folds while B is held up here
            a.write(batch)
            time.sleep(FOLD_AFTER + 0.1)
            assert a.fold().folded_entries == 4 * len(batch)
        return found

    monkeypatch.setattr(b, "done_keys", read_then_stall)
    result = b.write(batch)
    assert not reads[0] and len(reads[1]) == len(batch)  # not done at first, done after
    assert len(result.duplicates) == len(batch) and not result.written
    _assert_settled(pulse_settings, tenant, batch)


def test_a_stalled_attempt_starts_again_and_counts_once(
        pulse_stack: Any, pulse_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dedup read of the first attempt returns after fold_after/2, leaving less than
    fold_after/4 before the write's 3/4 fold_after deadline: its pending write must not go out
    (a concurrent duplicate could be folded before it lands); it starts again."""
    tenant = uuid.uuid4()
    batch = _batch(tenant, 40)
    store = EventStore.for_settings(pulse_settings, fold_after=FOLD_AFTER)
    real, reads, pending_writes = store.done_keys, [], []
    real_mutate = store.rpc.mutate_rows

    def slow_first_read(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        out = real(*args, **kwargs)
        if len(reads) == 1:
            time.sleep(FOLD_AFTER / 2 + 0.2)
        return out

    def count_pending(request: Any, **kwargs: Any) -> None:
        qualifier = request.entries[0].mutations[0].set_cell.column_qualifier
        if request.table_name.endswith(f"/{AGGREGATE_TABLE}") and not qualifier.endswith(
                DONE_SUFFIX):  # a pending write, not the done cells
            pending_writes.append(1)
        real_mutate(request, **kwargs)

    monkeypatch.setattr(store, "done_keys", slow_first_read)
    monkeypatch.setattr(store.rpc, "mutate_rows", count_pending)
    try:
        result = store.write(batch)
    finally:
        store.close()
    assert len(reads) == 2 and len(pending_writes) == 1
    assert len(result.written) == len(batch)
    assert len(pending_event_ids(pulse_settings, tenant)) == 4 * len(batch)
    _assert_exact(pulse_settings, tenant, batch)


def test_repeated_folds_keep_one_version_per_counter(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    """Every fold sets the counters anew; the old versions go in the same mutation (the
    emulator never collects garbage), so a row stays one cell per column."""
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange

    from pulse_local.streaming.layout import bigtable_data_client

    tenant = uuid.uuid4()
    batches = [_batch(tenant, 20, seed=10 + i) for i in range(3)]
    store = EventStore.for_settings(pulse_settings, fold_after=FOLD_AFTER)
    try:
        for batch in batches:
            store.write(batch)
            time.sleep(FOLD_AFTER + 0.1)
            assert store.fold().folded_entries == 4 * len(batch)
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
    for row in rows:
        qualifiers = [c.qualifier for c in row.cells]
        assert len(qualifiers) == len(set(qualifiers)), row.row_key
        assert not [c for c in row.cells if c.family == PENDING]
    _assert_exact(pulse_settings, tenant, [d for b in batches for d in b])
