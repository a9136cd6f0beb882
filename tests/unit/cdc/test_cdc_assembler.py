"""Unit: the pgoutput transaction assembler on real frames recorded from PostgreSQL 15
(data/pgoutput_frames.json) and on frames built here (a drain marker, a keepalive). No database:
relations are described from the Relation message alone (type OIDs mapped, no catalog)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pulse_local.cdc.assembler import DRAIN_PREFIX, TransactionAssembler
from pulse_local.cdc.errors import SchemaError
from pulse_local.cdc.landing import CHANGE_TYPES, TableRows
from pulse_local.cdc.pgoutput import (
    Begin,
    Commit,
    Keepalive,
    Relation,
    XLogData,
    decode_copy_data,
    decode_message,
)
from pulse_local.cdc.schema import ColumnSpec, TableSchema
from pulse_local.cdc.typemap import map_type

FRAMES = [bytes.fromhex(h) for h in
          json.loads((Path(__file__).parent / "data" / "pgoutput_frames.json").read_text())["frames"]]


def _describe(rel: Relation) -> tuple[str, TableSchema]:
    columns = tuple(ColumnSpec(c.name, c.type_oid, c.type_modifier,
                               map_type(c.type_oid, c.type_modifier)) for c in rel.columns)
    return rel.name, TableSchema(rel.namespace, rel.name, columns, rel.key_columns,
                                 rel.replica_identity)


class _Recorder:
    """Collects what the assembler announces (new shapes, quiet commits)."""

    def __init__(self) -> None:
        self.shapes: list[str] = []
        self.quiet: list[int] = []

    def assembler(self) -> TransactionAssembler:
        return TransactionAssembler(_describe, lambda rel, table, schema: self.shapes.append(table),
                                    lambda: 42.0, on_quiet_commit=self.quiet.append)


def _messages(kind: type) -> list:
    found = []
    for frame in FRAMES:
        decoded = decode_copy_data(frame)
        if isinstance(decoded, XLogData):
            msg = decode_message(decoded.payload)
            if isinstance(msg, kind):
                found.append(msg)
    return found


def _change_types(rows: TableRows) -> list[str]:
    """The change types of rows in stream order (commit LSN, then position)."""
    rows.materialize()
    return [t for _, _, t in sorted(zip(rows.lsn, rows.seq, rows.change_type, strict=True))]


def test_recorded_stream_groups_into_one_batch_with_every_change_type() -> None:
    recorder = _Recorder()
    assembler = recorder.assembler()
    keepalives = [k for k in map(assembler.feed, FRAMES) if k is not None]
    assert all(isinstance(k, Keepalive) for k in keepalives)
    assert assembler.idle is False  # a batch is open, no transaction
    assert assembler.txn is None
    batch = assembler.take_batch()
    commits = _messages(Commit)
    # 8 statements change rows; the 9th only emits a logical message, and its commit may not
    # advance the position while the batch before it is not landed
    assert batch.transactions == 8 and len(commits) == 9
    assert recorder.quiet == []
    assert batch.first_lsn == commits[0].commit_lsn and batch.last_lsn == commits[7].commit_lsn
    assert batch.end_lsn == commits[7].end_lsn and batch.started == 42.0
    assert sorted(recorder.shapes) == ["cap_full", "cap_items"]
    assert _change_types(batch.tables["cap_items"]) == [
        "INSERT", "INSERT", "UPDATE-INSERT", "UPDATE-DELETE", "UPDATE-INSERT", "DELETE",
        "TRUNCATE"]
    # replica identity full: updates carry the old row
    assert _change_types(batch.tables["cap_full"]) == [
        "INSERT", "UPDATE-DELETE", "UPDATE-INSERT", "DELETE", "TRUNCATE"]
    assert batch.changes == 12
    assert set(CHANGE_TYPES) >= set(batch.tables["cap_items"].change_type)
    assert assembler.idle and assembler.batch.changes == 0


def test_transactions_landed_before_are_skipped() -> None:
    begins = _messages(Begin)
    recorder = _Recorder()
    assembler = recorder.assembler()
    assembler.skip_upto = begins[3].final_lsn  # the first four statements were landed
    for frame in FRAMES:
        assembler.feed(frame)
    batch = assembler.take_batch()
    assert batch.transactions == 4
    assert batch.first_lsn == begins[4].final_lsn
    assert _change_types(batch.tables["cap_items"]) == ["TRUNCATE"]
    assert _change_types(batch.tables["cap_full"]) == [
        "INSERT", "UPDATE-DELETE", "UPDATE-INSERT", "DELETE", "TRUNCATE"]


def _xlog(payload: bytes) -> bytes:
    return b"w" + struct.pack("!QQq", 1, 1, 0) + payload


def _marker_transaction(token: str, lsn: int) -> list[bytes]:
    """Begin, a transactional logical message with the drain prefix, Commit."""
    begin = b"B" + struct.pack("!QqI", lsn, 0, 7)
    message = (b"M" + struct.pack("!BQ", 1, lsn) + DRAIN_PREFIX.encode() + b"\0"
               + struct.pack("!I", len(token)) + token.encode())
    commit = b"C" + struct.pack("!BQQq", 0, lsn, lsn + 8, 0)
    return [_xlog(begin), _xlog(message), _xlog(commit)]


def test_drain_marker_is_reached_at_its_commit_only_when_the_token_matches() -> None:
    recorder = _Recorder()
    assembler = recorder.assembler()
    assembler.marker_token = "abc"
    other, ours = _marker_transaction("xyz", 100), _marker_transaction("abc", 200)
    for frame in other:
        assembler.feed(frame)
    assert not assembler.marker_reached
    assembler.feed(ours[0])
    assembler.feed(ours[1])
    assert not assembler.marker_reached  # inside the transaction: not yet
    assembler.feed(ours[2])
    assert assembler.marker_reached
    assert recorder.quiet == [108, 208]


def test_keepalive_is_returned_to_the_caller() -> None:
    keepalive = TransactionAssembler(_describe, lambda *a: None, lambda: 0.0).feed(
        b"k" + struct.pack("!QqB", 555, 0, 1))
    assert keepalive == Keepalive(555, 0, True)


def test_column_type_changed_while_capturing_is_a_named_error() -> None:
    relation = _messages(Relation)[0]
    table, schema = _describe(relation)
    changed = TableSchema(schema.namespace, schema.name, tuple(
        ColumnSpec(c.name, 20, -1, map_type(20)) if i == 1 else c
        for i, c in enumerate(schema.columns)), schema.key, schema.replica_identity)
    assembler = _Recorder().assembler()
    assembler.known[table] = changed
    with pytest.raises(SchemaError, match="column type of .* changed while capturing"):
        for frame in FRAMES:
            assembler.feed(frame)
