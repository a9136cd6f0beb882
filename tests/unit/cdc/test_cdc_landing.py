"""Unit: landing files in Datastream's shape, the watermark, and the DuckDB views (synthetic
rows, no database)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pulse_local.cdc import datastream
from pulse_local.cdc.config import StreamConfig
from pulse_local.cdc.errors import RawLayerVersionError
from pulse_local.cdc.landing import (
    DELETE,
    INSERT,
    UPDATE_DELETE,
    UPDATE_INSERT,
    RawLayer,
    StreamState,
    TableRows,
    change_sequence_number,
)
from pulse_local.cdc.schema import ColumnSpec, TableSchema
from pulse_local.cdc.typemap import map_type
from pulse_local.cdc.views import refresh_views
from pulse_local.config import Settings

SCHEMA = TableSchema("public", "items", (
    ColumnSpec("id", 23, -1, map_type(23)),
    ColumnSpec("name", 25, -1, map_type(25)),
    ColumnSpec("doc", 3802, -1, map_type(3802)),
), key=("id",), replica_identity="d")


def _config(tmp_path: Path, mode: str) -> StreamConfig:
    return StreamConfig.model_validate({"name": "unit", "destination": {
        "path": str(tmp_path / "raw"), "mode": mode}})


def _land(tmp_path: Path, mode: str, schema: TableSchema = SCHEMA) -> tuple[RawLayer, Settings]:
    """Backfill two rows at LSN 0x10, then a batch of changes committed at 0x20 and 0x30."""
    config = _config(tmp_path, mode)
    settings = Settings(state_dir=tmp_path)
    layer = RawLayer(config.raw_dir(settings), config.name)
    state = StreamState("unit", "slot", "pub", backfill_complete=True, consistent_point=0x10,
                        watermark=0x10, resume_lsn=0x10)
    layer.write_schema("items", schema, mode)
    backfill = TableRows(schema)
    backfill.append(["1", "one", '{"v": 1}'], 0x10, 1, INSERT, 1000)
    backfill.append(["2", "two", '{"v": 2}'], 0x10, 2, INSERT, 1000)
    layer.write_file("items", backfill, 0x10, 0x10, chunk=0)
    layer.write_state(state)
    changes = TableRows(schema)
    # name of 1 updated, doc unchanged TOAST; 2 deleted; 3 inserted then its key changed to 4
    changes.append(["1", "uno", None], 0x20, 1, UPDATE_INSERT, 2000, ["doc"])
    changes.append(["2", None, None], 0x20, 2, DELETE, 2000)
    changes.append(["3", "three", "[]"], 0x30, 1, INSERT, 3000)
    changes.append(["3", None, None], 0x30, 2, UPDATE_DELETE, 3000)
    changes.append(["4", "three", "[]"], 0x30, 3, UPDATE_INSERT, 3000)
    layer.write_file("items", changes, 0x20, 0x30)
    state.watermark, state.resume_lsn = 0x30, 0x38
    layer.write_state(state)
    return layer, settings


def test_merge_view_is_the_latest_row_per_key(tmp_path: Path) -> None:
    _layer, settings = _land(tmp_path, "merge")
    con = duckdb.connect()
    assert refresh_views(con, settings, _config(tmp_path, "merge")) == ["items"]
    rows = con.execute("SELECT id, name, doc::VARCHAR FROM raw.items ORDER BY id").fetchall()
    assert rows == [(1, "uno", '{"v": 1}'), (4, "three", "[]")]  # TOAST value kept
    meta = con.execute("SELECT datastream_metadata FROM raw.items WHERE id = 1").fetchone()[0]
    assert set(meta) == {"uuid", "source_timestamp"} and meta["source_timestamp"] == 2000
    assert len(meta["uuid"]) == 36


def test_append_only_view_keeps_every_event(tmp_path: Path) -> None:
    _layer, settings = _land(tmp_path, "append-only")
    con = duckdb.connect()
    refresh_views(con, settings, _config(tmp_path, "append-only"))
    rows = con.execute(
        "SELECT id, datastream_metadata.change_type "
        "FROM raw.items ORDER BY datastream_metadata.change_sequence_number").fetchall()
    assert rows == [(1, "INSERT"), (2, "INSERT"), (1, "UPDATE-INSERT"), (2, "DELETE"),
                    (3, "INSERT"), (3, "UPDATE-DELETE"), (4, "UPDATE-INSERT")]
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'items' AND table_schema = 'raw'").fetchall())
    assert types["id"] == "BIGINT" and types["doc"] == "JSON"
    assert types["datastream_metadata"] == (
        "STRUCT(uuid VARCHAR, source_timestamp BIGINT, change_sequence_number VARCHAR, "
        "change_type VARCHAR, sort_keys VARCHAR[])")
    uuids = con.execute("SELECT count(DISTINCT datastream_metadata.uuid) FROM raw.items").fetchone()
    assert uuids == (7,)


def test_keyless_table_in_merge_mode_is_append_only_with_is_deleted(tmp_path: Path) -> None:
    keyless = TableSchema("public", "items", SCHEMA.columns, key=(), replica_identity="f")
    _layer, settings = _land(tmp_path, "merge", keyless)
    con = duckdb.connect()
    refresh_views(con, settings, _config(tmp_path, "merge"))
    meta_type = con.execute("SELECT typeof(datastream_metadata) FROM raw.items LIMIT 1").fetchone()
    assert meta_type == ("STRUCT(uuid VARCHAR, source_timestamp BIGINT, is_deleted BOOLEAN)",)
    assert con.execute("SELECT count(*) FROM raw.items").fetchone() == (7,)
    deleted = con.execute("SELECT id FROM raw.items WHERE datastream_metadata.is_deleted "
                          "ORDER BY datastream_metadata.source_timestamp").fetchall()
    assert deleted == [(2,), (3,)]  # the DELETE and the old image of the key change


def test_files_above_the_watermark_are_invisible_and_removed_at_start(tmp_path: Path) -> None:
    layer, settings = _land(tmp_path, "merge")
    orphan = TableRows(SCHEMA)
    orphan.append(["9", "orphan", None], 0x40, 1, INSERT, 4000)
    path = layer.write_file("items", orphan, 0x40, 0x40)  # crash before the state was written
    (layer.table_dir("items") / "half.parquet.tmp").write_bytes(b"partial")
    con = duckdb.connect()
    refresh_views(con, settings, _config(tmp_path, "merge"))
    assert con.execute("SELECT count(*) FROM raw.items WHERE id = 9").fetchone() == (0,)
    assert layer.remove_orphans(layer.read_state()) == 2
    assert not path.exists()
    assert sorted(p.name for p in layer.table_dir("items").iterdir()) == [
        "0000000000000010-0000000000000010-00000.parquet",
        "0000000000000020-0000000000000030.parquet", "_schema.json"]


def test_state_round_trip(tmp_path: Path) -> None:
    layer = RawLayer(tmp_path, "unit")
    assert layer.read_state() is None
    state = StreamState("unit", "slot", "pub", True, 0x10, 0x20, 0x28, 1.5, 3, 2)
    layer.write_state(state)
    again = layer.read_state()
    assert again is not None and (again.watermark, again.resume_lsn) == (0x20, 0x28)
    assert layer.state_path.read_text().count('"watermark_hex": "0000000000000020"') == 1


def test_change_sequence_numbers_sort_by_commit_then_position(tmp_path: Path) -> None:
    numbers = [change_sequence_number(0x1_0000_0000, 2), change_sequence_number(0xFF, 3),
               change_sequence_number(0x1_0000_0000, 1)]
    assert sorted(numbers) == [numbers[1], numbers[2], numbers[0]]
    layer = RawLayer(tmp_path, "unit")
    rows = TableRows(SCHEMA)
    rows.append(["1", "x", None], 0x1_0000_0000, 2, INSERT, 0)
    path = layer.write_file("items", rows, 1, 1)
    meta = duckdb.connect().execute(
        "SELECT datastream_metadata FROM read_parquet(?)", [str(path)]).fetchone()[0]
    assert meta["change_sequence_number"] == numbers[0] == "0000000100000000-00000002"
    assert meta["sort_keys"] == [numbers[0]]
    assert meta["uuid"].endswith("-0000-0001-0000-000000000002")


@pytest.mark.parametrize("value", ["not json"])
def test_unconvertible_value_names_the_table(tmp_path: Path, value: str) -> None:
    layer = RawLayer(tmp_path, "unit")
    rows = TableRows(SCHEMA)
    rows.append(["1", "x", value], 1, 1, INSERT, 0)
    with pytest.raises(Exception, match="cannot land a batch of items"):
        layer.write_file("items", rows, 1, 1)


def test_recorded_frames_and_decoded_rows_land_together(tmp_path: Path) -> None:
    """Bulk-decoded frames (Insert/Update/Delete) and Python-decoded rows share one file."""
    import struct

    def frame(kind: bytes, marker: bytes, values: list[bytes | None | str]) -> bytes:
        body = b""
        for v in values:
            if v is None:
                body += b"n"
            elif v == "u":
                body += b"u"
            else:
                assert isinstance(v, bytes)
                body += b"t" + struct.pack("!i", len(v)) + v
        return (b"w" + bytes(24) + kind + struct.pack("!I", 1) + marker
                + struct.pack("!h", len(values)) + body)

    layer = RawLayer(tmp_path, "unit")
    rows = TableRows(SCHEMA)
    rows.append(["1", "one", '{"a": 1}'], 0x10, 1, INSERT, 1000)
    rows.add_frame(frame(b"I", b"N", [b"2", b"two", b"[2]"]), 0x20, 1, INSERT, 2000)
    rows.add_frame(frame(b"U", b"N", [b"1", b"uno", "u"]), 0x20, 2, UPDATE_INSERT, 2000)
    rows.add_frame(frame(b"D", b"K", [b"2", None, None]), 0x30, 1, DELETE, 3000)
    path = layer.write_file("items", rows, 0x10, 0x30)
    got = duckdb.connect().execute(
        "SELECT id, name, doc::VARCHAR, _pulse_unchanged, datastream_metadata.change_type "
        "FROM read_parquet(?) "
        "ORDER BY datastream_metadata.change_sequence_number", [str(path)]).fetchall()
    assert got == [(1, "one", '{"a": 1}', None, "INSERT"),
                   (2, "two", "[2]", None, "INSERT"),
                   (1, "uno", None, ["doc"], "UPDATE-INSERT"),
                   (2, None, None, None, "DELETE")]
    reshaped = rows.reshaped(SCHEMA)
    assert not reshaped.frames and len(reshaped) == 4


def test_the_shared_raw_root_keeps_what_other_writers_land_there(tmp_path: Path) -> None:
    """The streaming sink lands ``pubsub_response_events`` (Parquet and its own ``.tmp`` files)
    in the same root: neither the start-up clean-up nor a resync's wipe touches it, while the
    layer's own temp and table files go."""
    layer, _settings = _land(tmp_path, "merge")
    sink = layer.root / "pubsub_response_events"
    (sink / "dt=2024-09-02").mkdir(parents=True)
    foreign = [sink / "_schema.parquet", sink / "._schema.parquet.0123abcd.tmp",
               sink / "dt=2024-09-02" / "part-1.parquet"]
    for path in foreign:
        path.write_bytes(b"not the layer's")
    (layer.table_dir("items") / "half.parquet.tmp").write_bytes(b"partial")
    first_schema = layer.root / "orders"  # a crash during a table's first schema write
    first_schema.mkdir()
    (first_schema / "_schema.json.42.tmp").write_text("{")
    assert layer.remove_orphans(layer.read_state()) == 2
    assert all(path.exists() for path in foreign)
    (first_schema / "_schema.json.43.tmp").write_text("{")  # and again before the resync
    layer.wipe()
    assert all(path.exists() for path in foreign)
    assert sorted(p.name for p in layer.root.iterdir()) == ["pubsub_response_events"]


