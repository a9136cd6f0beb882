"""A decoder for PostgreSQL's built-in logical replication output plugin, ``pgoutput``.

Two layers, both pure functions over bytes (no sockets):

* the streaming replication framing carried in COPY_BOTH data (`decode_copy_data`):
  ``w`` XLogData (a pgoutput message and its WAL position) and ``k`` primary keepalive;
* the pgoutput logical replication messages themselves (`decode_message`), protocol version 1:
  Begin ``B``, Commit ``C``, Origin ``O``, Relation ``R``, Type ``Y``, Insert ``I``,
  Update ``U``, Delete ``D``, Truncate ``T`` and logical decoding Message ``M``.

Column values arrive in text format. In a TupleData each column is ``n`` (NULL), ``u``
(an unchanged TOASTed value that the WAL does not carry: `UNCHANGED`) or ``t`` (text).
Reference: PostgreSQL 15 documentation, "Logical Replication Message Formats" and
"Streaming Replication Protocol".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Self

#: PostgreSQL's epoch (2000-01-01 UTC); protocol timestamps are microseconds since it.
PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)


class DecodeError(ValueError):
    """The bytes are not a well-formed pgoutput / replication message."""


class _Unchanged:
    """Marker for an unchanged TOASTed column ('u'): the value is not in the WAL."""

    _instance: Self | None = None

    def __new__(cls) -> Self:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __reduce__(self) -> str:
        return "UNCHANGED"


#: The value of a column reported as unchanged TOAST ('u').
UNCHANGED: Final = _Unchanged()

#: One column of a TupleData: None (NULL), `UNCHANGED`, or the value's text form.
Value = str | None | _Unchanged


def pg_timestamp(micros: int) -> datetime:
    """A protocol timestamp (microseconds since 2000-01-01 UTC) as an aware datetime."""
    return PG_EPOCH + timedelta(microseconds=micros)


# Replication framing ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class XLogData:
    """``w``: one pgoutput message, the WAL position it starts at, and the server's WAL end."""

    data_start: int
    wal_end: int
    send_time: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Keepalive:
    """``k``: the server's current WAL end; `reply_requested` asks for a status update now."""

    wal_end: int
    send_time: int
    reply_requested: bool


def decode_copy_data(buf: bytes) -> XLogData | Keepalive:
    """Decode one CopyData message of a START_REPLICATION stream."""
    if not buf:
        raise DecodeError("empty CopyData message")
    kind = buf[0]
    if kind == 0x77:  # 'w'
        if len(buf) < 25:
            raise DecodeError(f"XLogData too short ({len(buf)} bytes)")
        start, end, sent = struct.unpack_from("!QQq", buf, 1)
        return XLogData(start, end, sent, bytes(buf[25:]))
    if kind == 0x6B:  # 'k'
        if len(buf) < 18:
            raise DecodeError(f"keepalive too short ({len(buf)} bytes)")
        end, sent, reply = struct.unpack_from("!QqB", buf, 1)
        return Keepalive(end, sent, bool(reply))
    raise DecodeError(f"unknown replication message type {chr(kind)!r}")


def standby_status_update(written: int, flushed: int, applied: int, now_micros: int,
                          reply: bool = False) -> bytes:
    """``r``: the Standby Status Update a client sends to confirm WAL positions."""
    return b"r" + struct.pack("!QQQqB", written, flushed, applied, now_micros, 1 if reply else 0)


# pgoutput messages -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Begin:
    """Start of a transaction; `final_lsn` is the LSN of its commit record."""

    final_lsn: int
    commit_time: int
    xid: int

    @property
    def committed_at(self) -> datetime:
        return pg_timestamp(self.commit_time)


@dataclass(frozen=True, slots=True)
class Commit:
    """End of a transaction: `commit_lsn` (commit record) and `end_lsn` (end of the transaction)."""

    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time: int


@dataclass(frozen=True, slots=True)
class Origin:
    """Replication origin of the transaction (only for replicated-in changes)."""

    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a Relation. `key` is set when it is part of the replica identity."""

    key: bool
    name: str
    type_oid: int
    type_modifier: int


@dataclass(frozen=True, slots=True)
class Relation:
    """The schema of a published table, sent before its first change (and after DDL)."""

    relation_id: int
    namespace: str
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[Column, ...]

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.key)


@dataclass(frozen=True, slots=True)
class Type:
    """A non-built-in data type used by a following Relation (enum, domain, composite...)."""

    type_oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    relation_id: int
    new: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Update:
    """`old` is the old key ('K', replica identity DEFAULT/INDEX when the key changed) or the whole
    old row ('O', REPLICA IDENTITY FULL); `old_kind` says which (or None)."""

    relation_id: int
    old_kind: str | None
    old: tuple[Value, ...] | None
    new: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Delete:
    """`old_kind` 'K' (key columns only, others NULL) or 'O' (the whole old row)."""

    relation_id: int
    old_kind: str
    old: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Truncate:
    """`options`: bit 1 CASCADE, bit 2 RESTART IDENTITY."""

    options: int
    relation_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Message:
    """A logical decoding message (`pg_logical_emit_message`); needs the ``messages`` option."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


PgOutputMessage = (Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate
                   | Message)


