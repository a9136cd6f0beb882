"""Unit: the pgoutput decoder on real bytes captured from PostgreSQL 15 (data/pgoutput_frames.json:
the statements listed in the file, streamed through START_REPLICATION with pgoutput proto 1)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pulse_local.cdc.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    DecodeError,
    Delete,
    Insert,
    Keepalive,
    Message,
    Relation,
    Truncate,
    Type,
    Update,
    XLogData,
    decode_copy_data,
    decode_message,
    standby_status_update,
)

FRAMES = json.loads((Path(__file__).parent / "data" / "pgoutput_frames.json").read_text())


def _messages() -> list[object]:
    out: list[object] = []
    for hexed in FRAMES["frames"]:
        frame = decode_copy_data(bytes.fromhex(hexed))
        out.append(decode_message(frame.payload) if isinstance(frame, XLogData) else frame)
    return out


MESSAGES = _messages()


def _of(kind: type) -> list:
    return [m for m in MESSAGES if isinstance(m, kind)]


def test_transactions_are_framed_by_begin_and_commit_with_matching_lsns() -> None:
    begins, commits = _of(Begin), _of(Commit)
    assert len(begins) == len(commits) == len(FRAMES["statements"])
    for begin, commit in zip(begins, commits):
        assert begin.final_lsn == commit.commit_lsn
        assert commit.end_lsn > commit.commit_lsn
        assert begin.commit_time == commit.commit_time
        assert begin.committed_at.year >= 2024
    assert [b.final_lsn for b in begins] == sorted(b.final_lsn for b in begins)


def test_relation_describes_columns_key_and_replica_identity() -> None:
    items = next(r for r in _of(Relation) if r.name == "cap_items")
    assert items.namespace == "public" and items.replica_identity == "d"
    assert [c.name for c in items.columns] == ["id", "name", "big", "mood", "price"]
    assert items.key_columns == ("id",)
    assert items.columns[0].type_oid == 23 and items.columns[1].type_oid == 25
    price = items.columns[4]
    assert price.type_oid == 1700
    assert ((price.type_modifier - 4) >> 16, (price.type_modifier - 4) & 0x7FF) == (8, 2)
    full = next(r for r in _of(Relation) if r.name == "cap_full")
    assert full.replica_identity == "f" and full.key_columns == ("id", "note")


def test_custom_type_message_precedes_its_relation() -> None:
    mood = _of(Type)[0]
    assert (mood.namespace, mood.name) == ("public", "cap_mood")
    items = next(r for r in _of(Relation) if r.name == "cap_items")
    assert items.columns[3].type_oid == mood.type_oid


def test_insert_values_are_text_with_none_for_null() -> None:
    first, second = _of(Insert)[:2]
    assert first.new[0] == "1" and first.new[1] == "one" and first.new[3] == "happy"
    assert first.new[4] == "9.99" and len(first.new[2]) == 3200
    assert second.new == ("2", None, "small", None, None)


def test_update_reports_unchanged_toast_as_u() -> None:
    update = _of(Update)[0]
    assert update.old is None and update.old_kind is None
    assert update.new == ("1", "uno", UNCHANGED, "happy", "9.99")
    assert repr(UNCHANGED) == "UNCHANGED"


def test_update_changing_the_key_carries_the_old_key() -> None:
    update = _of(Update)[1]
    assert update.old_kind == "K"
    assert update.old == ("2", None, None, None, None)
    assert update.new == ("3", None, "small", None, None)


def test_replica_identity_full_carries_the_old_row() -> None:
    full_update = _of(Update)[2]
    assert (full_update.old_kind, full_update.old, full_update.new) == (
        "O", ("10", "ten"), ("10", "TEN"))
    full_delete = _of(Delete)[1]
    assert (full_delete.old_kind, full_delete.old) == ("O", ("10", "TEN"))


def test_delete_under_default_identity_carries_only_the_key() -> None:
    delete = _of(Delete)[0]
    assert delete.old_kind == "K" and delete.old == ("3", None, None, None, None)


def test_truncate_lists_every_relation() -> None:
    truncate = _of(Truncate)[0]
    ids = {r.name: r.relation_id for r in _of(Relation)}
    assert set(truncate.relation_ids) == {ids["cap_items"], ids["cap_full"]}
    assert truncate.options == 0


def test_logical_message() -> None:
    message = _of(Message)[0]
    assert message.transactional and message.prefix == "pulse_cdc.test"
    assert message.content == b"hello"


def test_keepalive_frames() -> None:
    keepalives = _of(Keepalive)
    assert keepalives and all(not k.reply_requested for k in keepalives)
    assert keepalives[-1].wal_end >= _of(Commit)[-1].end_lsn


def test_standby_status_update_layout() -> None:
    message = standby_status_update(0x10, 0x20, 0x30, 12345, reply=True)
    assert message[:1] == b"r"
    assert struct.unpack("!QQQqB", message[1:]) == (0x10, 0x20, 0x30, 12345, 1)


@pytest.mark.parametrize("payload, problem", [
    (b"", "empty"),
    (b"Z\x00", "unknown pgoutput message type 'Z'"),
    (b"B\x00\x00", "truncated"),
    (b"I\x00\x00\x00\x01N\x00\x01x", "unknown TupleData column kind 'x'"),
    (b"I\x00\x00\x00\x01N\x00\x01b\x00\x00\x00\x01a", "binary tuple data"),
    (b"R\x00\x00\x00\x01public", "unterminated string"),
])
def test_malformed_messages_raise_decode_error(payload: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_message(payload)


def test_malformed_copy_data() -> None:
    with pytest.raises(DecodeError, match="unknown replication message type"):
        decode_copy_data(b"x123")
    with pytest.raises(DecodeError, match="too short"):
        decode_copy_data(b"w\x00")


# Bulk (numpy) decoding must agree with the reference decoder -----------------------------------
def _bulk_frames() -> dict[int, list[bytes]]:
    by_width: dict[int, list[bytes]] = {}
    for hexed in FRAMES["frames"]:
        frame = bytes.fromhex(hexed)
        if frame[0] == 0x77 and (frame[25], frame[30]) in (
                (0x49, 0x4E), (0x55, 0x4E), (0x44, 0x4B), (0x44, 0x4F)):
            by_width.setdefault(struct.unpack_from("!h", frame, 31)[0], []).append(frame)
    return by_width


def test_bulk_decoding_matches_the_reference_decoder() -> None:
    from pulse_local.cdc.bulk import decode_frames
    from pulse_local.cdc.pgoutput import decode_tuple_data

    widths = _bulk_frames()
    assert sum(len(v) for v in widths.values()) >= 6
    for width, frames in widths.items():
        columns, unchanged = decode_frames(frames, 31, width)
        for i, frame in enumerate(frames):
            reference = decode_tuple_data(frame, 31)[0]
            assert tuple(c[i].as_py() for c in columns) == tuple(
                None if v is UNCHANGED else v for v in reference)
            assert [bool(unchanged[k][i]) for k in range(width)] == [
                v is UNCHANGED for v in reference]


def test_bulk_decoding_rejects_malformed_frames() -> None:
    from pulse_local.cdc.bulk import decode_frames

    frame = max(_bulk_frames()[5], key=len)
    with pytest.raises(DecodeError, match="expected 4"):
        decode_frames([frame], 31, 4)
    with pytest.raises(DecodeError, match="truncated"):
        decode_frames([frame[:40]], 31, 5)
    bad_kind = bytearray(frame)
    bad_kind[33] = ord("x")
    with pytest.raises(DecodeError, match="unknown TupleData column kind 'x'"):
        decode_frames([bytes(bad_kind)], 31, 5)
