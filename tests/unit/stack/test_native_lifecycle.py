"""Unit tests: `status` while `up` is still starting a service, and `up`'s per-service ready
report. The service is a stand-in (Python's `http.server` on a free local port) with a probe
and a hook the test holds back; the stack code around it is the real one."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from pulse_local.config import Settings
from pulse_local.errors import ServiceUnavailable, StackStateError
from pulse_local.stack import process
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import ServiceSpec


def _spec(answer: threading.Event, hooks_done: threading.Event, **changes: object) -> ServiceSpec:
    def probe(settings: Settings) -> None:
        if not answer.is_set():
            raise ConnectionError("held back by the test")

    spec = ServiceSpec(
        name="web", port_field="serving_port",
        argv=lambda s: [sys.executable, "-m", "http.server", str(s.serving_port),
                        "--bind", s.host],
        probe=probe, after_ready=lambda s: hooks_done.wait(30), start_timeout=30.0)
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", serving_port=process.free_port())


def _health(stack: NativeStack) -> tuple[str, str]:
    (status,) = stack.status()
    return status.health, status.detail


def _wait_for(predicate: object, limit: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + limit
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def test_status_says_starting_until_probe_and_hooks_are_through(settings: Settings) -> None:
    answer, hooks_done = threading.Event(), threading.Event()
    stack = NativeStack(settings, [_spec(answer, hooks_done)])
    ready: list[str] = []
    stack.on_ready = lambda name, seconds: ready.append(name)
    up = threading.Thread(target=stack.up)
    up.start()
    try:
        _wait_for(lambda: stack.pid_path("web").exists())
        health, detail = _health(stack)
        assert health == "starting" and "not answering yet" in detail
        answer.set()
        _wait_for(lambda: "answers" in _health(stack)[1])
        assert _health(stack)[0] == "starting"  # its hooks still run
        assert ready == []
        hooks_done.set()
        up.join(30)
        assert ready == ["web"]
        assert _health(stack)[0] == "healthy"
        assert not stack.starting_path("web").exists()
    finally:
        answer.set()
        hooks_done.set()
        up.join(30)
        stack.down(save=False)


def test_a_mark_left_by_a_killed_up_is_not_starting(settings: Settings) -> None:
    answer, hooks_done = threading.Event(), threading.Event()
    hooks_done.set()
    answer.set()
    stack = NativeStack(settings, [_spec(answer, hooks_done)])
    stack.up()
    try:
        answer.clear()  # the service stops answering
        gone = subprocess.Popen([sys.executable, "-c", "pass"])  # an `up` that has exited
        gone.wait()
        stack.starting_path("web").write_text(f"{gone.pid} 0\n")
        assert _health(stack)[0] == "unhealthy"
    finally:
        stack.down(save=False)


def test_up_fails_naming_a_service_that_never_answers(settings: Settings) -> None:
    answer, hooks_done = threading.Event(), threading.Event()
    stack = NativeStack(settings, [_spec(answer, hooks_done, start_timeout=1.0)])
    try:
        with pytest.raises(ServiceUnavailable, match="web did not answer"):
            stack.up()
        assert not stack.starting_path("web").exists()
        assert not stack.pid_path("web").exists()
    finally:
        stack.down(save=False)


def test_a_save_keeps_a_service_running_and_saves_it_after_the_others_stop(
        tmp_path: Path) -> None:
    """`down(keep=...)`, as `snapshot save` calls it: the kept service (which must stop after
    the other, like Prefect's server after PostgreSQL) is saved once the other, which may
    write anywhere, has stopped, and is not stopped; nothing waits for it (this deadlocked
    once)."""
    settings = Settings(state_dir=tmp_path / "state", serving_port=process.free_port(),
                        processor_port=process.free_port())
    up_now = threading.Event()
    up_now.set()
    saved: list[bool] = []
    other = dataclasses.replace(_spec(up_now, up_now), name="other", port_field="processor_port",
                                argv=lambda s: [sys.executable, "-m", "http.server",
                                                str(s.processor_port), "--bind", s.host],
                                writes_anywhere=True)
    kept = dataclasses.replace(
        _spec(up_now, up_now), stop_after=("other",),
        save_running=lambda s, after_kill: saved.append(
            process.read_pid(NativeStack(s).pid_path("other")) is None) or "web: saved")
    stack = NativeStack(settings, [other, kept])
    stack.up()
    web = process.read_pid(stack.pid_path("web"))
    try:
        down = threading.Thread(target=stack.down, kwargs={"keep": frozenset({"web"})})
        down.start()
        down.join(30)
        assert not down.is_alive(), "down(keep=...) did not return"
        assert saved == [True]  # saved once, after the other service had stopped
        assert "web: saved" in stack.notes
        assert process.read_pid(stack.pid_path("web")) == web and web is not None and web.alive()
        assert process.read_pid(stack.pid_path("other")) is None
    finally:
        stack.down(save=False)


def test_a_service_whose_state_is_saved_only_on_stop_cannot_be_kept(settings: Settings) -> None:
    answer = threading.Event()
    spec = dataclasses.replace(_spec(answer, answer), before_stop=lambda s, k: "saved on stop")
    with pytest.raises(StackStateError, match="cannot keep running"):
        NativeStack(settings, [spec]).down(keep=frozenset({"web"}))


def test_a_failing_early_step_of_down_is_a_note_and_the_service_still_stops(
        settings: Settings) -> None:
    answer = threading.Event()
    answer.set()

    def fails(settings: Settings) -> str | None:
        raise RuntimeError("no checkpoint today")

    stack = NativeStack(settings, [dataclasses.replace(_spec(answer, answer), on_down=fails)])
    stack.up()
    try:
        assert stack.down() == ["web"]
        assert any("no checkpoint today" in n for n in stack.notes), stack.notes
        assert process.read_pid(stack.pid_path("web")) is None
    finally:
        stack.down(save=False)


def test_a_service_ordered_only_while_busy_keeps_the_order_only_with_a_child(
        settings: Settings) -> None:
    """The deployments runner stops before Prefect only while a flow run (a child process) is
    in progress; idle, it stops beside it."""
    answer = threading.Event()
    spec = dataclasses.replace(_spec(answer, answer), stop_after=("other",),
                               stop_after_only_if_busy=True)
    stack = NativeStack(settings, [spec])
    idle = subprocess.Popen(["sleep", "30"], start_new_session=True)
    busy = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], start_new_session=True)
    try:
        _wait_for(lambda: bool(psutil.Process(busy.pid).children()))
        process.write_pid(stack.pid_path("web"), idle.pid, 0)
        assert stack._stop_after(spec) == ()
        process.write_pid(stack.pid_path("web"), busy.pid, 0)
        assert stack._stop_after(spec) == ("other",)
        ordered = dataclasses.replace(spec, stop_after_only_if_busy=False)
        process.write_pid(stack.pid_path("web"), idle.pid, 0)
        assert stack._stop_after(ordered) == ("other",)
    finally:
        for proc in (idle, busy):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