def test_landed_metadata_is_datastreams_append_only_struct_field_for_field(
        tmp_path: Path) -> None:
    """The struct the local CDC lands and the append-only view show, compared field by field
    (name and type) with the list from Datastream's documentation (`cdc.datastream`)."""
    _layer, settings = _land(tmp_path, "append-only")
    con = duckdb.connect()
    refresh_views(con, settings, _config(tmp_path, "append-only"))
    described = con.execute("SELECT typeof(datastream_metadata) FROM raw.items LIMIT 1").fetchone()
    fields = con.execute(
        "SELECT unnest(struct_keys(datastream_metadata)) FROM raw.items LIMIT 5").fetchall()
    documented = [name for name, _ in datastream.APPEND_ONLY_METADATA]
    assert [f for (f,) in fields] == documented
    assert documented == ["uuid", "source_timestamp", "change_sequence_number", "change_type",
                          "sort_keys"]
    assert "is_deleted" not in documented
    assert described == (datastream.metadata_type_duckdb("append-only"),)
    assert datastream.metadata_type_bigquery("append-only") == (
        "STRUCT<uuid STRING, source_timestamp INT64, change_sequence_number STRING, "
        "change_type STRING, sort_keys ARRAY<STRING>>")
    types = {t for (t,) in con.execute(
        "SELECT DISTINCT datastream_metadata.change_type FROM raw.items").fetchall()}
    assert types <= set(datastream.CHANGE_TYPES)


def test_merge_metadata_follows_the_documented_lists(tmp_path: Path) -> None:
    assert datastream.metadata_fields("merge", keyed=True) == (
        ("uuid", "STRING"), ("source_timestamp", "INT64"))
    assert datastream.metadata_fields("merge", keyed=False)[-1] == ("is_deleted", "BOOL")
    assert datastream.destination_table("public", "users") == "public_users"
    assert datastream.BACKFILL_CHANGE_TYPE == "INSERT"


def test_a_raw_layer_of_the_previous_version_is_refused_by_name(tmp_path: Path) -> None:
    """A layer landed before this version (state version 1: is_deleted in the struct, tables
    named <table>) must not be read as if it had today's shape."""
    layer, settings = _land(tmp_path, "append-only")
    data = json.loads(layer.state_path.read_text())
    data["version"] = 1
    layer.state_path.write_text(json.dumps(data))
    with pytest.raises(RawLayerVersionError, match="python -m pulse_local.cdc resync"):
        refresh_views(duckdb.connect(), settings, _config(tmp_path, "append-only"))
    del data["version"]
    layer.state_path.write_text(json.dumps(data))
    with pytest.raises(RawLayerVersionError, match="raw layer version 1"):
        layer.read_state()
