"""Integration: capture from a real PostgreSQL 15 (session stack) into the raw layer: the
backfill/stream handoff, merged raw equal to the source, types, TOAST, replica identities,
schema changes, a missing slot and its resync."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from cdc_helpers import CdcCase, normalise

from pulse_local.cdc import SchemaError, SlotLostError, datastream, resync

pytestmark = pytest.mark.integration

ITEMS = ("id int primary key, name text, price numeric(12,2), doc jsonb, "
         "created timestamptz default now(), ok boolean")
COLUMNS = "id, name, price, doc, created, ok"


def _create_items(case: CdcCase, rows: int = 0, table: str | None = None) -> str:
    table = table or case.t()
    case.admin.execute(f"create table {table} ({ITEMS})")
    if rows:
        case.admin.execute(
            f"insert into {table} (id, name, price, doc, ok) select g, 'n' || g, g * 1.25, "
            "jsonb_build_object('g', g), g %% 2 = 0 from generate_series(1, %s) g", (rows,))
    return table


def _assert_same(case: CdcCase, table: str, columns: str = COLUMNS) -> None:
    raw = normalise(case.raw(table, columns))
    source = normalise(case.source(table, columns))
    assert len(raw) == len(source)
    for got, want in zip(raw, source):
        assert got == want


def test_backfill_then_changes_with_writes_during_the_handoff(cdc_case: CdcCase) -> None:
    table = _create_items(cdc_case, rows=2000)
    cdc_case.publish(table)
    stop = threading.Event()
    written = []

    def writer() -> None:  # commits before, during and after the slot's consistent point
        with psycopg.connect(cdc_case.settings.admin_dsn(), autocommit=True) as conn:
            i = 10_000
            while not stop.is_set():
                i += 1
                conn.execute(f"insert into {table} (id, name) values (%s, 'w')", (i,))
                conn.execute(f"update {table} set name = 'u' || %s where id = %s",
                             (i, i % 2000 + 1))
                if i % 3 == 0:
                    conn.execute(f"delete from {table} where id = %s", (i - 1,))
                written.append(i)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        first = cdc_case.drain()
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert first.backfilled_rows >= 2000
    second = cdc_case.drain()
    assert len(written) > 10 and second.changes > 0
    _assert_same(cdc_case, table)
    changes = cdc_case.raw(table, "count(*), count(DISTINCT datastream_metadata.uuid)",
                           view=f"{table}__changes")
    assert changes[0][0] == changes[0][1]  # no event twice


def test_types_land_as_datastream_maps_them(cdc_case: CdcCase) -> None:
    table = cdc_case.t("types")
    cdc_case.admin.execute(
        f"create table {table} (id bigint primary key, i2 smallint, f8 double precision, "
        "n numeric, d date, t time, ts timestamp, tstz timestamptz, iv interval, "
        "b bytea, u uuid, j json, tags text[], nums int[], flag boolean, v varchar(10))")
    cdc_case.admin.execute(
        f"insert into {table} values (1, 7, 1.5, 123.456789012345678901, '2024-02-29', "
        "'13:14:15', '2024-01-01 10:00', '2024-01-01 10:00+02', '1 day 2 hours', "
        "'\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": [1]}', "
        "'{a,\"b c\"}', '{1,2}', true, 'ten')")
    cdc_case.publish(table)
    cdc_case.drain()
    cdc_case.admin.execute(f"insert into {table} (id, tags) values (2, '{{}}')")
    cdc_case.drain()
    con = cdc_case.duck()
    types = dict(con.execute(
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = 'raw' and table_name = 'public_{table}'").fetchall())
    assert types == {
        "id": "BIGINT", "i2": "BIGINT", "f8": "DOUBLE", "n": "VARCHAR", "d": "DATE",
        "t": "TIME", "ts": "TIMESTAMP WITH TIME ZONE", "tstz": "TIMESTAMP WITH TIME ZONE",
        "iv": "INTERVAL", "b": "BLOB", "u": "VARCHAR", "j": "JSON", "tags": "JSON",
        "nums": "JSON", "flag": "BOOLEAN", "v": "VARCHAR",
        "datastream_metadata": "STRUCT(uuid VARCHAR, source_timestamp BIGINT)",
    }
    row = con.execute(f'select n, tstz::varchar, b, tags, nums, iv from raw."public_{table}" '
                      "where id = 1").fetchone()
    assert row[0] == "123.456789012345678901"  # unconstrained numeric: STRING, lossless
    assert row[1] == "2024-01-01 08:00:00+00"
    assert row[2] == b"\x00\xff" and row[3] == '["a","b c"]' and row[4] == "[1,2]"
    assert str(row[5]) == "1 day, 2:00:00"


def test_unchanged_toast_keeps_the_previous_value(cdc_case: CdcCase) -> None:
    table = cdc_case.t("toast")
    cdc_case.admin.execute(f"create table {table} (id int primary key, name text, big text)")
    big = "select string_agg(md5(g::text || %s), '') from generate_series(1, 400) g"
    cdc_case.admin.execute(f"insert into {table} values (1, 'a', ({big})), (2, 'b', ({big}))",
                           ("x", "y"))
    cdc_case.publish(table)
    cdc_case.drain()  # backfill holds the big values
    cdc_case.admin.execute(f"update {table} set name = 'a2' where id = 1")
    cdc_case.drain()
    cdc_case.admin.execute(f"update {table} set name = 'a3' where id = 1")  # 'u' again
    cdc_case.admin.execute(f"update {table} set big = 'small now' where id = 2")
    cdc_case.admin.execute(f"update {table} set name = 'b2' where id = 2")  # not TOASTed any more
    cdc_case.drain()
    _assert_same(cdc_case, table, "id, name, big")
    con = cdc_case.duck()
    flagged = con.execute(
        "select count(*) from read_parquet(?) where list_contains(_pulse_unchanged, 'big')",
        [str(cdc_case.root / "raw" / f"public_{table}" / "*.parquet")]).fetchone()
    assert flagged == (2,)  # PostgreSQL did report them unchanged ('u')


@pytest.mark.parametrize("identity", ["default", "full", "index"])
def test_deletes_and_updates_under_each_replica_identity(cdc_case: CdcCase, identity: str) -> None:
    table = cdc_case.t(f"ri_{identity}")
    cdc_case.admin.execute(f"create table {table} (id int primary key, code text not null, "
                           "note text)")
    cdc_case.admin.execute(f"create unique index {table}_code on {table} (code)")
    clause = {"default": "default", "full": "full", "index": f"using index {table}_code"}
    cdc_case.admin.execute(f"alter table {table} replica identity {clause[identity]}")
    cdc_case.admin.execute(f"insert into {table} select g, 'c' || g, 'n' || g "
                           "from generate_series(1, 50) g")
    cdc_case.publish(table)
    cdc_case.drain()
    cdc_case.admin.execute(f"delete from {table} where id <= 10")
    cdc_case.admin.execute(f"update {table} set note = 'changed' where id between 11 and 20")
    cdc_case.admin.execute(f"update {table} set code = 'k' || id where id between 21 and 25")
    cdc_case.admin.execute(f"update {table} set id = id + 1000 where id between 26 and 30")
    cdc_case.admin.execute(f"insert into {table} values (7, 'c7', 'back')")
    cdc_case.drain()
    _assert_same(cdc_case, table, "id, code, note")
    deletes = cdc_case.raw(table, "count(*)", view=f"{table}__changes")
    assert deletes[0][0] > 50


def test_replica_identity_nothing_refuses_deletes_and_keeps_inserts(cdc_case: CdcCase) -> None:
    table = cdc_case.t("nothing")
    cdc_case.admin.execute(f"create table {table} (id int primary key, note text)")
    cdc_case.admin.execute(f"alter table {table} replica identity nothing")
    cdc_case.publish(table)
    cdc_case.drain()
    cdc_case.admin.execute(f"insert into {table} values (1, 'a'), (2, 'b')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                       match="does not have a replica identity and publishes deletes"):
        cdc_case.admin.execute(f"delete from {table} where id = 1")
    cdc_case.drain()
    _assert_same(cdc_case, table, "id, note")


def test_table_without_primary_key_is_append_only_with_is_deleted_in_merge_mode(
        cdc_case: CdcCase) -> None:
    table = cdc_case.t("keyless")
    cdc_case.admin.execute(f"create table {table} (a int, b text)")
    cdc_case.admin.execute(f"alter table {table} replica identity full")
    cdc_case.admin.execute(f"insert into {table} values (1, 'x'), (2, 'y')")
    cdc_case.publish(table)
    cdc_case.drain()
    cdc_case.admin.execute(f"delete from {table} where a = 1")
    cdc_case.drain()
    rows = cdc_case.raw(table, "a, b, datastream_metadata.is_deleted")
    assert sorted(rows) == [(1, "x", False), (1, "x", True), (2, "y", False)]


def test_truncate_empties_the_merged_table(cdc_case: CdcCase) -> None:
    table = _create_items(cdc_case, rows=20)
    cdc_case.publish(table)
    cdc_case.drain()
    cdc_case.admin.execute(f"truncate {table}")
    cdc_case.admin.execute(f"insert into {table} (id, name) values (99, 'after')")
    cdc_case.drain()
    _assert_same(cdc_case, table)


def test_column_added_while_the_service_runs(cdc_case: CdcCase) -> None:
    table = _create_items(cdc_case, rows=5)
    cdc_case.publish(table)
    proc = cdc_case.start_service()
    cdc_case.wait_ready(proc)
    cdc_case.admin.execute(f"insert into {table} (id, name) values (6, 'before')")
    cdc_case.admin.execute(f"alter table {table} add column extra text")
    cdc_case.admin.execute(f"insert into {table} (id, name, extra) values (7, 'after', 'E')")
    cdc_case.admin.execute(f"update {table} set extra = 'U' where id = 1")
    report = cdc_case.drain()  # the service holds the slot: waits for it to catch up
    assert report.waited_for_service
    rows = cdc_case.raw(table, "id, name, extra")
    assert rows[0] == (1, "n1", "U")
    assert [r[2] for r in rows[1:6]] == [None] * 5  # older rows: NULL (as Datastream)
    assert rows[6] == (7, "after", "E")
    assert cdc_case.stop_service(proc) == 0


def test_column_type_change_stops_with_a_clear_error(cdc_case: CdcCase) -> None:
    table = _create_items(cdc_case, rows=2)
    cdc_case.publish(table)
    cdc_case.drain()
    cdc_case.admin.execute(f"alter table {table} alter column name type int using length(name)")
    cdc_case.admin.execute(f"insert into {table} (id, name) values (3, 4)")
    with pytest.raises(SchemaError, match=f"column type of {table}.name changed"):
        cdc_case.drain()


def test_missing_slot_is_a_clear_error_and_resync_recovers(cdc_case: CdcCase) -> None:
    table = _create_items(cdc_case, rows=10)
    cdc_case.publish(table)
    cdc_case.drain()
    cdc_case.admin.execute("select pg_drop_replication_slot(%s)", (cdc_case.slot,))
    cdc_case.admin.execute(f"update {table} set name = 'lost' where id = 1")
    with pytest.raises(SlotLostError, match=f"slot '{cdc_case.slot}' does not exist") as err:
        cdc_case.drain()
    assert "python -m pulse_local.cdc resync" in str(err.value)
    report = resync(cdc_case.settings, cdc_case.config)
    assert report.backfilled_rows == 10
    _assert_same(cdc_case, table)


def test_lag_and_readiness(cdc_case: CdcCase) -> None:
    from pulse_local.cdc import cdc_ready, lag
    from pulse_local.errors import ServiceUnavailable

    table = _create_items(cdc_case, rows=3)
    cdc_case.publish(table)
    with pytest.raises(ServiceUnavailable, match="has not started"):
        cdc_ready(cdc_case.settings, cdc_case.config)
    proc = cdc_case.start_service()
    cdc_case.wait_ready(proc)
    cdc_case.admin.execute(f"insert into {table} (id) values (100)")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        measured = lag(cdc_case.settings, cdc_case.config)
        if measured.landed_changes == 1 and measured.bytes_behind is not None \
                and measured.bytes_behind < 4096:
            break
        time.sleep(0.05)
    assert measured.slot_active and measured.landed_changes == 1
    assert measured.seconds_behind is not None and measured.seconds_behind < 5
    assert cdc_case.slot in measured.summary()
    assert cdc_case.stop_service(proc) == 0
    with pytest.raises(ServiceUnavailable):
        cdc_ready(cdc_case.settings, cdc_case.config)
    assert lag(cdc_case.settings, cdc_case.config).slot_active is False


def test_shape_changes_inside_a_transaction_and_dropped_columns(cdc_case: CdcCase) -> None:
    table = _create_items(cdc_case, rows=2)
    cdc_case.publish(table)
    cdc_case.drain()
    with psycopg.connect(cdc_case.settings.admin_dsn()) as conn, conn.transaction():
        conn.execute(f"insert into {table} (id, name) values (3, 'old shape')")
        conn.execute(f"alter table {table} add column extra text")
        conn.execute(f"insert into {table} (id, name, extra) values (4, 'new shape', 'x')")
        conn.execute(f"update {table} set name = 'again' where id = 3")
    cdc_case.admin.execute(f"alter table {table} drop column ok")
    cdc_case.admin.execute(f"insert into {table} (id, name, extra) values (5, 'no ok', 'y')")
    cdc_case.drain()
    rows = cdc_case.raw(table, "id, name, extra, ok")
    assert rows == [(1, "n1", None, False), (2, "n2", None, True), (3, "again", None, None),
                    (4, "new shape", "x", None), (5, "no ok", "y", None)]


def test_append_only_table_is_exactly_datastreams_shape(cdc_case: CdcCase) -> None:
    """Append-only mode on real PostgreSQL changes: the table is named ``public_<table>``, its
    ``datastream_metadata`` has exactly the documented fields and types (no ``is_deleted``),
    the backfill writes INSERTs, an update its new image, a delete a DELETE."""
    cdc_case.mode = "append-only"
    table = _create_items(cdc_case, rows=2)
    cdc_case.publish(table)
    cdc_case.drain()
    cdc_case.admin.execute(f"update {table} set name = 'two' where id = 2")
    cdc_case.admin.execute(f"delete from {table} where id = 1")
    cdc_case.drain()
    con = cdc_case.duck()
    try:
        described = con.execute(
            "select data_type from information_schema.columns where table_schema = 'raw' "
            f"and table_name = 'public_{table}' and column_name = 'datastream_metadata'").fetchall()
        assert described == [(datastream.metadata_type_duckdb("append-only"),)]
        fields = [f for (f,) in con.execute(
            f'select unnest(struct_keys(datastream_metadata)) from raw."public_{table}" '
            "limit 5").fetchall()]
        assert fields == [name for name, _ in datastream.APPEND_ONLY_METADATA]
        events = con.execute(
            f'select id, datastream_metadata.change_type from raw."public_{table}" order by '
            "datastream_metadata.source_timestamp, datastream_metadata.change_sequence_number"
        ).fetchall()
    finally:
        con.close()
    backfill = datastream.BACKFILL_CHANGE_TYPE
    assert sorted(events[:2]) == [(1, backfill), (2, backfill)]
    assert events[2:] == [(2, "UPDATE-INSERT"), (1, "DELETE")]


def test_gcp_provisioning_creates_the_slot_once_and_needs_the_publication(
        cdc_case: CdcCase) -> None:
    """What `create_streams` runs against Cloud SQL before Datastream, on real PostgreSQL."""
    from pulse_local.cdc import CdcError
    from pulse_local.cdc.provision import ensure_replication

    table = _create_items(cdc_case)
    cdc_case.publish(table)
    slot = f"ds_{cdc_case.name}"
    dsn = cdc_case.settings.admin_dsn()
    try:
        assert ensure_replication(dsn, cdc_case.publication, [slot]) == [
            f"created replication slot {slot}"]
        assert ensure_replication(dsn, cdc_case.publication, [slot]) == [
            f"replication slot {slot} exists"]
        plugin = cdc_case.admin.execute("select plugin from pg_replication_slots "
                                        "where slot_name = %s", (slot,)).fetchone()
        assert plugin == ("pgoutput",)
        with pytest.raises(CdcError, match="publication 'nope' does not exist"):
            ensure_replication(dsn, "nope", [slot])
    finally:
        cdc_case.admin.execute("select pg_drop_replication_slot(slot_name) from "
                               "pg_replication_slots where slot_name = %s", (slot,))
