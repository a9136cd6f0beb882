"""The capture engine shared by the long-lived service (`serve`) and batch mode (`drain`).

One `Capture` opens the slot (creating it and backfilling inside its exported snapshot the
first time), streams pgoutput, groups complete transactions into batches, lands each batch as
Parquet files (`RawLayer`), persists the watermark, and only then confirms the position to
PostgreSQL. `serve` runs it until SIGTERM; `drain` runs it until a marker message written at
the start has come through, i.e. up to the WAL end at the time of the call. Grouping the
decoded stream into transactions and batches is `pulse_local.cdc.assembler` (no I/O).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self

import psycopg
from psycopg import sql

from pulse_local.cdc.assembler import DRAIN_PREFIX, Batch, TransactionAssembler
from pulse_local.cdc.backfill import copy_table
from pulse_local.cdc.config import StreamConfig, load_stream_config
from pulse_local.cdc.datastream import destination_table
from pulse_local.cdc.errors import (
    RESYNC_HINT,
    CdcError,
    SlotBusyError,
    SlotLostError,
)
from pulse_local.cdc.landing import RawLayer, StreamState, TableRows
from pulse_local.cdc.lsn import format_lsn
from pulse_local.cdc.pgoutput import DecodeError, Keepalive, Relation
from pulse_local.cdc.replication import ReplicationStream
from pulse_local.cdc.schema import Catalog, TableSchema
from pulse_local.cdc.typemap import libpq_options
from pulse_local.config import Settings

log = logging.getLogger("pulse_local.cdc")

#: Seconds between standby status updates / heartbeats while idle.
STATUS_INTERVAL = 1.0


@dataclass(frozen=True)
class DrainReport:
    """What one `drain` did."""

    backfilled_rows: int
    transactions: int
    changes: int
    files: int
    watermark_lsn: str
    seconds: float
    #: True when the CDC service held the slot and drain only waited for it to catch up.
    waited_for_service: bool = False


def raw_table_name(config: StreamConfig, namespace: str, name: str) -> str:
    """Raw relation name of a source table: ``<schema>_<table>``, as Datastream names it in a
    single target dataset (`pulse_local.cdc.datastream.destination_table`)."""
    return destination_table(namespace, name)


def table_mode(config: StreamConfig, namespace: str, name: str) -> str:
    """The write mode stream.yaml declares for a source table (its ``tables`` keys are table
    names in the configured schema, ``<schema>_<table>`` for other schemas)."""
    key = name if namespace == config.source.schema_name else destination_table(namespace, name)
    return config.mode_of(key)


def _admin_connect(settings: Settings) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(settings.admin_dsn(), autocommit=True, connect_timeout=10,
                               options=libpq_options(), application_name="pulse_cdc_catalog")
    except psycopg.OperationalError as exc:
        raise psycopg.OperationalError(
            f"cannot connect to PostgreSQL as {settings.db_admin_user} for CDC: {exc}. Start the "
            "stack (`pulse-local up`) or set PULSE_ADMIN_DATABASE_URL") from exc


class Capture:
    """One capture session: open, run until told to stop, close."""

    def __init__(self, settings: Settings, config: StreamConfig) -> None:
        self.settings = settings
        self.config = config
        self.slot = config.source.replication_slot
        self.publication = config.source.publication
        self.layer = RawLayer(config.raw_dir(settings), config.name)
        self.conn = _admin_connect(settings)
        self.catalog = Catalog(self.conn)
        self.stream: ReplicationStream | None = None
        self.state: StreamState | None = None
        self.assembler = TransactionAssembler(self._describe, self._new_shape, time.monotonic,
                                              on_quiet_commit=self._quiet_commit)
        self.confirmed = 0
        self.caught_up_at: float | None = None
        self.phase = "starting"
        self.totals = {"transactions": 0, "changes": 0, "files": 0, "backfilled_rows": 0}
        self._last_status = 0.0
        #: Landing runs on one writer thread; `pending` is the batch it is writing.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdc-writer")
        self.pending: Future[Batch] | None = None

    # Life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        self.conn.close()
        self.layer.close()

    def _slot_row(self) -> tuple[Any, ...] | None:
        return self.conn.execute(
            "select active, active_pid, wal_status, plugin, database, "
            "confirmed_flush_lsn::text from pg_replication_slots where slot_name = %s",
            (self.slot,)).fetchone()

    def open(self, phase: str = "streaming") -> None:
        """Check the slot against the landed state, backfill if this is the first run, and
        start streaming from the landed position."""
        self.layer.root.mkdir(parents=True, exist_ok=True)
        state = self.layer.read_state()
        if state is not None and (state.slot, state.publication) != (self.slot, self.publication):
            raise CdcError(
                f"{self.layer.root} was landed from slot {state.slot!r} / publication "
                f"{state.publication!r}, but the stream declares slot {self.slot!r} / publication "
                f"{self.publication!r}: re-synchronise with `{RESYNC_HINT}`")
        self.catalog.published_tables(self.publication)  # clear error if it does not exist
        row = self._slot_row()
        if state is None or not state.backfill_complete:
            if row is not None and row[0]:
                raise SlotBusyError(
                    f"replication slot {self.slot!r} is in use by PostgreSQL backend pid {row[1]} "
                    "(a CDC service doing its first backfill?): stop it first, or wait")
            if row is not None and state is None:
                raise CdcError(
                    f"replication slot {self.slot!r} exists but nothing was landed from it in "
                    f"{self.layer.root}: its earlier changes are not in the raw layer. "
                    f"Re-synchronise with `{RESYNC_HINT}` (drops the slot and backfills again)")
            if row is not None:  # our own slot from a backfill that did not finish
                log.info("previous backfill did not finish: dropping slot %s, starting over",
                         self.slot)
                self._drop_slot()
            self.layer.remove_orphans(None)
            self._backfill()
        else:
            self._check_slot(row)
            removed = self.layer.remove_orphans(state)
            if removed:
                log.info("removed %d file(s) of a flush that did not commit", removed)
            self.state = state
            self.stream = ReplicationStream(self.settings.admin_dsn())
            self._start(state.resume_lsn)
        assert self.state is not None
        self.confirmed = self.state.resume_lsn
        self.assembler.skip_upto = self.state.watermark
        self.assembler.known = {t: s for t in self.layer.tables()
                      if (d := self.layer.read_schema(t)) is not None for s in [d[0]]}
        self.phase = phase
        self._heartbeat()

    def _check_slot(self, row: tuple[Any, ...] | None) -> None:
        if row is None:
            raise SlotLostError(
                f"replication slot {self.slot!r} does not exist (dropped, or the database was "
                "recreated): changes after the last landed one cannot be recovered. "
                f"Re-synchronise the raw layer with `{RESYNC_HINT}` (new slot + full backfill)")
        active, pid, wal_status, plugin, _db, _confirmed = row
        if wal_status == "lost":
            raise SlotLostError(
                f"replication slot {self.slot!r} was invalidated (wal_status=lost: the WAL it "
                "needed was removed, see max_slot_wal_keep_size). Re-synchronise with "
                f"`{RESYNC_HINT}`")
        if plugin != "pgoutput":
            raise CdcError(f"replication slot {self.slot!r} uses plugin {plugin!r}, not "
                           f"pgoutput: drop it or re-synchronise with `{RESYNC_HINT}`")
        if active:
            raise SlotBusyError(
                f"replication slot {self.slot!r} is in use by PostgreSQL backend pid {pid} "
                "(another CDC service or drain): stop it first (`pulse-local down`), or wait")

    def _drop_slot(self) -> None:
        self.conn.execute("select pg_drop_replication_slot(%s)", (self.slot,))

    def _start(self, lsn: int) -> None:
        assert self.stream is not None
        try:
            self.stream.start(self.slot, self.publication, lsn)
        except psycopg.OperationalError as exc:
            if "is active for PID" in str(exc):
                raise SlotBusyError(f"replication slot {self.slot!r} is in use: {exc}") from exc
            if "does not exist" in str(exc):
                raise SlotLostError(f"replication slot {self.slot!r} does not exist: "
                                    f"re-synchronise with `{RESYNC_HINT}`") from exc
            raise

    # Backfill -----------------------------------------------------------------------------
    def _backfill(self) -> None:
        """Create the slot exporting a snapshot and copy every published table inside it."""
        self.phase = "backfill"
        self.stream = ReplicationStream(self.settings.admin_dsn())
        consistent_point, snapshot = self.stream.create_slot(self.slot)
        state = StreamState(self.config.name, self.slot, self.publication,
                            consistent_point=consistent_point)
        self.layer.write_state(state)  # a backfill is in progress with our slot
        started_ms = int(time.time() * 1000)
        rows_total = 0
        with psycopg.connect(self.settings.admin_dsn(), options=libpq_options(),
                             application_name="pulse_cdc_backfill") as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            conn.execute("SET LOCAL row_security = off")
            catalog = Catalog(conn)
            for namespace, name, columns, row_filter in catalog.published_tables(self.publication):
                schema = catalog.table_schema(namespace, name, columns)
                table = raw_table_name(self.config, namespace, name)
                self.layer.write_schema(table, schema, table_mode(self.config, namespace, name))
                if self.config.source.backfill:
                    rows_total += copy_table(conn, self.layer, table, schema, row_filter,
                                             consistent_point, started_ms,
                                             admin_user=self.settings.db_admin_user)
                else:
                    self.layer.write_file(table, TableRows(schema), consistent_point,
                                          consistent_point, chunk=0)
        state.backfill_complete = True
        state.watermark = state.resume_lsn = consistent_point
        state.backfilled_rows = rows_total
        self.layer.write_state(state)
        self.state = state
        self.totals["backfilled_rows"] = rows_total
        log.info("backfill done: %d rows at %s", rows_total, format_lsn(consistent_point))
        self._start(consistent_point)

    # Streaming ----------------------------------------------------------------------------
    def run(self, until: Callable[[], bool], timeout: float | None = None) -> None:
        """Stream and land until `until()` is true (checked at least every 100 ms) or, in
        drain mode, the marker has come through; then land what is pending."""
        assert self.stream is not None and self.state is not None
        interval = self.config.destination.flush_interval_ms / 1000
        max_changes = self.config.destination.max_batch_changes
        deadline = time.monotonic() + timeout if timeout is not None else None
        read, assembler, feed = self.stream.read, self.assembler, self.assembler.feed
        while True:
            data = read(0.05 if assembler.batch.changes == 0 else max(0.0, min(0.05, interval)))
            if data is not None:
                keepalive = feed(data)
                if keepalive is not None:
                    self._keepalive(keepalive)
            now = time.monotonic()
            batch = assembler.batch
            if batch.changes and (now - batch.started >= interval
                                  or batch.changes >= max_changes):
                self.flush(wait=False)
            if self.pending is not None and self.pending.done():
                self._collect()
            if assembler.marker_reached and assembler.txn is None:
                self.flush()
                self._confirm_idle(self.confirmed)
                return
            if data is None or now - self._last_status >= STATUS_INTERVAL:
                if until():
                    self.flush()
                    return
                if now - self._last_status >= STATUS_INTERVAL:
                    self._status()
            if deadline is not None and now > deadline:
                raise CdcError(f"drain did not reach the end of the WAL within {timeout:.0f} s "
                               f"(landed up to {format_lsn(self.state.watermark)})")

    def _status(self) -> None:
        assert self.stream is not None
        self.stream.send_status(self.confirmed)
        self._last_status = time.monotonic()
        self._heartbeat()

    def _heartbeat(self) -> None:
        state = self.state
        self.layer.write_heartbeat({
            "phase": self.phase, "slot": self.slot, "stream": self.config.name,
            "confirmed_lsn": format_lsn(self.confirmed),
            "watermark": format_lsn(state.watermark) if state else None,
            "caught_up_at": self.caught_up_at,
        })

    def _confirm_idle(self, wal_end: int) -> None:
        """Nothing pending: everything the server sent up to `wal_end` is landed."""
        assert self.stream is not None
        if self.assembler.idle and self.pending is None:
            self.confirmed = max(self.confirmed, wal_end)
            self.caught_up_at = time.time()
            self.stream.send_status(self.confirmed)
            self._last_status = time.monotonic()

    def _keepalive(self, frame: Keepalive) -> None:
        """Answer a keepalive: confirm the WAL end when idle, else a status if asked."""
        if self.assembler.idle and self.pending is None:
            self._confirm_idle(frame.wal_end)
        elif frame.reply_requested:
            self._status()

    def _describe(self, rel: Relation) -> tuple[str, TableSchema]:
        """The raw table and shape of a Relation message (the assembler's ``describe``)."""
        return (raw_table_name(self.config, rel.namespace, rel.name),
                self.catalog.schema_from_relation(rel))

    def _new_shape(self, rel: Relation, table: str, schema: TableSchema) -> None:
        """Land a table's new shape (the assembler's ``on_new_shape``)."""
        self.layer.write_schema(table, schema, table_mode(self.config, rel.namespace, rel.name))

    def _quiet_commit(self, end_lsn: int) -> None:
        """A transaction with nothing of ours committed while the batch is empty: the
        position may advance (when no batch is being landed either)."""
        if self.pending is None:
            self.confirmed = max(self.confirmed, end_lsn)

    def flush(self, wait: bool = True) -> None:
        """Hand the pending batch to the writer thread (at most one batch in flight, so
        decoding continues while files are written); with `wait`, also wait until everything
        handed over is landed and confirmed."""
        if self.assembler.batch.changes:
            if self.pending is not None:
                self._collect(block=True)
            batch = self.assembler.take_batch()
            self.pending = self._writer.submit(self._land, batch)
        if wait and self.pending is not None:
            self._collect(block=True)

    def _land(self, batch: Batch) -> Batch:
        """Writer thread: files durable first, then the watermark (the commit point)."""
        assert self.state is not None
        for table, rows in batch.tables.items():
            if len(rows):
                try:
                    self.layer.write_file(table, rows, batch.first_lsn, batch.last_lsn)
                except DecodeError as exc:
                    raise CdcError(
                        f"cannot decode changes of {table} between "
                        f"{format_lsn(batch.first_lsn)} and {format_lsn(batch.last_lsn)}: {exc}. "
                        "This is a bug in pulse_local.cdc: keep the service log and the "
                        "source table's definition for the report") from exc
                self.totals["files"] += 1
        state = self.state
        state.watermark = batch.last_lsn
        state.resume_lsn = batch.end_lsn
        state.last_commit_time = batch.commit_time
        state.landed_changes += batch.changes
        self.layer.write_state(state)
        return batch

    def _collect(self, block: bool = False) -> None:
        """The writer finished a batch: confirm its position to PostgreSQL (re-raises the
        writer's error, if any)."""
        assert self.pending is not None and self.stream is not None
        if not block and not self.pending.done():
            return
        pending, self.pending = self.pending, None
        batch = pending.result()
        self.totals["transactions"] += batch.transactions
        self.totals["changes"] += batch.changes
        self.confirmed = max(self.confirmed, batch.end_lsn)
        self.stream.send_status(self.confirmed)
        self._last_status = time.monotonic()
        self._heartbeat()

    def emit_marker(self) -> None:
        """Write a transactional logical message: when it comes through the stream, every
        transaction committed before this call has been received."""
        self.assembler.marker_token = uuid.uuid4().hex
        self.conn.execute("select pg_logical_emit_message(true, %s, %s)",
                          (DRAIN_PREFIX, self.assembler.marker_token))


# Entry points ----------------------------------------------------------------------------
def drain(settings: Settings, config: StreamConfig | None = None, *,
          timeout: float = 300.0) -> DrainReport:
    """Land everything committed up to now (backfilling first if the slot is new), then stop.

    When the CDC service holds the slot, wait (up to `timeout`) until it has landed everything
    committed before this call instead."""
    config = config or load_stream_config()
    started = time.monotonic()
    with Capture(settings, config) as capture:
        try:
            capture.open(phase="draining")
        except SlotBusyError:
            return _wait_for_service(capture, started, timeout)
        capture.emit_marker()
        capture.run(until=lambda: False, timeout=timeout)
        capture.phase = "drained"
        capture._heartbeat()
        assert capture.state is not None
        return DrainReport(
            backfilled_rows=capture.totals["backfilled_rows"],
            transactions=capture.totals["transactions"], changes=capture.totals["changes"],
            files=capture.totals["files"], watermark_lsn=format_lsn(capture.state.watermark),
            seconds=round(time.monotonic() - started, 3))


def _wait_for_service(capture: Capture, started: float, timeout: float) -> DrainReport:
    capture.emit_marker()
    target = capture.conn.execute("select pg_current_wal_flush_lsn()::text").fetchone()
    assert target is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = capture.conn.execute(
            "select confirmed_flush_lsn >= %s::pg_lsn from pg_replication_slots "
            "where slot_name = %s", (target[0], capture.slot)).fetchone()
        if row is not None and row[0]:
            state = capture.layer.read_state()
            return DrainReport(0, 0, 0, 0, format_lsn(state.watermark) if state else "0/0",
                               round(time.monotonic() - started, 3), waited_for_service=True)
        time.sleep(0.02)
    raise CdcError(f"the CDC service holding slot {capture.slot!r} did not catch up to "
                   f"{target[0]} within {timeout:.0f} s: see `pulse-local logs cdc`")


def serve(settings: Settings, config: StreamConfig | None = None,
          stop: threading.Event | None = None) -> None:
    """Capture continuously until SIGTERM/SIGINT (or `stop` is set); reconnect with back-off
    when PostgreSQL goes away. Raises `CdcError` for what a restart cannot fix."""
    config = config or load_stream_config()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    delay = 0.2
    layer = RawLayer(config.raw_dir(settings), config.name)
    while not stop.is_set():
        capture: Capture | None = None
        try:
            capture = Capture(settings, config)
            capture.open()
            log.info("capturing %s through slot %s into %s", config.source.publication,
                     config.source.replication_slot, capture.layer.root)
            delay = 0.2
            capture.run(until=stop.is_set)
        except psycopg.OperationalError as exc:
            if capture is not None:
                _land_what_is_complete(capture)
            if stop.is_set():
                break
            log.warning("PostgreSQL connection lost (%s); reconnecting in %.1f s",
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc, delay)
            layer.write_heartbeat({"phase": "reconnecting", "slot": config.source.replication_slot,
                                   "error": str(exc)[:300]})
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
        except CdcError as exc:
            layer.write_heartbeat({"phase": "failed", "slot": config.source.replication_slot,
                                   "error": str(exc)})
            raise
        finally:
            if capture is not None:
                capture.close()
    layer.write_heartbeat({"phase": "stopped", "slot": config.source.replication_slot})
    log.info("stopped (pid %d)", os.getpid())


def _land_what_is_complete(capture: Capture) -> None:
    """After a lost connection: complete transactions already received are still good data
    (their position is confirmed at the next start, from the watermark)."""
    try:
        if capture.pending is not None:
            capture.pending.result()
            capture.pending = None
        if capture.assembler.batch.changes:
            capture._land(capture.assembler.take_batch())
    except (OSError, CdcError) as exc:
        log.warning("could not land the pending batch (it will be re-read): %s", exc)


def resync(settings: Settings, config: StreamConfig | None = None) -> DrainReport:
    """Start over: drop the slot (if any), delete the landed files and state, create a new slot
    and backfill every published table, then land changes up to now. Stop the CDC service
    first (it holds the slot)."""
    config = config or load_stream_config()
    with _admin_connect(settings) as conn:
        row = conn.execute("select active, active_pid from pg_replication_slots "
                           "where slot_name = %s", (config.source.replication_slot,)).fetchone()
        if row is not None and row[0]:
            raise SlotBusyError(
                f"replication slot {config.source.replication_slot!r} is in use by backend pid "
                f"{row[1]} (the CDC service?): stop it first (`pulse-local down`), then resync")
        if row is not None:
            conn.execute("select pg_drop_replication_slot(%s)", (config.source.replication_slot,))
    layer = RawLayer(config.raw_dir(settings), config.name)
    layer.wipe()
    return drain(settings, config)
