"""Processes the native stack owns: spawn detached, track by pid file, stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from pulse_local.errors import PortInUse


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: enough to tell our process from a recycled pid."""

    pid: int
    create_time: float
    port: int

    def alive(self) -> bool:
        """True when the recorded process still runs (same pid *and* same start time)."""
        try:
            proc = psutil.Process(self.pid)
            return abs(proc.create_time() - self.create_time) < 1.0 and proc.status() != "zombie"
        except psutil.Error:
            return False


def read_pid(path: Path) -> PidRecord | None:
    """Read a pid file; None when absent or unreadable (a crashed writer)."""
    try:
        data = json.loads(path.read_text())
        return PidRecord(int(data["pid"]), float(data["create_time"]), int(data["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_pid(path: Path, pid: int, port: int) -> PidRecord:
    """Record a started process."""
    record = PidRecord(pid, psutil.Process(pid).create_time(), port)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.__dict__))
    tmp.replace(path)
    return record


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    popen_kwargs: Mapping[str, Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a detached process in its own session (so `down` can stop its whole group);
    `popen_kwargs` go to `subprocess.Popen` (``user``, ``group``...)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            **(popen_kwargs or {}),
        )


def end_child(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a child this process started and reap it: SIGTERM, SIGKILL after `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def end_child_group(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a child started with ``start_new_session=True`` and every process of its group
    (a browser's renderers and helpers): SIGTERM to all, SIGKILL after `timeout`; reap the
    child. When this returns, nothing of the group runs (so none still writes its files)."""
    members = _group_members(proc.pid)  # the child leads its own group: pgid == pid
    for member in members:
        _signal(member, signal.SIGTERM)
    still = _wait_gone(members, timeout)
    for member in still:
        _signal(member, signal.SIGKILL)
    _wait_gone(still, 5.0)
    end_child(proc, timeout=1.0)  # reaped (already exited: returns at once)


def stop(record: PidRecord, sig: int = signal.SIGTERM, timeout: float = 5.0) -> bool:
    """Stop a recorded process and its group: `sig` first, SIGKILL after `timeout` seconds.
    True when some process of the group had to be killed (it did not stop cleanly)."""
    if not record.alive():
        _reap(record.pid)  # it may have exited as our child: leave no zombie
        return False
    try:
        group = os.getpgid(record.pid)
    except ProcessLookupError:
        return False
    procs = _group_members(group)
    for proc in procs:
        _signal(proc, sig if proc.pid == record.pid else signal.SIGTERM)
    still = _wait_gone(procs, timeout)
    for proc in still:
        _signal(proc, signal.SIGKILL)
    _wait_gone(still, 2.0)
    return bool(still)


def _running(proc: psutil.Process) -> bool:
    """True while `proc` runs. A zombie (exited, not yet reaped by its parent) has stopped:
    `psutil.wait_procs` counted those as alive until its timeout, ~2 s per stop wave. A zombie
    that is our own child is reaped here (others are their parent's, or init's, to reap)."""
    try:
        alive = proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # gone, or a zombie (ZombieProcess)
        alive = False
    return alive or not _reap(proc.pid)


def _reap(pid: int) -> bool:
    """Collect the exit status of `pid` if it is an exited child of ours (no wait). False
    only for our child that cannot be collected yet (a process whose main thread exited
    shows as a zombie until its other threads have)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:  # not our child, or already collected: nothing to do
        return True


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` seconds for `procs` to exit (zombies count as exited); return the
    ones still running."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if _running(p)]
    return alive


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        return


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (we try to bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts a TCP connection on host:port (a few microseconds of CPU:
    `up` checks this before a service's real probe, which builds a client each time)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """Describe the process listening on `port`, or say it cannot be told."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    proc = psutil.Process(conn.pid)
                    return f"pid {conn.pid} ({' '.join(proc.cmdline())[:80]})"
                return "a process of another user"
    except (psutil.Error, PermissionError):
        pass
    return "an unknown process"


def ensure_port_free(service: str, host: str, port: int, setting: str) -> None:
    """Raise `PortInUse` naming the port, its owner and the setting to change."""
    if not port_is_free(host, port):
        raise PortInUse(
            f"{service} cannot start: port {port} on {host} is in use by {port_owner(port)}. "
            f"Stop that process, or choose another port: export {setting}=<free port>"
        )


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file ('' when there is none)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (for tests and parallel stacks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
