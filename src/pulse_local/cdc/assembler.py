"""pgoutput frames in, complete transactions grouped into batches out: no I/O.

`TransactionAssembler.feed` takes the CopyData frames of a ``START_REPLICATION`` stream in
order. Changes are collected per transaction (Begin .. Commit) and, at Commit, appended to the
open `Batch` (one `TableRows` per raw table); transactions at or below ``skip_upto`` (landed
before a crash, re-sent) are dropped. Keepalives are returned to the caller, which owns the
connection. Relations are resolved by the caller's ``describe`` (the catalog), and a new table
shape is announced through ``on_new_shape`` (the landing writes it). The replication loop that
drives it, lands batches and confirms positions is `pulse_local.cdc.engine.Capture`.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from pulse_local.cdc.errors import RESYNC_HINT, SchemaError
from pulse_local.cdc.landing import (
    DELETE,
    FRAME_TUPLE_OFFSET,
    INSERT,
    TRUNCATE,
    UPDATE_DELETE,
    UPDATE_INSERT,
    TableRows,
)
from pulse_local.cdc.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    Keepalive,
    Message,
    Relation,
    Truncate,
    Update,
    Value,
    XLogData,
    decode_copy_data,
    decode_message,
)
from pulse_local.cdc.schema import TableSchema

log = logging.getLogger("pulse_local.cdc")
_U32 = struct.Struct("!I").unpack_from
#: (message type, tuple marker) of the messages decoded in bulk -> change type.
_FRAME_TYPES = {(0x49, 0x4E): INSERT, (0x55, 0x4E): UPDATE_INSERT, (0x44, 0x4B): DELETE,
                (0x44, 0x4F): DELETE}

#: Prefix of the logical decoding message `drain` writes to know where "now" is in the stream.
DRAIN_PREFIX = "pulse_cdc.drain"


@dataclass
class _Txn:
    final_lsn: int
    commit_ms: int
    skip: bool
    seq: int = 0
    rows: dict[str, TableRows] = field(default_factory=dict)
    #: Rows of a table in an older shape (the table was altered inside the transaction).
    sealed: list[tuple[str, TableRows]] = field(default_factory=list)
    changes: int = 0
    marker: bool = False


@dataclass
class Batch:
    """Complete transactions not landed yet: rows per raw table and their LSN range."""

    tables: dict[str, TableRows] = field(default_factory=dict)
    first_lsn: int = 0
    last_lsn: int = 0
    end_lsn: int = 0
    commit_time: float = 0.0
    changes: int = 0
    transactions: int = 0
    started: float = 0.0


def union_schema(older: TableSchema, newer: TableSchema) -> TableSchema:
    """`newer` plus the columns only `older` has (rows of both shapes land in one file)."""
    if older is newer or older.same_shape(newer):
        return newer
    extra = tuple(c for c in older.columns if c.name not in newer.column_names)
    if not extra:
        return newer
    return TableSchema(newer.namespace, newer.name, newer.columns + extra, newer.key,
                       newer.replica_identity)


def _as_text(values: Sequence[Value]) -> list[str | None]:
    """A tuple's values with the unchanged-TOAST marker as NULL."""
    return [v if isinstance(v, str) else None for v in values]


def _ignore_quiet_commit(end_lsn: int) -> None:
    """Default `TransactionAssembler.on_quiet_commit`: nothing to do."""


