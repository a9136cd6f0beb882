"""Unit tests for pid tracking and port checks (local sockets and processes only)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pulse_local.errors import PortInUse
from pulse_local.stack import process


def test_pid_record_tells_a_dead_process(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = process.write_pid(tmp_path / "x.pid", child.pid, 1)
    child.wait()
    assert process.read_pid(tmp_path / "x.pid") == record
    assert not record.alive()


def test_pid_record_rejects_a_recycled_pid(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        record = process.write_pid(tmp_path / "x.pid", child.pid, 1)
        assert record.alive()
        recycled = process.PidRecord(record.pid, record.create_time - 1000, 1)
        assert not recycled.alive()
    finally:
        child.kill()
        child.wait()


def test_garbage_pid_file_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "x.pid").write_text("{not json")
    assert process.read_pid(tmp_path / "x.pid") is None


def test_port_in_use_names_port_owner_and_setting() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUse) as info:
            process.ensure_port_free("postgres", "127.0.0.1", port, "PULSE_POSTGRES_PORT")
    message = str(info.value)
    assert str(port) in message
    assert "PULSE_POSTGRES_PORT" in message
    assert f"pid {__import__('os').getpid()}" in message


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    child = process.spawn([sys.executable, "-c", code], log_path=tmp_path / "l.log", env={})
    record = process.write_pid(tmp_path / "c.pid", child.pid, 1)
    process.stop(record, timeout=0.5)
    child.wait(timeout=5)
    assert not record.alive()



def test_a_zombie_counts_as_exited_when_stopping(tmp_path: Path) -> None:
    """An exited process that its parent has not reaped (a zombie of a service's group) is
    stopped: `psutil.wait_procs` counted it alive until the grace ran out, ~2 s per stop.
    Real processes: a parent that never reaps its child, which exits at once."""
    import time

    import psutil

    code = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', "
            "'pass']); print(child.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        zombie = psutil.Process(int(parent.stdout.readline()))
        while zombie.status() != psutil.STATUS_ZOMBIE:  # until it has exited
            time.sleep(0.01)
        assert process._wait_gone([zombie], timeout=60) == []
        assert zombie.status() == psutil.STATUS_ZOMBIE  # not ours to reap: still there
    finally:
        parent.kill()
        parent.wait()


def test_stop_reaps_its_own_children(tmp_path: Path) -> None:
    """A stopped child of ours leaves no zombie behind (real process)."""
    import os

    child = process.spawn([sys.executable, "-c", "import time; time.sleep(60)"],
                          log_path=tmp_path / "l.log", env={})
    record = process.write_pid(tmp_path / "c.pid", child.pid, 1)
    process.stop(record, timeout=60)
    with pytest.raises(ChildProcessError):  # already collected by stop()
        os.waitpid(child.pid, os.WNOHANG)
