"""The Bigtable side of the consumer: facts, aggregates and dedup marks, written idempotently.

Write protocol for one batch (see docs/streaming.md for the argument):

1. read ``events_dedup`` for the batch: events already marked ``done`` are duplicates (skip);
2. for each aggregate row the batch touches, ONE ``ReadModifyWriteRow`` that increments the
   counters by the batch's sum and appends ``+`` to a per-event marker column ``~<event hex>``;
   the row comes back with every marker, so each writer learns atomically whether its
   application of an event to that row is the first (marker ``+``) or a repeat (``++``: an
   earlier attempt that crashed before step 4, or a concurrent duplicate). Markers name each
   increment call by a token; the first live one counts, a later call takes its own back, and
   calls of killed attempts are taken back by whoever sees them (`EventStore._apply_rows`); no
   increment is issued later than ``marker_ttl / 2`` after the read of step 1 (the attempt
   starts again instead);
3. write the fact rows (deterministic keys and cell timestamps: a rewrite is a no-op);
4. mark the events ``done`` in ``events_dedup``; the caller acks only after this returns;
5. ``marker_ttl`` seconds later, delete the markers of done events (a sweep catches those a
   crash left behind).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pulse_local.config import Settings
from pulse_local.events import ResponseEvent
from pulse_local.streaming import keys
from pulse_local.streaming.keys import Dimension, Granularity
from pulse_local.streaming.quality import QualityResult
from pulse_local.streaming.rpc import (
    RPC_TIMEOUT,
    BigtableRpc,
    BigtableWriteError,
    PendingWrite,
    gapic_client,
)

if TYPE_CHECKING:
    from google.cloud.bigtable.data import BigtableDataClient, Row

log = logging.getLogger("pulse_local.streaming")

FACT_TABLE = "events_fact"
AGGREGATE_TABLE = "events_aggregate"
DEDUP_TABLE = "events_dedup"
EVENT, META, QUALITY, COUNTS, SEEN = "event", "meta", "quality", "counts", "seen"

#: Counter columns of an aggregate row (64-bit big-endian integers).
COUNTERS = ("events", "complete", "scored", "flagged", "score_milli", "max_score_milli")
#: Qualifier regex matching the day (or all-time) counters and the ``hHH.`` hourly counters
#: of a day row (and not the ``~`` markers).
COUNTER_QUALIFIER_REGEX = rb"(h[0-2][0-9]\.)?[a-z_]+"
MARKER_PREFIX = b"~"
#: Markers checked and deleted per call by the sweep.
_SWEEP_CHUNK = 1000
APPLY, UNDO = b"+", b"-"
#: Attempts of a batch that stalled past ``marker_ttl / 2`` before it is nacked.
_STALL_RETRIES = 3
#: Dedup marks older than this are ignored (the family's GC age; GC itself is lazy).
DEDUP_WINDOW = timedelta(days=7)
#: Cell timestamps must be multiples of 1000 µs on Bigtable.
_MS = 1000


class _Stalled(Exception):
    """An increment would have been issued too long after `done` was read."""

CONSUMER_VERSION = "pulse-local-streaming/1"


def bigtable_data_client(settings: Settings) -> BigtableDataClient:
    """A data-API client for the stack's emulator (local) or GCP, chosen like the admin client
    of `pulse_local.resources` (``BIGTABLE_EMULATOR_HOST`` wins). Close it with ``.close()``."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud.bigtable.data import BigtableDataClient

    from pulse_local.errors import ConfigError
    from pulse_local.resources import bigtable_endpoint
    from pulse_local.resources.clients import _bigtable_emulator_env

    with _bigtable_emulator_env(bigtable_endpoint(settings, settings.profile)):
        try:
            return BigtableDataClient(project=settings.project)
        except DefaultCredentialsError as exc:
            raise ConfigError(
                "no Google credentials for Bigtable: run `gcloud auth application-default "
                "login`, or use the emulators (PULSE_PROFILE=local)") from exc


