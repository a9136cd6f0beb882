"""Integration: PostgreSQL restarted under a running CDC service (it reconnects and resumes), and
a slot invalidated by max_slot_wal_keep_size (clear error, resync recovers). These tests run
their own small PostgreSQL, because they restart and reconfigure it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cdc_helpers import CdcCase

from pulse_local.cdc import SlotLostError, lag, resync
from pulse_local.config import Settings
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services
from pulse_local.testing.plugin import make_test_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_pg() -> Iterator[tuple[Settings, NativeStack]]:
    # DSN overrides in the environment (the session stack exports them) would point at the
    # session PostgreSQL: this stack's settings must address its own server.
    settings = make_test_settings().model_copy(
        update={"admin_database_url": None, "database_url": None})
    stack = NativeStack(settings, [s for s in native_services(settings) if s.name == "postgres"])
    stack.up()
    try:
        yield settings, stack
    finally:
        stack.down()
        shutil.rmtree(settings.state_dir, ignore_errors=True)


@pytest.fixture()
def case(own_pg: tuple[Settings, NativeStack], tmp_path: Path) -> Iterator[CdcCase]:
    settings, _ = own_pg
    admin = psycopg.connect(settings.admin_dsn(), autocommit=True)
    case = CdcCase(settings, admin, tmp_path)
    try:
        yield case
    finally:
        for proc in case.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        admin.close()


def _wait_landed(case: CdcCase, changes: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while lag(case.settings, case.config).landed_changes < changes:
        assert time.monotonic() < deadline, f"not landed in time:\n{case.log()}"
        time.sleep(0.05)


def test_service_resumes_after_postgres_restart(own_pg: tuple[Settings, NativeStack],
                                                case: CdcCase) -> None:
    _, stack = own_pg
    table = case.t("restart")
    case.admin.execute(f"create table {table} (id int primary key, note text)")
    case.admin.execute(f"insert into {table} values (1, 'backfilled')")
    case.publish(table)
    proc = case.start_service()
    case.wait_ready(proc)
    case.admin.execute(f"insert into {table} select g, 'before' from generate_series(2, 100) g")
    _wait_landed(case, 99)

    started = case.admin.execute("select pg_postmaster_start_time()").fetchone()
    case.admin.close()
    assert stack.down() == ["postgres"]  # fast shutdown under the streaming service
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(case.settings.admin_dsn(), connect_timeout=2)
    time.sleep(0.5)
    stack.up()
    case.admin = psycopg.connect(case.settings.admin_dsn(), autocommit=True)
    assert case.admin.execute("select pg_postmaster_start_time()").fetchone() != started
    case.admin.execute(f"insert into {table} select g, 'after' from generate_series(101, 200) g")
    case.admin.execute(f"update {table} set note = 'updated after' where id <= 10")
    _wait_landed(case, 99 + 100 + 10)
    assert proc.poll() is None, "the service must survive the restart"
    assert "reconnecting" in case.log(), case.log()
    assert case.raw(table, "id, note") == case.source(table, "id, note")
    assert case.stop_service(proc) == 0


def test_invalidated_slot_is_a_clear_error_and_resync_recovers(case: CdcCase) -> None:
    table = case.t("lost")
    case.admin.execute(f"create table {table} (id int primary key, note text)")
    case.admin.execute(f"create table filler_{case.name} (pad text)")
    case.admin.execute(f"insert into {table} values (1, 'a')")
    case.publish(table)
    case.drain()
    case.admin.execute(f"update {table} set note = 'b' where id = 1")
    case.admin.execute("alter system set max_slot_wal_keep_size = '1MB'")
    case.admin.execute("select pg_reload_conf()")
    try:
        for _ in range(4):  # move WAL far past the slot, then let checkpoints remove it
            case.admin.execute(f"insert into filler_{case.name} "
                               "select repeat(md5(g::text), 20) from generate_series(1, 3000) g")
            case.admin.execute("select pg_switch_wal()")
            case.admin.execute("checkpoint")
        status = case.admin.execute("select wal_status from pg_replication_slots "
                                    "where slot_name = %s", (case.slot,)).fetchone()
        assert status == ("lost",)
        with pytest.raises(SlotLostError, match=f"slot '{case.slot}' was invalidated") as err:
            case.drain()
        assert "python -m pulse_local.cdc resync" in str(err.value)
    finally:
        case.admin.execute("alter system reset max_slot_wal_keep_size")
        case.admin.execute("select pg_reload_conf()")
    report = resync(case.settings, case.config)
    assert report.backfilled_rows == 1
    assert case.raw(table, "id, note") == [(1, "b")]
