"""Integration: the native stack's life cycle with real processes (PostgreSQL and the official
Bigtable emulator; Pub/Sub and Prefect are covered by the session stack in test_session_stack).

Each test here runs its own small stack in its own state directory on free ports, because these
tests kill and restart services."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from typer.testing import CliRunner

from pulse_local.cli import app
from pulse_local.config import Settings
from pulse_local.errors import PortInUse, ServiceUnavailable, StackStateError
from pulse_local.stack import process
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services
from pulse_local.testing.plugin import make_test_settings

pytestmark = pytest.mark.integration


def small_stack(settings: Settings) -> NativeStack:
    """PostgreSQL and Bigtable only: the quickest real services."""
    keep = {"postgres", "bigtable"}
    return NativeStack(settings, [s for s in native_services(settings) if s.name in keep])


@pytest.fixture()
def settings() -> Iterator[Settings]:
    s = make_test_settings()
    yield s
    NativeStack(s).down()


def _service_pids(stack: NativeStack) -> dict[str, int]:
    return {s.name: s.pid for s in stack.status() if s.pid}


def test_up_is_idempotent_and_down_leaves_no_process(settings: Settings) -> None:
    stack = small_stack(settings)
    first = stack.up()
    assert sorted(first.started) == ["bigtable", "postgres"]
    assert all(s.health == "healthy" for s in stack.status())
    pids = _service_pids(stack)

    second = stack.up()
    assert not second.changed and sorted(second.already_running) == ["bigtable", "postgres"]
    assert _service_pids(stack) == pids

    assert sorted(stack.down()) == ["bigtable", "postgres"]
    assert not any(psutil.pid_exists(pid) for pid in pids.values())
    assert all(s.health == "down" for s in stack.status())


def test_application_role_is_not_superuser(settings: Settings) -> None:
    small_stack(settings).up()
    with psycopg.connect(settings.app_dsn()) as conn:
        row = conn.execute(
            "select rolsuper, rolbypassrls from pg_roles where rolname = current_user"
        ).fetchone()
        level = conn.execute("show wal_level").fetchone()
    assert row == (False, False)
    assert level == ("logical",)


def test_data_survives_down_and_up(settings: Settings) -> None:
    stack = small_stack(settings)
    stack.up()
    with psycopg.connect(settings.admin_dsn(), autocommit=True) as conn:
        conn.execute("create table keep_me (v text)")
        conn.execute("insert into keep_me values ('still here')")
    stack.down()
    stack.up()
    with psycopg.connect(settings.admin_dsn()) as conn:
        assert conn.execute("select v from keep_me").fetchall() == [("still here",)]


def test_a_dead_service_shows_in_status_and_up_restarts_it(settings: Settings) -> None:
    stack = small_stack(settings)
    stack.up()
    victim = _service_pids(stack)["bigtable"]
    os.kill(victim, signal.SIGKILL)
    psutil.Process(victim).wait(5) if psutil.pid_exists(victim) else None
    status = {s.name: s for s in stack.status()}
    assert status["bigtable"].health == "down"
    assert "pulse-local up" in status["bigtable"].detail
    report = stack.up()
    assert report.restarted == ["bigtable"]
    assert any("stale pid" in note for note in report.notes)
    assert {s.name: s.health for s in stack.status()} == {"postgres": "healthy", "bigtable": "healthy"}


def test_port_in_use_names_port_and_setting_and_starts_nothing(settings: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind((settings.host, settings.bigtable_port))
        squatter.listen()
        with pytest.raises(PortInUse, match=f"{settings.bigtable_port}.*PULSE_BIGTABLE_PORT"):
            small_stack(settings).up()
    assert all(s.health == "down" for s in small_stack(settings).status())


def test_state_dir_from_an_older_layout_is_refused(settings: Settings) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    (settings.state_dir / "STATE_VERSION").write_text("0\n")
    with pytest.raises(StackStateError, match="reset --yes"):
        small_stack(settings).up()


def test_foreign_state_dir_is_refused(settings: Settings) -> None:
    (settings.state_dir / "somebody-elses-file").write_text("x")
    with pytest.raises(StackStateError, match="PULSE_STATE_DIR"):
        small_stack(settings).up()


def test_service_that_cannot_start_shows_its_log(settings: Settings, tmp_path: Path) -> None:
    fake_sdk = tmp_path / "sdk"
    emulator = fake_sdk / "platform" / "bigtable-emulator" / "cbtemulator"
    emulator.parent.mkdir(parents=True)
    emulator.write_text("#!/bin/sh\necho 'emulator exploded: bad flag' >&2\nexit 3\n")
    emulator.chmod(0o755)
    os.environ["PULSE_GCLOUD_SDK_ROOT"] = str(fake_sdk)
    try:
        stack = NativeStack(settings, [s for s in native_services(settings) if s.name == "bigtable"])
        with pytest.raises(Exception, match="(?s)exited with code 3.*emulator exploded"):
            stack.up()
    finally:
        del os.environ["PULSE_GCLOUD_SDK_ROOT"]


def test_reset_asks_and_only_yes_deletes(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    small_stack(settings).up()
    monkeypatch.setenv("PULSE_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("PULSE_POSTGRES_PORT", str(settings.postgres_port))
    monkeypatch.setenv("PULSE_BIGTABLE_PORT", str(settings.bigtable_port))
    monkeypatch.setenv("PULSE_STACK", "native")
    runner = CliRunner()
    refused = runner.invoke(app, ["reset"], input="n\n")
    assert refused.exit_code == 1 and settings.state_dir.exists()
    assert all(s.health == "healthy" for s in small_stack(settings).status())
    done = runner.invoke(app, ["reset", "--yes"])
    assert done.exit_code == 0, done.output
    assert not settings.state_dir.exists()
    assert not any(process.read_pid(Path(p)) for p in [settings.state_dir / "run" / "postgres.pid"])


def test_up_fails_naming_a_running_service_that_does_not_answer(settings: Settings) -> None:
    """A service already running but not answering (stopped with SIGSTOP here) makes `up`
    fail with its name and probe error, instead of reporting the stack up."""
    import dataclasses

    stack = small_stack(settings)
    stack.up()
    victim = _service_pids(stack)["bigtable"]
    quick = NativeStack(settings, [dataclasses.replace(s, start_timeout=3.0)
                                   for s in stack.services])
    os.kill(victim, signal.SIGSTOP)
    try:
        with pytest.raises(ServiceUnavailable, match="bigtable is running but unhealthy"):
            quick.up()
    finally:
        os.kill(victim, signal.SIGCONT)
    assert sorted(quick.up().already_running) == ["bigtable", "postgres"]