def marker_qualifier(event_id: uuid.UUID) -> bytes:
    """The per-event marker column of an aggregate row."""
    return MARKER_PREFIX + event_id.hex.encode()


def application_token() -> bytes:
    """A fresh token for one increment call: its wall-clock milliseconds and a random part."""
    return f"{int(time.time() * 1000)}.{secrets.token_hex(4)}".encode()


def applied(token: bytes) -> bytes:
    """The marker entry recording that the attempt ``token`` counted the event in a row."""
    return APPLY + token + b";"


def undone(token: bytes) -> bytes:
    """The marker entry recording that the application ``token`` was taken back."""
    return UNDO + token + b";"


def live_applications(value: bytes) -> list[bytes]:
    """Tokens of the applications a marker records and that were not taken back, in the
    order Bigtable applied them (appends are ordered within a row)."""
    entries = [e for e in value.split(b";") if e]
    taken_back = {e[1:] for e in entries if e[:1] == UNDO}
    return [e[1:] for e in entries if e[:1] == APPLY and e[1:] not in taken_back]


def token_age_seconds(token: bytes) -> float:
    """How long ago the increment call ``token`` was issued."""
    return time.time() - int(token.split(b".", 1)[0]) / 1000


def int64(value: bytes) -> int:
    """Decode a Bigtable counter cell."""
    return int.from_bytes(value, "big", signed=True)


@dataclass(frozen=True)
class Delivered:
    """A valid event with its Pub/Sub metadata and quality results, ready to store."""

    event: ResponseEvent
    message_id: str
    publish_time: datetime
    data: bytes
    quality: QualityResult


def hour_qualifier(hour: int, counter: str) -> str:
    """The column of an hourly counter in a day row: ``h13.events`` (hour in UTC)."""
    return f"h{hour:02d}.{counter}"


def contributions(event: ResponseEvent, quality: QualityResult) -> dict[bytes, dict[str, int]]:
    """The aggregate rows an event adds to, with the counter deltas (column -> amount) of each.

    Rows: the tenant's all-time row, and the day row of dimensions ``all``, ``form`` and
    ``assessment``. A day row holds the day's counters and, as ``hHH.<counter>`` columns, the
    counters of each hour of that day (UTC): one increment call updates both, so an event
    touches 4 rows, not 7 (and leaves 4 markers). Scores are in thousandths (increments are
    integers).
    """
    deltas = {"events": 1}
    if event.is_complete:
        deltas["complete"] = 1
    if not quality.ok:
        deltas["flagged"] = 1
    if event.total_score is not None:
        deltas["scored"] = 1
        deltas["score_milli"] = round(event.total_score * 1000)
        deltas["max_score_milli"] = round((event.max_score or 0.0) * 1000)
    ts, tenant = event.submitted_at, event.tenant_id
    hour = ts.astimezone(UTC).hour
    day_deltas = {**deltas, **{hour_qualifier(hour, c): n for c, n in deltas.items()}}
    rows = {keys.aggregate_key(tenant, Dimension.ALL, keys.ALL_VALUE, Granularity.TOTAL,
                               keys.TOTAL_BUCKET): dict(deltas)}
    day = keys.bucket(ts, Granularity.DAY)
    for dimension, value in ((Dimension.ALL, keys.ALL_VALUE), (Dimension.FORM, event.form_id),
                             (Dimension.ASSESSMENT, str(event.assessment_id))):
        rows[keys.aggregate_key(tenant, dimension, value, Granularity.DAY, day)] = dict(day_deltas)
    return rows


def add_fact(request: Any, item: Delivered) -> None:
    """Append the fact row of ``item`` to a MutateRows protobuf request. Cell timestamps are
    the event time, so rewriting the same event writes the very same cells."""
    event = item.event
    key = keys.fact_key(event.tenant_id, event.user_id, event.submitted_at, event.event_id)
    ts = keys.to_millis(event.submitted_at) * _MS
    entry = request.entries.add(row_key=key)
    for family, qualifier, value in (
        (EVENT, b"json", item.data),
        (META, b"message_id", item.message_id.encode()),
        (META, b"publish_time", item.publish_time.isoformat().encode()),
        (META, b"consumer", CONSUMER_VERSION.encode()),
        (QUALITY, b"status", item.quality.status.encode()),
        (QUALITY, b"failures", json.dumps(item.quality.failures, sort_keys=True).encode()),
        (QUALITY, b"checks", ",".join(item.quality.checks).encode()),
    ):
        cell = entry.mutations.add().set_cell
        cell.family_name, cell.column_qualifier = family, qualifier
        cell.timestamp_micros, cell.value = ts, value