class _Reader:
    """A cursor over one message's bytes."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 1  # after the message type byte

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise DecodeError(
                f"message {chr(self.buf[0])!r} truncated: need {n} bytes at offset {self.pos}, "
                f"have {len(self.buf) - self.pos}"
            )

    def u8(self) -> int:
        self._need(1)
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def i16(self) -> int:
        self._need(2)
        (value,) = struct.unpack_from("!h", self.buf, self.pos)
        self.pos += 2
        return int(value)

    def i32(self) -> int:
        self._need(4)
        (value,) = struct.unpack_from("!i", self.buf, self.pos)
        self.pos += 4
        return int(value)

    def u32(self) -> int:
        self._need(4)
        (value,) = struct.unpack_from("!I", self.buf, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        self._need(8)
        (value,) = struct.unpack_from("!Q", self.buf, self.pos)
        self.pos += 8
        return int(value)

    def i64(self) -> int:
        self._need(8)
        (value,) = struct.unpack_from("!q", self.buf, self.pos)
        self.pos += 8
        return int(value)

    def cstring(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise DecodeError(f"message {chr(self.buf[0])!r}: unterminated string at {self.pos}")
        value = self.buf[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return value

    def raw(self, n: int) -> bytes:
        self._need(n)
        value = self.buf[self.pos:self.pos + n]
        self.pos += n
        return bytes(value)

    def tuple_data(self) -> tuple[Value, ...]:
        values, self.pos = decode_tuple_data(self.buf, self.pos)
        return values


_I16 = struct.Struct("!h").unpack_from
_I32 = struct.Struct("!i").unpack_from


def decode_tuple_data(buf: bytes, pos: int) -> tuple[tuple[Value, ...], int]:
    """Decode a TupleData at `pos`; return the values and the position after it. The hot path
    of the decoder: plain locals, no per-field method calls."""
    try:
        (count,) = _I16(buf, pos)
        pos += 2
        values: list[Value] = []
        append = values.append
        size = len(buf)
        for _ in range(count):
            kind = buf[pos]
            pos += 1
            if kind == 0x74:  # 't'
                (length,) = _I32(buf, pos)
                pos += 4
                end = pos + length
                if end > size:
                    raise DecodeError(f"TupleData value of {length} bytes truncated at {pos}")
                append(buf[pos:end].decode("utf-8"))
                pos = end
            elif kind == 0x6E:  # 'n'
                append(None)
            elif kind == 0x75:  # 'u'
                append(UNCHANGED)
            elif kind == 0x62:  # 'b' binary: only with the 'binary' option, which we never ask
                raise DecodeError("binary tuple data received: start replication without "
                                  "the 'binary' option")
            else:
                raise DecodeError(f"unknown TupleData column kind {chr(kind)!r}")
    except (IndexError, struct.error):
        raise DecodeError(f"TupleData truncated at offset {pos} of {len(buf)}") from None
    return tuple(values), pos


def _relation(r: _Reader) -> Relation:
    rel_id = r.u32()
    namespace = r.cstring() or "pg_catalog"  # empty string means pg_catalog
    name = r.cstring()
    identity = chr(r.u8())
    columns = []
    for _ in range(r.i16()):
        flags = r.u8()
        col_name = r.cstring()
        columns.append(Column(bool(flags & 1), col_name, r.u32(), r.i32()))
    return Relation(rel_id, namespace, name, identity, tuple(columns))


def _update(r: _Reader) -> Update:
    rel_id = r.u32()
    kind = chr(r.u8())
    if kind in ("K", "O"):
        old = r.tuple_data()
        marker = chr(r.u8())
        if marker != "N":
            raise DecodeError(f"Update: expected 'N' after the old tuple, got {marker!r}")
        return Update(rel_id, kind, old, r.tuple_data())
    if kind != "N":
        raise DecodeError(f"Update: unexpected tuple kind {kind!r}")
    return Update(rel_id, None, None, r.tuple_data())


def decode_message(buf: bytes) -> PgOutputMessage:
    """Decode one pgoutput message (the payload of an XLogData)."""
    if not buf:
        raise DecodeError("empty pgoutput message")
    kind = buf[0]
    if kind == 0x49:  # I (the most frequent message: decoded without a reader)
        if len(buf) < 6 or buf[5] != 0x4E:
            raise DecodeError(f"Insert: expected 'N' after the relation id in {bytes(buf[:8])!r}")
        (rel_id,) = struct.unpack_from("!I", buf, 1)
        return Insert(rel_id, decode_tuple_data(buf, 6)[0])
    r = _Reader(buf)
    if kind == 0x42:  # B
        return Begin(r.u64(), r.i64(), r.u32())
    if kind == 0x43:  # C
        return Commit(r.u8(), r.u64(), r.u64(), r.i64())
    if kind == 0x55:  # U
        return _update(r)
    if kind == 0x44:  # D
        rel_id = r.u32()
        old_kind = chr(r.u8())
        if old_kind not in ("K", "O"):
            raise DecodeError(f"Delete: unexpected tuple kind {old_kind!r}")
        return Delete(rel_id, old_kind, r.tuple_data())
    if kind == 0x52:  # R
        return _relation(r)
    if kind == 0x59:  # Y
        return Type(r.u32(), r.cstring() or "pg_catalog", r.cstring())
    if kind == 0x54:  # T
        count = r.u32()
        options = r.u8()
        return Truncate(options, tuple(r.u32() for _ in range(count)))
    if kind == 0x4F:  # O
        return Origin(r.u64(), r.cstring())
    if kind == 0x4D:  # M
        flags = r.u8()
        lsn = r.u64()
        prefix = r.cstring()
        return Message(bool(flags & 1), lsn, prefix, r.raw(r.u32()))
    raise DecodeError(f"unknown pgoutput message type {chr(kind)!r} (protocol version 1 only)")