class TransactionAssembler:
    """Groups the changes of a pgoutput stream into complete transactions and batches.

    ``describe(relation)`` gives the raw table name and shape of a Relation message;
    ``on_new_shape(relation, table, schema)`` is called when a table is seen in a shape not
    in ``known`` (then remembered); ``on_quiet_commit(end_lsn)`` when a transaction with
    nothing of ours in it (a drain marker) commits while the open batch is empty, so the
    caller may advance its confirmed position. ``clock`` stamps the start of a batch
    (`Batch.started`, for the caller's flush interval).
    """

    def __init__(self, describe: Callable[[Relation], tuple[str, TableSchema]],
                 on_new_shape: Callable[[Relation, str, TableSchema], None],
                 clock: Callable[[], float], *,
                 on_quiet_commit: Callable[[int], None] = _ignore_quiet_commit) -> None:
        self.describe = describe
        self.on_new_shape = on_new_shape
        self.on_quiet_commit = on_quiet_commit
        self.clock = clock
        self.relations: dict[int, tuple[str, TableSchema]] = {}
        #: Raw table -> the shape last announced (landed) for it.
        self.known: dict[str, TableSchema] = {}
        self.txn: _Txn | None = None
        self.batch = Batch()
        #: Transactions committed at or below this LSN were landed before (re-sent after a
        #: crash): skipped.
        self.skip_upto = 0
        #: The content of the drain marker message to look for, and whether it came through.
        self.marker_token: str | None = None
        self.marker_reached = False

    @property
    def idle(self) -> bool:
        """No transaction open and nothing in the batch."""
        return self.txn is None and self.batch.changes == 0

    def take_batch(self) -> Batch:
        """The open batch; a new empty one takes its place."""
        batch, self.batch = self.batch, Batch()
        return batch

    def feed(self, data: bytes) -> Keepalive | None:
        """Take one CopyData frame; returns it decoded when it is a keepalive (the caller
        answers it), else None."""
        # Hot path: Insert, Update without old tuple, Delete inside XLogData ('w' + 24 header
        # bytes, type, relation id, tuple marker): only recorded here, decoded in bulk later.
        if data[0] == 0x77 and len(data) > FRAME_TUPLE_OFFSET:
            change_type = _FRAME_TYPES.get((data[25], data[30]))
            if change_type is not None:
                txn = self.txn
                if txn is not None and not txn.skip:
                    (rel_id,) = _U32(data, 26)
                    table, schema = self.relations[rel_id]
                    txn.seq += 1
                    rows = txn.rows.get(table)
                    if rows is None or rows.schema is not schema:
                        rows = self._rows(txn, table, schema)
                    rows.add_frame(data, txn.final_lsn, txn.seq, change_type, txn.commit_ms)
                    txn.changes += 1
                return None
        frame = decode_copy_data(data)
        if isinstance(frame, Keepalive):
            return frame
        assert isinstance(frame, XLogData)
        msg = decode_message(frame.payload)
        txn = self.txn
        if isinstance(msg, Insert):
            if txn is not None and not txn.skip:
                table, schema = self.relations[msg.relation_id]
                txn.seq += 1
                self._rows(txn, table, schema).append(  # an insert has no unchanged values
                    cast("Sequence[str | None]", msg.new), txn.final_lsn, txn.seq, INSERT,
                    txn.commit_ms)
                txn.changes += 1
        elif isinstance(msg, Update):
            if txn is not None and not txn.skip:
                self._update(txn, msg)
        elif isinstance(msg, Delete):
            if txn is not None and not txn.skip:
                table, schema = self.relations[msg.relation_id]
                txn.seq += 1
                self._rows(txn, table, schema).append(
                    _as_text(msg.old),
                    txn.final_lsn, txn.seq, DELETE, txn.commit_ms)
                txn.changes += 1
        elif isinstance(msg, Begin):
            self.txn = _Txn(msg.final_lsn, msg.commit_time // 1000 + 946_684_800_000,
                            skip=msg.final_lsn <= self.skip_upto)
        elif isinstance(msg, Commit):
            self._commit(msg)
        elif isinstance(msg, Relation):
            self._relation(msg)
        elif isinstance(msg, Truncate):
            if txn is not None and not txn.skip:
                for rel_id in msg.relation_ids:
                    table, schema = self.relations[rel_id]
                    txn.seq += 1
                    self._rows(txn, table, schema).append(
                        [None] * len(schema.columns), txn.final_lsn, txn.seq, TRUNCATE,
                        txn.commit_ms)
                    txn.changes += 1
        elif (isinstance(msg, Message) and msg.prefix == DRAIN_PREFIX
              and self.marker_token is not None
              and msg.content.decode(errors="replace") == self.marker_token):
            if txn is not None:
                txn.marker = True
            else:
                self.marker_reached = True
        # Origin and Type messages need no action (types are resolved from the catalog).
        return None

    def _rows(self, txn: _Txn, table: str, schema: TableSchema) -> TableRows:
        """The transaction's rows of `table` in shape `schema`. When the table changed shape
        inside the transaction, the rows so far are set aside (merged at commit)."""
        rows = txn.rows.get(table)
        if rows is None or rows.schema is not schema:
            if rows is not None:
                txn.sealed.append((table, rows))
            rows = txn.rows[table] = TableRows(schema)
        return rows

    def _update(self, txn: _Txn, msg: Update) -> None:
        table, schema = self.relations[msg.relation_id]
        rows = self._rows(txn, table, schema)
        new: Sequence[str | None | object] = msg.new
        unchanged: list[str] | None = None
        if UNCHANGED in new:
            new = list(new)
            old = msg.old if msg.old_kind == "O" else None
            for i, value in enumerate(new):
                if value is UNCHANGED:
                    if old is not None and old[i] is not UNCHANGED:
                        new[i] = old[i]  # REPLICA IDENTITY FULL carries the old value
                    else:
                        new[i] = None
                        unchanged = unchanged or []
                        unchanged.append(schema.columns[i].name)
        if msg.old is not None:
            txn.seq += 1
            rows.append(_as_text(msg.old),
                        txn.final_lsn, txn.seq, UPDATE_DELETE, txn.commit_ms)
            txn.changes += 1
        txn.seq += 1
        rows.append(new, txn.final_lsn, txn.seq, UPDATE_INSERT,  # type: ignore[arg-type]
                    txn.commit_ms, unchanged)
        txn.changes += 1

    def _commit(self, msg: Commit) -> None:
        txn, self.txn = self.txn, None
        if txn is None:
            return
        if not txn.skip and (txn.rows or txn.sealed):
            batch = self.batch
            if batch.changes == 0:
                batch.started = self.clock()
                batch.first_lsn = msg.commit_lsn
            for table, rows in [*txn.sealed, *txn.rows.items()]:
                target = batch.tables.get(table)
                if target is None:
                    target = batch.tables[table] = TableRows(rows.schema)
                elif target.schema is not rows.schema:
                    shape = union_schema(target.schema, rows.schema)
                    target = batch.tables[table] = target.reshaped(shape)
                    rows = rows.reshaped(shape)
                target.extend(rows)
            batch.last_lsn = msg.commit_lsn
            batch.end_lsn = msg.end_lsn
            batch.commit_time = txn.commit_ms / 1000
            batch.changes += txn.changes
            batch.transactions += 1
        elif not txn.skip and self.batch.changes == 0:
            # nothing of ours in it (a drain marker): the position may advance
            self.on_quiet_commit(msg.end_lsn)
        if txn.marker:
            self.marker_reached = True

    def _relation(self, rel: Relation) -> None:
        table, schema = self.describe(rel)
        self.relations[rel.relation_id] = (table, schema)
        previous = self.known.get(table)
        if previous is not None and previous.same_shape(schema):
            # reuse the identical object so batches keep one shape per table
            self.relations[rel.relation_id] = (table, previous)
            return
        if previous is not None:
            added = [c for c in schema.column_names if c not in previous.column_names]
            dropped = [c for c in previous.column_names if c not in schema.column_names]
            log.info("schema of %s changed: added %s, dropped %s", table, added or "-",
                     dropped or "-")
            changed = [c.name for c in schema.columns for p in previous.columns
                       if c.name == p.name and c.type.duckdb_type != p.type.duckdb_type]
            if changed:
                raise SchemaError(
                    f"column type of {rel.name}.{', '.join(changed)} changed while capturing "
                    f"(schema {rel.namespace}, raw table {table}); the landed files keep the "
                    "old type. Re-synchronise the table's raw data with "
                    f"`{RESYNC_HINT}` after the migration")
        self.on_new_shape(rel, table, schema)
        self.known[table] = schema
