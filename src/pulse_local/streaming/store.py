"""The Bigtable side of the consumer: facts, aggregates and dedup marks, written idempotently.

Write protocol for one batch (see docs/streaming.md, "Exactly once", for the argument):

1. read ``events_dedup`` for the batch: events already marked ``done`` are duplicates (skip);
2. write, in ONE ``MutateRows`` call, one new *pending column* ``pending:b<token>`` in each
   aggregate row the batch touches, whose value is the packed entries (event id and deltas) of
   the batch's events for that row. A repeat writes the same event into another column;
   readers and the fold count each event id once (its first column in qualifier order), so
   no write ever needs to be taken back. The call's deadline is ``3/4 fold_after`` after
   step 1 began, and it is not issued with less than ``fold_after / 4`` of that left (the
   attempt starts again instead);
3. write the fact rows (deterministic keys and cell timestamps: a rewrite is a no-op);
4. mark the events ``done`` in ``events_dedup``, then write each column's done cell; the caller
   acks only after this returns;
5. the fold (`EventStore.fold`, a consumer thread) moves the entries of events seen ``done``
   at least ``fold_after`` seconds ago into the row's counters with one ``CheckAndMutateRow``
   per row, guarded by the row's fold token: counters set and folded entries removed
   atomically. By then every write of such an event has landed, and every later delivery of
   it is a duplicate at step 1, so a folded event never comes back.

The table layout (tables, families, the packed pending entries) and the read helpers live in
`pulse_local.streaming.layout`; the cells written and the fold's parsed row, in
`pulse_local.streaming.cells`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pulse_local.streaming.keys as keys  # noqa: PLR0402 (no package import: circle)
from pulse_local.config import Settings
from pulse_local.streaming.cells import (
    MS,
    Delivered,
    Parsed,
    RowState,
    add_fact,
    batch_token,
    delete_column,
    now_micros,
    parse_column,
    row_state,
    set_cell,
)
from pulse_local.streaming.layout import (
    AGGREGATE_TABLE,
    COUNTS,
    DEDUP_TABLE,
    DEDUP_WINDOW,
    DONE_SUFFIX,
    ENTRY,
    FACT_TABLE,
    FOLD_TOKEN,
    PENDING,
    SEEN,
    aggregate_rows,
    bigtable_data_client,  # noqa: F401 (re-exported for stack/emulator_state.py)
    int64,
    pack_entry,
    pending_sums,
)
from pulse_local.streaming.rpc import (
    SCAN_TIMEOUT,
    BigtableRpc,
    BigtableWriteError,
    gapic_client,
)

log = logging.getLogger("pulse_local.streaming")

#: Attempts of a batch that stalled (too little time left for its pending write) before it
#: is nacked.
_STALL_RETRIES = 3
#: Rows read per fold request.
_FOLD_CHUNK = 200


class _Stalled(Exception):
    """The pending write would have been issued too long after `done` was read."""


@dataclass
class WriteResult:
    """What `EventStore.write` did with each item of a batch (indexes into the batch)."""

    written: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    compensated: int = 0


@dataclass
class FoldReport:
    """What one `EventStore.fold` pass did."""

    rows: int = 0  #: rows read
    folded_rows: int = 0  #: rows whose counters took entries
    folded_entries: int = 0  #: entries moved into counters (repeats removed not included)
    conflicts: int = 0  #: rows another fold changed between read and write (next pass)
    waiting: int = 0  #: entries left pending (not done long enough yet)


class EventStore:
    """Writes batches of events to the three tables and folds pending aggregate entries into
    counters; one per process. `write` may be called from several threads; `fold` from one
    (the consumer's folder thread)."""

    def __init__(self, rpc: BigtableRpc, *, fold_after: float = 6.0) -> None:
        if fold_after < 2.0:
            raise ValueError(f"fold_after must be at least 2 s, got {fold_after}")
        self.rpc = rpc
        #: An event's entries are folded once it has been seen done for this long.
        self.fold_after = fold_after
        #: The pending write is a single attempt that must be over ``3/4 fold_after`` after
        #: the dedup read began; it is not issued with less time than this left.
        self.min_write_time = fold_after / 4
        self._lock = threading.Lock()
        #: event id -> monotonic time a dedup read found its done mark (its columns without a
        #: done cell are folded event by event; columns with one are in `_column_seen`).
        self._done_seen: dict[bytes, float] = {}
        #: event id -> monotonic time a dedup read found it not done.
        self._not_done: dict[bytes, float] = {}
        #: (row, pending column) -> monotonic time its events were known done: our own done
        #: write returned, or its done cell was first seen.
        self._column_seen: dict[tuple[bytes, bytes], float] = {}
        #: row -> (pending column, value length) -> its parsed entries (the columns the row
        #: had when last read).
        self._parsed: dict[bytes, dict[tuple[bytes, int], Parsed]] = {}
        #: Rows with pending entries this process wrote or left pending -> when a fold pass
        #: should read them next (monotonic): the fold's work.
        self._to_fold: dict[bytes, float] = {}
        self._next_forget = 0.0

    @classmethod
    def for_settings(cls, settings: Settings, **kwargs: Any) -> EventStore:
        """A store on the settings' Bigtable (emulator or GCP)."""
        from pulse_local.resources import bigtable_endpoint

        gapic = gapic_client(bigtable_endpoint(settings, settings.profile))
        return cls(BigtableRpc(gapic, settings.project, settings.bigtable_instance), **kwargs)

    def close(self) -> None:
        """Close the channel (a batch's calls have all ended when `write` returns)."""
        self.rpc.gapic.transport.close()

    # Dedup ----------------------------------------------------------------------------------
    def done_keys(self, dedup_keys: Sequence[bytes], *,
                  done_before: datetime | None = None) -> set[bytes]:
        """The dedup keys already marked ``done`` within the dedup window (and, with
        ``done_before``, marked before that time)."""
        since = int((time.time() - DEDUP_WINDOW.total_seconds()) * 1000) * MS
        window: dict[str, int] = {"start_timestamp_micros": since}
        if done_before is not None:
            window["end_timestamp_micros"] = keys.to_millis(done_before) * MS
        row_filter = self.rpc.row_filter(chain={"filters": [
            {"family_name_regex_filter": SEEN},
            {"column_qualifier_regex_filter": b"done"},
            {"timestamp_range_filter": window},
            {"cells_per_column_limit_filter": 1},
            {"strip_value_transformer": True},
        ]})
        return self.rpc.existing_keys(DEDUP_TABLE, list(dedup_keys), row_filter)

    # The batch ------------------------------------------------------------------------------
    def write(self, items: Sequence[Delivered]) -> WriteResult:
        """Store a batch; returns which items were written, duplicates or failed.

        Raises on infrastructure errors (the caller nacks the whole batch: every step is
        idempotent, so a retry is safe). An item-specific problem (a key over 4 KiB) fails
        only that item.
        """
        for attempt in range(1, _STALL_RETRIES + 1):
            try:
                return self._write_once(items)
            except _Stalled:
                log.warning("batch of %d stalled: less than %.1f s of its %.1f s for the "
                            "aggregate write left (attempt %d of %d); starting it again",
                            len(items), self.min_write_time, 0.75 * self.fold_after, attempt,
                            _STALL_RETRIES)
        raise BigtableWriteError(f"a batch of {len(items)} stalled {_STALL_RETRIES} times "
                                 "(Bigtable overloaded?); it is retried by redelivery")

    def _write_once(self, items: Sequence[Delivered]) -> WriteResult:
        """One attempt of `write`; raises `_Stalled` when less than `min_write_time` is left
        for the aggregate write before ``3/4 fold_after`` after the dedup read began."""
        result = WriteResult()
        started = time.monotonic()
        first: dict[bytes, int] = {}
        for index, item in enumerate(items):
            dk = keys.dedup_key(item.event.tenant_id, item.event.event_id)
            if dk in first:
                result.duplicates.append(index)  # the same event twice in one batch
            else:
                first[dk] = index
        done = self.done_keys(list(first))
        read = time.monotonic()  # the done marks found were visible by now
        facts = self.rpc.new_mutate_request(FACT_TABLE)
        todo: list[tuple[int, bytes]] = []
        entries: dict[bytes, list[bytes]] = defaultdict(list)
        for dk, index in first.items():
            item = items[index]
            if dk in done:
                result.duplicates.append(index)
                with self._lock:  # what the fold needs to know of them, for free
                    self._done_seen.setdefault(item.event.event_id.bytes, read)
                continue
            try:
                packed = {hourly: pack_entry(item.event, item.quality, hourly)
                          for hourly in (False, True)}
                rows = [(row, packed[hourly]) for row, hourly in aggregate_rows(item.event)]
                add_fact(facts, item)
            except ValueError as exc:  # RowKeyTooLong, timestamp outside the key range
                result.failed[index] = str(exc)
                continue
            for row, entry in rows:
                entries[row].append(entry)
            todo.append((index, dk))
        if not todo:
            return result

        token, now_us = batch_token(), now_micros()
        pending = self.rpc.new_mutate_request(AGGREGATE_TABLE)
        for row, row_entries in entries.items():
            set_cell(pending.entries.add(row_key=row).mutations, PENDING, token,
                     b"".join(row_entries), now_us)
        with self._lock:  # a failed attempt's rows are looked at later too
            for row in entries:
                self._to_fold.setdefault(row, time.monotonic() + 1.5 * self.fold_after)
        # A concurrent duplicate that finished after our read may be folded `fold_after`
        # after its done mark became visible; our pending write must land before that: it
        # must be over within 3/4 fold_after of the read (the call's deadline), and is not
        # issued when less than fold_after / 4 of that is left (the attempt starts again).
        remaining = started + 0.75 * self.fold_after - time.monotonic()
        if remaining < self.min_write_time:
            raise _Stalled()
        self.rpc.mutate_rows(pending, timeout=remaining, retry=False)
        self.rpc.mutate_rows(facts)
        marks = self.rpc.new_mutate_request(DEDUP_TABLE)
        now_us = now_micros()
        for index, dk in todo:
            set_cell(marks.entries.add(row_key=dk).mutations, SEEN, b"done",
                     items[index].message_id.encode(), now_us)
        self.rpc.mutate_rows(marks)
        seen = time.monotonic()
        with self._lock:
            for row in entries:  # foldable from then on
                self._column_seen[row, token] = seen
                self._to_fold[row] = min(self._to_fold.get(row, float("inf")),
                                         seen + self.fold_after)
        done_cells = self.rpc.new_mutate_request(AGGREGATE_TABLE)
        for row in entries:
            set_cell(done_cells.entries.add(row_key=row).mutations, PENDING,
                     token + DONE_SUFFIX, b"", now_us)
        self.rpc.mutate_rows(done_cells)
        result.written = [index for index, _ in todo]
        return result

    # The fold -------------------------------------------------------------------------------
    def fold(self, *, everything: bool = False) -> FoldReport:
        """Move the pending entries of events seen done at least ``fold_after`` s ago into
        their rows' counters. Reads the rows this process wrote since the last pass (and those
        it left pending), or with ``everything`` every row that has pending entries (what
        crashed consumers left: the consumer does this every ``sweep_seconds``)."""
        report = FoldReport()
        if everything:
            scan = self.rpc.row_filter(chain={"filters": [
                {"family_name_regex_filter": PENDING},
                {"cells_per_row_limit_filter": 1},
                {"strip_value_transformer": True},
            ]})
            rows = [key for key, _ in self.rpc.read_cells(AGGREGATE_TABLE, scan,
                                                          timeout=SCAN_TIMEOUT)]
        else:
            now = time.monotonic()
            with self._lock:
                rows = sorted(row for row, due in self._to_fold.items() if due <= now)
                for row in rows:
                    del self._to_fold[row]
        for first in range(0, len(rows), _FOLD_CHUNK):
            chunk = rows[first:first + _FOLD_CHUNK]
            # Readiness is judged at the time of the read, not later: a column that lands
            # after the read must not miss a fold of its events (see docs/streaming.md).
            read_at = time.monotonic()
            try:
                states = self._read_rows(chunk)
                self._learn_done(states)
            except Exception:
                with self._lock:  # every row not done yet is tried again on the next pass
                    for row in rows[first:]:
                        self._to_fold[row] = 0.0
                raise
            for state in states:
                try:
                    self._fold_row(state, report, read_at)
                except Exception as exc:  # noqa: BLE001 - one row must not stop the others
                    log.warning("folding row %r failed (tried again later): %s",
                                state.key[:120], exc)
                    with self._lock:
                        self._to_fold[state.key] = time.monotonic() + self.fold_after
        report.rows = len(rows)
        if time.monotonic() >= self._next_forget:
            self._forget_old()
            self._next_forget = time.monotonic() + self.fold_after
        return report

    def _read_rows(self, row_keys: Sequence[bytes]) -> list[RowState]:
        row_filter = self.rpc.row_filter(chain={"filters": [
            {"interleave": {"filters": [{"family_name_regex_filter": COUNTS},
                                        {"family_name_regex_filter": PENDING}]}},
            {"cells_per_column_limit_filter": 1},
        ]})
        states = []
        for key, cells in self.rpc.read_cells(AGGREGATE_TABLE, row_filter, row_keys):
            state = row_state(key, cells)
            present = {(q, len(v)) for q, _, v in state.columns}
            with self._lock:  # parsed columns that are gone are forgotten
                cache = self._parsed.pop(key, {})
                if present:
                    self._parsed[key] = {k: v for k, v in cache.items() if k in present}
            if state.columns or state.done:
                states.append(state)
        return states

    def _parse(self, row: bytes, qualifier: bytes, value: bytes) -> Parsed:
        """The entries of a pending column, parsed on first sight (a column is written once;
        a partly folded one is rewritten shorter, so its length tells the versions apart)."""
        cache = self._parsed.setdefault(row, {})
        parsed = cache.get((qualifier, len(value)))
        if parsed is None:
            parsed = cache[qualifier, len(value)] = parse_column(value)
        return parsed

    def _learn_done(self, states: Sequence[RowState]) -> None:
        """Note when done cells were first seen, and read the done marks of events in columns
        without one (attempts that died before writing it) not looked up recently."""
        now = time.monotonic()  # after the read: the done cells were there by now
        unknown: dict[bytes, bytes] = {}
        with self._lock:
            for state in states:
                for qualifier in state.done:
                    self._column_seen.setdefault((state.key, qualifier), now)
            undecided = [(state, qualifier, value) for state in states
                         for qualifier, _, value in state.columns
                         if (state.key, qualifier) not in self._column_seen]
        asked: set[bytes] = set()
        for state, qualifier, value in undecided:  # parsed outside the lock: writers wait on it
            tenant = uuid.UUID(state.key.split(b"#", 1)[0].decode())
            for event in self._parse(state.key, qualifier, value).ids:
                if event in self._done_seen or event in asked:
                    continue
                if now - self._not_done.get(event, -1e9) < self.fold_after / 2:
                    continue
                asked.add(event)
                unknown[keys.dedup_key(tenant, uuid.UUID(bytes=event))] = event
        if not unknown:
            return
        found = self.done_keys(list(unknown))
        seen = time.monotonic()  # the marks found were visible by now
        with self._lock:
            for dk, event in unknown.items():
                if dk in found:
                    self._done_seen[event] = seen
                    self._not_done.pop(event, None)
                else:
                    self._not_done[event] = seen

    def _ready(self, state: RowState, read_at: float) -> tuple[set[bytes], float | None]:
        """The events of a row read at ``read_at`` that may be folded (seen done at least
        ``fold_after`` before the read), and when the next ones may (None: nothing known to
        become ready)."""
        ready: set[bytes] = set()
        upcoming: list[float] = []
        now = read_at
        for qualifier, _, value in state.columns:
            parsed = self._parse(state.key, qualifier, value)
            with self._lock:
                seen = self._column_seen.get((state.key, qualifier))
            if seen is not None:  # every event of the column is done: the column decides
                if now - seen >= self.fold_after:
                    ready |= parsed.ids
                else:
                    upcoming.append(seen + self.fold_after)
                continue
            for event in parsed.ids:  # a column of an attempt that died: event by event
                seen = self._done_seen.get(event)
                if seen is not None and now - seen >= self.fold_after:
                    ready.add(event)
                elif seen is not None:
                    upcoming.append(seen + self.fold_after)
        return ready, min(upcoming, default=None)

    def _fold_row(self, state: RowState, report: FoldReport, read_at: float) -> None:
        """Fold what is ready in one row read at ``read_at`` (one CheckAndMutateRow)."""
        ready, upcoming = self._ready(state, read_at)
        columns = sorted(state.columns)  # qualifier (= time) order: an event's first entry counts
        touched = [(q, stamp, self._parse(state.key, q, v)) for q, stamp, v in columns
                   if ready and not ready.isdisjoint(self._parse(state.key, q, v).ids)]
        counted: set[bytes] = set()
        folded = []
        for _, _, parsed in touched:
            for entry in parsed.entries:
                if entry[0] in ready and entry[0] not in counted:
                    counted.add(entry[0])
                    folded.append(entry)
        left = sum(len(v) for _, _, v in state.columns) // ENTRY.size - sum(
            sum(e[0] in ready for e in p.entries) for _, _, p in touched)
        report.waiting += left
        orphan_marks = state.done - {q for q, _, _ in state.columns}
        if not folded and not orphan_marks:
            self._fold_later(state.key, upcoming, left)
            return
        request = self.rpc.new_check_and_mutate(AGGREGATE_TABLE, state.key)
        if state.token is None:
            request.predicate_filter.CopyFrom(self.rpc.row_filter(chain={"filters": [
                {"family_name_regex_filter": COUNTS},
                {"column_qualifier_regex_filter": FOLD_TOKEN},
            ]}))
            mutations = request.false_mutations
        else:
            request.predicate_filter.CopyFrom(self.rpc.row_filter(chain={"filters": [
                {"family_name_regex_filter": COUNTS},
                {"column_qualifier_regex_filter": FOLD_TOKEN},
                {"value_regex_filter": state.token},
            ]}))
            mutations = request.true_mutations
        stamp = now_micros()
        for column, amount in pending_sums(folded).items():
            qualifier = column.encode()
            total = state.counters.get(qualifier, 0) + amount
            delete_column(mutations, COUNTS, qualifier)  # one version: the new count
            set_cell(mutations, COUNTS, qualifier, total.to_bytes(8, "big", signed=True), stamp)
        delete_column(mutations, COUNTS, FOLD_TOKEN)
        set_cell(mutations, COUNTS, FOLD_TOKEN, secrets.token_hex(8).encode(), stamp)
        for qualifier, column_stamp, parsed in touched:
            kept = [e for e in parsed.entries if e[0] not in ready]
            delete_column(mutations, PENDING, qualifier)
            if kept:
                set_cell(mutations, PENDING, qualifier, b"".join(ENTRY.pack(*e) for e in kept),
                         column_stamp)
            else:
                delete_column(mutations, PENDING, qualifier + DONE_SUFFIX)
        for qualifier in orphan_marks:  # a done cell whose column went before it was written
            delete_column(mutations, PENDING, qualifier + DONE_SUFFIX)
        if self.rpc.check_and_mutate(request) == (state.token is not None):
            report.folded_rows += 1
            report.folded_entries += len(folded)
            with self._lock:  # what was folded is gone from the row
                cache = self._parsed.get(state.key, {})
                for qualifier, _, parsed in touched:
                    cache.pop((qualifier, len(parsed.entries) * ENTRY.size), None)
                if not cache:
                    self._parsed.pop(state.key, None)
            if left:
                self._fold_later(state.key, upcoming, left)
        else:  # another fold changed the row since we read it: read it again next pass
            report.conflicts += 1
            with self._lock:
                self._to_fold[state.key] = 0.0

    def _fold_later(self, row: bytes, upcoming: float | None, waiting: int) -> None:
        """Look at ``row`` again when its next events may be folded (``upcoming``), or in
        ``fold_after`` when none of its ``waiting`` entries is known to be done yet."""
        if not waiting:
            return
        now = time.monotonic()
        due = upcoming if upcoming is not None else now + self.fold_after
        with self._lock:
            self._to_fold[row] = min(max(due, now), self._to_fold.get(row, float("inf")))

    def _forget_old(self) -> None:
        """Drop what the fold knows about events and columns long done (their entries are
        folded; one a pass missed is looked up again)."""
        horizon = time.monotonic() - 20 * self.fold_after
        with self._lock:
            self._done_seen = {e: t for e, t in self._done_seen.items() if t > horizon}
            self._not_done = {e: t for e, t in self._not_done.items() if t > horizon}
            self._column_seen = {c: t for c, t in self._column_seen.items() if t > horizon}

    # Attempts -------------------------------------------------------------------------------
    def count_attempt(self, message_id: str, published: datetime) -> int:
        """Count one failed processing of a message; returns the failures so far. Ours, not
        Pub/Sub's ``delivery_attempt``, which also counts deliveries a killed consumer never
        settled (those are not the message's fault).

        Keyed by message id *and* publish time: a message id is unique only within its topic's
        life, and an emulator restarted while Bigtable keeps its data numbers messages from 1
        again, so an id alone would inherit another message's failures."""
        values = self.rpc.read_modify_write(DEDUP_TABLE, keys.attempts_key(message_id, published),
                                            [(SEEN, b"attempts", 1)])
        return int64(values[b"attempts"])