@dataclass
class WriteResult:
    """What `EventStore.write` did with each item of a batch (indexes into the batch)."""

    written: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    compensated: int = 0


def _counter_rules(amounts: dict[str, int]) -> list[Any]:
    """Increment rules for the non-zero counter amounts (column -> amount) of one row."""
    return [(COUNTS, column.encode(), n) for column, n in amounts.items() if n]


def _delete_counts_column(entry: Any, qualifier: bytes, before: int | None = None) -> None:
    """Add to a MutateRows entry: delete a ``counts`` column, or with ``before`` (µs) only its
    cells older than that timestamp (the range end is exclusive: that cell stays)."""
    deletion = entry.mutations.add().delete_from_column
    deletion.family_name, deletion.column_qualifier = COUNTS, qualifier
    if before is not None:
        deletion.time_range.end_timestamp_micros = before


@dataclass
class _Pending:
    row: bytes
    deltas: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    events: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)
    #: Counter column -> timestamp of the cell this attempt's increment wrote.
    stamps: dict[bytes, int] = field(default_factory=dict)


class EventStore:
    """Writes batches of events to the three tables; thread-safe (one per process)."""

    def __init__(self, rpc: BigtableRpc, *, marker_ttl: float = 5.0,
                 max_in_flight: int = 64) -> None:
        self.rpc = rpc
        self.marker_ttl = marker_ttl
        #: A live application not taken back after this long belongs to a killed attempt.
        self.dead_after = marker_ttl
        #: Increments time out well before `dead_after`: a live attempt's call that is still
        #: in flight then must not look dead to another attempt (a timed-out call that did
        #: apply is left for the redelivery to heal, like a killed attempt's).
        self.rmw_timeout = max(1.0, self.dead_after / 2)
        #: Increment calls in flight at once (each is a gRPC future, not a thread).
        self.max_in_flight = max_in_flight
        self._cleanup_lock = threading.Lock()
        self._cleanup: list[tuple[float, bytes, list[bytes], dict[bytes, int]]] = []

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
        since = int((time.time() - DEDUP_WINDOW.total_seconds()) * 1000) * _MS
        window: dict[str, int] = {"start_timestamp_micros": since}
        if done_before is not None:
            window["end_timestamp_micros"] = keys.to_millis(done_before) * _MS
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
                log.warning("batch of %d stalled past marker_ttl/2 (%.1f s) before an increment "
                            "(attempt %d of %d); starting it again", len(items),
                            self.marker_ttl / 2, attempt, _STALL_RETRIES)
        raise BigtableWriteError(f"a batch of {len(items)} stalled {_STALL_RETRIES} times "
                                 "(Bigtable overloaded?); it is retried by redelivery")

    def _write_once(self, items: Sequence[Delivered]) -> WriteResult:
        """One attempt of `write`; raises `_Stalled` when an increment would be issued more
        than ``marker_ttl / 2`` after `done` was read (see below)."""
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
        facts = self.rpc.new_mutate_request(FACT_TABLE)
        todo: list[tuple[int, bytes, dict[bytes, dict[str, int]]]] = []
        for dk, index in first.items():
            if dk in done:
                result.duplicates.append(index)
                continue
            item = items[index]
            try:
                rows = contributions(item.event, item.quality)
                add_fact(facts, item)
            except ValueError as exc:  # RowKeyTooLong, timestamp outside the key range
                result.failed[index] = str(exc)
                continue
            todo.append((index, dk, rows))
        if not todo:
            return result

        # A concurrent duplicate that finished after we read `done` has its markers deleted
        # `marker_ttl` s after it finished; an increment issued later than that would look like
        # the first. So no increment is issued later than marker_ttl / 2 after the read: the
        # attempt starts again instead (rows already incremented are corrected by their marker).
        deadline = started + self.marker_ttl / 2

        pending: dict[bytes, _Pending] = {}
        for index, _, rows in todo:
            event_id = items[index].event.event_id
            for row, deltas in rows.items():
                p = pending.get(row) or pending.setdefault(row, _Pending(row))
                for column, amount in deltas.items():
                    p.deltas[column] += amount
                p.events[event_id] = deltas
        # every row's call has ended when this returns or raises (before a retry or a failure)
        result.compensated = self._apply_rows(list(pending.values()), deadline)
        self.rpc.mutate_rows(facts)
        marks = self.rpc.new_mutate_request(DEDUP_TABLE)
        now_us = int(time.time() * 1000) * _MS
        for index, dk, _ in todo:
            cell = marks.entries.add(row_key=dk).mutations.add().set_cell
            cell.family_name, cell.column_qualifier = SEEN, b"done"
            cell.timestamp_micros, cell.value = now_us, items[index].message_id.encode()
        self.rpc.mutate_rows(marks)
        result.written = [index for index, _, _ in todo]
        self._schedule_cleanup(pending.values())
        return result

    def _calls(self, calls: Iterable[tuple[_Pending, bytes, list[Any]]],
               deadline: float | None = None) -> tuple[list[tuple[_Pending, bytes,
                                                              dict[bytes, bytes]]],
                                                   BaseException | None]:
        """Issue ``(row, token, rules)`` increments with at most `max_in_flight` in flight;
        returns the answers of those that succeeded and the first error. Every call issued has
        ended when this returns. With a ``deadline``, no call is issued after it (`_Stalled`)."""
        in_flight: deque[tuple[_Pending, bytes, PendingWrite]] = deque()
        answers: list[tuple[_Pending, bytes, dict[bytes, bytes]]] = []
        error: BaseException | None = None

        def settle_oldest() -> None:
            nonlocal error
            row, token, call = in_flight.popleft()
            try:
                answers.append((row, token, call.values()))
            except Exception as exc:  # noqa: BLE001 - kept, raised once every call has ended
                error = error or exc
                return
            for column, stamp in call.stamps.items():
                if not column.startswith(MARKER_PREFIX):
                    row.stamps[column] = max(stamp, row.stamps.get(column, 0))

        pending_calls = iter(calls)
        while True:
            if len(in_flight) >= self.max_in_flight:
                settle_oldest()
            if error is not None:
                break
            # the next call is made (and its token taken) only once there is room for it
            if (item := next(pending_calls, None)) is None:
                break
            if deadline is not None and time.monotonic() > deadline:
                error = _Stalled()
                break
            row, token, rules = item
            in_flight.append((row, token, self.rpc.start_read_modify_write(
                AGGREGATE_TABLE, row.row, rules, timeout=self.rmw_timeout)))
        while in_flight:
            settle_oldest()
        return answers, error

    def _apply_rows(self, rows: Sequence[_Pending], deadline: float) -> int:
        """Increment every aggregate row of a batch, then take back what must not count;
        returns the number of applications taken back.

        Each increment appends ``+<token>;`` to each event's marker and returns the markers
        atomically. Per event the first live application (in Bigtable's order) is the one that
        counts. This attempt takes back its own application when it is not the first, and,
        healing, any later live application older than ``dead_after`` (an attempt killed
        between its increment and its own take-back: live appliers take back within
        milliseconds). Each take-back names the application (``-<token>;``)."""

        def increments() -> Iterator[tuple[_Pending, bytes, list[Any]]]:
            for pending in rows:
                token = application_token()  # made just before its call: its age is the call's
                rules = _counter_rules(pending.deltas)
                rules += [(COUNTS, marker_qualifier(e), applied(token)) for e in pending.events]
                yield pending, token, rules

        answers, error = self._calls(increments(), deadline)
        fixes: list[tuple[_Pending, bytes, list[Any]]] = []
        compensated = 0
        for pending, token, values in answers:
            try:
                rules, back, healed = self._take_back(pending, token, values)
            except BigtableWriteError as exc:
                error = error or exc
                continue
            if rules:
                fixes.append((pending, token, rules))
                compensated += back
                log.warning("row %r: %d application(s) counted more than once (an earlier "
                            "attempt or a concurrent duplicate; %d left by killed attempts); "
                            "taking them back", pending.row, back, healed)
        _, fix_error = self._calls(fixes)
        error = error or fix_error
        if error is not None:
            raise error
        return compensated

    def _take_back(self, pending: _Pending, token: bytes, values: dict[bytes, bytes]
                   ) -> tuple[list[Any], int, int]:
        """The rules undoing what must not count in one row after this attempt's increment
        (none when nothing must), how many applications they take back, and how many of those
        are killed attempts'. Raises `BigtableWriteError` when the answer lacks this attempt's
        own marker."""
        back: dict[uuid.UUID, list[bytes]] = {}
        for event_id in pending.events:
            live = live_applications(values.get(marker_qualifier(event_id), b""))
            if token not in live:
                raise BigtableWriteError(
                    f"row {pending.row!r}: the increment's answer lacks this attempt's marker "
                    f"for event {event_id}; the batch is retried (the redelivery takes back "
                    "whatever this attempt counted)")
            extra = [t for t in live[1:]
                     if t == token or token_age_seconds(t) > self.dead_after]
            if extra:
                back[event_id] = extra
        if not back:
            return [], 0, 0
        change: dict[str, int] = defaultdict(int)
        for event_id, tokens in back.items():
            for column, amount in pending.events[event_id].items():
                change[column] -= amount * len(tokens)
        rules = _counter_rules(change)
        rules += [(COUNTS, marker_qualifier(e), b"".join(undone(t) for t in ts))
                  for e, ts in back.items()]
        healed = sum(len([t for t in ts if t != token]) for ts in back.values())
        return rules, sum(len(ts) for ts in back.values()), healed

    # Markers --------------------------------------------------------------------------------
    def _schedule_cleanup(self, rows: Iterable[_Pending]) -> None:
        due = time.monotonic() + self.marker_ttl
        with self._cleanup_lock:
            self._cleanup += [(due, p.row, [marker_qualifier(e) for e in p.events], p.stamps)
                              for p in rows]

    def cleanup_due(self) -> int:
        """Delete the markers whose ttl has passed, and the counter versions older than the
        ones their increments wrote; returns how many markers.

        Every increment writes a new version of each counter cell. Bigtable drops the old ones
        at compaction (the family's ``max_versions: 1``); the emulator never does, so a hot row
        grew by ~12 cells per batch and each increment on it got slower (measured: 0.8 ms per
        call at 2,000 increments, 1.5 ms at 6,000). Deleting versions older than one this
        attempt wrote is safe at any time: the newest version holds the whole count."""
        now = time.monotonic()
        with self._cleanup_lock:
            due = [c for c in self._cleanup if c[0] <= now]
            self._cleanup = [c for c in self._cleanup if c[0] > now]
        if not due:
            return 0
        merged: dict[bytes, list[bytes]] = defaultdict(list)
        newest: dict[bytes, dict[bytes, int]] = defaultdict(dict)
        for _, row, qualifiers, stamps in due:
            merged[row] += qualifiers
            for column, stamp in stamps.items():
                newest[row][column] = max(stamp, newest[row].get(column, 0))
        request = self.rpc.new_mutate_request(AGGREGATE_TABLE)
        for row, qualifiers in merged.items():
            entry = request.entries.add(row_key=row)
            for qualifier in qualifiers:
                _delete_counts_column(entry, qualifier)
            for column, stamp in newest[row].items():
                _delete_counts_column(entry, column, before=stamp)
        self.rpc.mutate_rows(request)
        return sum(len(qs) for qs in merged.values())

    def safe_sweep_age(self) -> timedelta:
        """The youngest ``done`` mark whose markers a sweep may delete: the delayed cleanup
        deletes them ``marker_ttl`` after the done write *returned*, and that write (stamped
        before it is sent) can take up to ``RPC_TIMEOUT``; plus 30 s for clocks of consumers
        on other machines (the stamp is the writer's clock, the threshold the sweeper's)."""
        return timedelta(seconds=self.marker_ttl + RPC_TIMEOUT + 30)

    def sweep_markers(self, older_than: timedelta = timedelta(minutes=5), *,
                      stop: threading.Event | None = None) -> int:
        """Delete the markers of events marked ``done`` more than ``older_than`` ago (left by a
        crash between marking done and the delayed cleanup, or by attempts killed before it).
        Safe when ``older_than >= safe_sweep_age()``, which the consumer uses; smaller values
        are for tests. Scans the aggregate table a row at a time (a hot row can hold tens of
        thousands of markers, more than gRPC's default 4 MB message): the consumer runs it on a
        timer (`StreamingOptions.sweep_seconds`), not per batch. A row that fails is logged and
        skipped (the next pass tries it again). Returns the markers deleted."""
        until = datetime.now(UTC) - older_than
        row_filter = self.rpc.row_filter(chain={"filters": [
            {"family_name_regex_filter": COUNTS},
            {"column_qualifier_regex_filter": MARKER_PREFIX + b".*"},
            {"timestamp_range_filter": {"end_timestamp_micros": keys.to_millis(until) * _MS}},
            {"strip_value_transformer": True},
        ]})
        deleted = 0
        for row_key, qualifiers in self.rpc.scan_columns(AGGREGATE_TABLE, row_filter):
            if stop is not None and stop.is_set():
                break
            try:
                deleted += self._sweep_row(row_key, list(dict.fromkeys(qualifiers)), until)
            except Exception as exc:  # noqa: BLE001 - one row must not stop the pass; next pass retries
                log.warning("sweeping markers of row %r failed (the next pass retries): %s",
                            row_key[:120], exc)
        return deleted

    def _sweep_row(self, row_key: bytes, qualifiers: list[bytes], until: datetime) -> int:
        """Delete the markers among ``qualifiers`` of one row whose event was done before
        ``until``, checking and deleting 1,000 at a time (a hot row can hold tens of thousands).
        """
        tenant = uuid.UUID(row_key.split(b"#", 1)[0].decode())
        deleted = 0
        for first in range(0, len(qualifiers), _SWEEP_CHUNK):
            by_key = {keys.dedup_key(tenant, uuid.UUID(hex=q[1:].decode())): q
                      for q in qualifiers[first:first + _SWEEP_CHUNK]}
            done = self.done_keys(list(by_key), done_before=until)
            stale = [q for dk, q in by_key.items() if dk in done]
            if not stale:
                continue
            request = self.rpc.new_mutate_request(AGGREGATE_TABLE)
            entry = request.entries.add(row_key=row_key)
            for qualifier in stale:
                _delete_counts_column(entry, qualifier)
            self.rpc.mutate_rows(request)
            deleted += len(stale)
        return deleted

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


def read_counters(row: Row, hour: int | None = None) -> dict[str, int]:
    """The counters of an aggregate row, or of one hour of a day row (missing ones are 0)."""
    prefix = "" if hour is None else hour_qualifier(hour, "")
    values = dict.fromkeys(COUNTERS, 0)
    for cell in row.cells:
        name = cell.qualifier.decode(errors="replace")
        if cell.family == COUNTS and name.startswith(prefix) and name[len(prefix):] in values:
            values[name[len(prefix):]] = int64(cell.value)
    return values


def hours_in(row: Row) -> list[int]:
    """The hours (UTC) that have counters in a day row, in order."""
    return sorted({int(c.qualifier[1:3]) for c in row.cells
                   if c.family == COUNTS and c.qualifier[:1] == b"h" and c.qualifier[3:4] == b"."})
