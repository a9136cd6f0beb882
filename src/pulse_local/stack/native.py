"""The native stack: real processes started by this project, tracked by pid files."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

import pulse_local.stack.process as process  # noqa: PLR0402 (no package import: circle)
from pulse_local.config import Settings
from pulse_local.errors import PulseError, ServiceUnavailable, StackStateError
from pulse_local.stack.base import ServiceStatus, StartReport
from pulse_local.stack.credentials import prepare_stack_secrets
from pulse_local.stack.services import (
    ServiceSpec,
    native_services,
    nothing_to_save,
    service_env,
)

#: Layout version of the state directory; bump when its layout changes incompatibly.
STATE_VERSION = 1


class NativeStack:
    """Runs each service as a detached process; `up` is idempotent, `down` leaves nothing."""

    mode = "native"

    def __init__(self, settings: Settings, services: list[ServiceSpec] | None = None) -> None:
        self.settings = settings
        self.services = services if services is not None else native_services(settings)
        self._by_name = {s.name: s for s in self.services}
        #: What the last `down` has to tell (the emulators' saves).
        self.notes: list[str] = []
        #: Seconds the last `down` took per service: waiting for its users, its save, its stop.
        self.stop_seconds: dict[str, dict[str, float]] = {}
        #: Called by `up` as each service it starts becomes ready (name, seconds since `up`
        #: began): the CLI prints one line each, so the user sees the data path ready while
        #: Prefect still imports.
        self.on_ready: Callable[[str, float], None] | None = None

    # Paths --------------------------------------------------------------------------------
    def pid_path(self, name: str) -> Path:
        return self.settings.state_dir / "run" / f"{name}.pid"

    def log_path(self, name: str) -> Path:
        return self.settings.state_dir / "logs" / f"{name}.log"

    def starting_path(self, name: str) -> Path:
        """Present while `up` starts the service: spawned, not yet through its probe and hooks
        (a restore of the emulators' state, migrations); it names the `up` process."""
        return self.settings.state_dir / "run" / f"{name}.starting"

    def _starting_since(self, name: str) -> float | None:
        """When a live `up` began starting the service (None: not starting, or the `up` that
        wrote the mark is gone, killed half-way)."""
        try:
            up_pid, since = self.starting_path(name).read_text().split()
            return float(since) if psutil.pid_exists(int(up_pid)) else None
        except (OSError, ValueError):
            return None

    def _check_state_dir(self) -> None:
        """Create the state directory, or refuse one written by an incompatible version."""
        state = self.settings.state_dir
        marker = state / "STATE_VERSION"
        if marker.exists():
            found = marker.read_text().strip()
            if found != str(STATE_VERSION):
                raise StackStateError(
                    f"{state} was written by a pulse-local with state layout {found!r}; this one "
                    f"uses {STATE_VERSION}. Keep a copy if you need it, then recreate it with "
                    "`pulse-local reset --yes && pulse-local up`"
                )
            return
        # `secrets/` alone may come first (the test plugin generates them before `up`)
        if state.exists() and any(p.name != "secrets" for p in state.iterdir()):
            raise StackStateError(
                f"{state} holds files but no STATE_VERSION: it is from an older pulse-local or "
                "not ours. Recreate it with `pulse-local reset --yes && pulse-local up`, "
                "or choose another directory with PULSE_STATE_DIR"
            )
        state.mkdir(parents=True, exist_ok=True)
        for sub in ("run", "logs", "warehouse", "bucket"):
            (state / sub).mkdir(exist_ok=True)
        marker.write_text(f"{STATE_VERSION}\n")

    # Up -----------------------------------------------------------------------------------
    def up(self) -> StartReport:
        """Start every service that is not running, in parallel where dependencies allow."""
        began = time.perf_counter()
        self._check_state_dir()
        report = StartReport()
        to_start: list[ServiceSpec] = []
        for spec in self.services:
            record = process.read_pid(self.pid_path(spec.name))
            if record is not None and record.alive():
                report.already_running.append(spec.name)
                continue
            if record is not None:
                self.pid_path(spec.name).unlink(missing_ok=True)
                report.restarted.append(spec.name)
                report.notes.append(f"{spec.name} had died (stale pid {record.pid}); restarted")
            to_start.append(spec)
        if note := prepare_stack_secrets(self.settings, {s.name for s in to_start},
                                         set(report.already_running)):
            report.notes.append(note)
        for spec in (s for s in to_start if s.uses_port):
            process.ensure_port_free(spec.name, self.settings.host, spec.port(self.settings),
                                     spec.port_setting)
        ready = {name: threading.Event() for name in self._by_name}
        failures: dict[str, BaseException] = {}

        def bring_up(spec: ServiceSpec) -> None:
            try:
                for dep in spec.depends_on:
                    if dep not in ready:  # not part of this stack (a snapshot keeps it running)
                        continue
                    ready[dep].wait()
                    if dep in failures:
                        raise ServiceUnavailable(f"{spec.name} not started: {dep} failed")
                t0 = time.perf_counter()
                if (note := self._start_one(spec, report.stages.setdefault(spec.name, {}))) is not None:
                    report.notes.append(note)
                report.seconds[spec.name] = round(time.perf_counter() - t0, 2)
                if spec.name not in report.restarted:
                    report.started.append(spec.name)
                if self.on_ready is not None:
                    self.on_ready(spec.name, time.perf_counter() - began)
            except BaseException as exc:  # noqa: BLE001 - up() raises them all, named, after the joins
                failures[spec.name] = exc
            finally:
                ready[spec.name].set()

        def check_running(spec: ServiceSpec) -> None:
            """A service already running must answer too (one whose dependency died, say):
            wait for it like a starting one, or fail naming it."""
            try:
                for dep in spec.depends_on:  # restored (or failed) first
                    if dep in ready:
                        ready[dep].wait()
                self._wait_healthy(spec)
                if spec.restore_when_running and (note := spec.restore(self.settings)):
                    report.notes.append(note)
            except BaseException as exc:  # noqa: BLE001 - up() raises them all, named
                failures[spec.name] = exc
            finally:
                ready[spec.name].set()

        running = [self._by_name[name] for name in report.already_running]
        with ThreadPoolExecutor(max_workers=max(1, len(to_start) + len(running))) as pool:
            # all at once: a running service may be waiting for one that is starting
            for spec in running:
                pool.submit(check_running, spec)
            for spec in to_start:
                pool.submit(bring_up, spec)
        # Idempotent hooks (roles, migrations, declared resources) also run for services that
        # were already up, so a `git pull` that adds a migration or a topic takes effect.
        for name in report.already_running:
            if name not in failures:
                self._by_name[name].after_ready(self.settings)
        report.total_seconds = round(time.perf_counter() - began, 2)
        if failures:
            first = next(iter(failures.values()))
            if len(failures) == 1 and isinstance(first, PulseError):
                raise first
            raise ServiceUnavailable("\n\n".join(f"{n}: {e}" for n, e in failures.items()))
        return report

    def _start_one(self, spec: ServiceSpec, stages: dict[str, float]) -> str | None:
        """Prepare, spawn, wait for the probe, run its hooks (the restore's note is returned);
        on failure stop it and show the log's tail. `stages` gets each step's seconds."""
        settings = self.settings
        t0 = time.perf_counter()
        spec.prepare(settings)
        stages["prepare"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        env = {**os.environ, **service_env(settings), **spec.env(settings)}
        proc = process.spawn(
            spec.argv(settings), log_path=self.log_path(spec.name), env=env,
            cwd=settings.state_dir, popen_kwargs=spec.popen_kwargs(settings),
        )
        record = process.write_pid(self.pid_path(spec.name), proc.pid, spec.port(settings))
        self.starting_path(spec.name).write_text(f"{os.getpid()} {time.time()}\n")
        try:
            return self._await_ready(spec, proc, record, stages, t0)
        finally:
            self.starting_path(spec.name).unlink(missing_ok=True)

    def _await_ready(self, spec: ServiceSpec, proc: subprocess.Popen[bytes],
                     record: process.PidRecord, stages: dict[str, float], t0: float) -> str | None:
        """Probe a spawned service until it answers, then run its hooks (see `_start_one`)."""
        settings = self.settings
        deadline = time.monotonic() + spec.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_path(spec.name).unlink(missing_ok=True)
                raise ServiceUnavailable(
                    f"{spec.name} exited with code {proc.returncode} while starting. "
                    f"Last lines of {self.log_path(spec.name)}:\n"
                    f"{process.tail(self.log_path(spec.name))}"
                )
            try:
                # nothing listens yet (an import, a JVM starting): no client built for nothing
                if not process.port_accepts(settings.host, spec.port(settings)):
                    raise ConnectionRefusedError(
                        f"nothing accepts connections on {settings.host}:{spec.port(settings)}")
                spec.probe(settings)
                break
            except Exception as exc:  # noqa: BLE001 - not ready yet: the probe's error is kept for the report
                last_error = exc
                time.sleep(0.05)
        else:
            process.stop(record, spec.stop_signal, spec.stop_timeout)
            self.pid_path(spec.name).unlink(missing_ok=True)
            raise ServiceUnavailable(
                f"{spec.name} did not answer within {spec.start_timeout:.0f} s "
                f"(last probe error: {last_error}). Last lines of "
                f"{self.log_path(spec.name)}:\n{process.tail(self.log_path(spec.name))}"
            )
        stages["ready"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        spec.after_ready(settings)
        note = spec.restore(settings)
        stages["hooks"] = round(time.perf_counter() - t0, 2)
        return note

    def _wait_healthy(self, spec: ServiceSpec) -> None:
        """Probe a running service until it answers, for at most its start timeout; raise
        `ServiceUnavailable` naming it, its last probe error and its log's tail."""
        deadline = time.monotonic() + spec.start_timeout
        while True:
            try:
                spec.probe(self.settings)
                return
            except Exception as exc:  # noqa: BLE001 - not healthy yet: kept for the report
                if time.monotonic() >= deadline:
                    raise ServiceUnavailable(
                        f"{spec.name} is running but unhealthy after {spec.start_timeout:.0f} s "
                        f"(last probe error: {str(exc)[:300]}). Last lines of "
                        f"{self.log_path(spec.name)}:\n{process.tail(self.log_path(spec.name))}"
                        f"\nRestart it: `pulse-local down && pulse-local up`") from None
                time.sleep(0.2)

    # Down, status, logs ---------------------------------------------------------------------
    def down(self, *, save: bool = True, keep: frozenset[str] = frozenset()) -> list[str]:
        """Stop every running service, each as soon as everything that needs it has stopped
        (all in parallel otherwise); data stays, the emulators' state is saved first (not
        with ``save=False``: a stack about to be deleted). Notes land in `notes`.

        Services named in `keep` stay running: once their users (and every service that
        `writes_anywhere`) have stopped, their state is saved in place
        (`ServiceSpec.save_running`); a snapshot's save stops only the writers.
        """
        unkeepable = sorted(n for n in keep & self._by_name.keys()
                            if self._by_name[n].save_running is None
                            and self._by_name[n].before_stop is not nothing_to_save)
        if unkeepable:
            raise StackStateError(f"{', '.join(unkeepable)} cannot keep running through a "
                                  "save: their state is saved only when they stop")
        stopped: list[str] = []
        self.notes = []
        self.stop_seconds = {}
        needs = {s.name: (set(s.depends_on) | set(self._stop_after(s))) & self._by_name.keys()
                 for s in self.services}
        for name in keep & self._by_name.keys():
            needs[name] = set()  # it does not stop: nothing waits for it
        for name in keep & self._by_name.keys():
            # what keeps running is saved once its users have stopped, and the services that
            # may write anywhere (a flow of the deployments runner)
            for other in self._by_name.keys() - keep:
                if self._by_name[other].writes_anywhere:
                    needs[other].add(name)
        done = {name: threading.Event() for name in self._by_name}
        killed: set[str] = set()

        def stop_one(spec: ServiceSpec) -> None:
            t0 = time.perf_counter()
            times = self.stop_seconds.setdefault(spec.name, {})
            try:
                record = process.read_pid(self.pid_path(spec.name))
                if save and record is not None and record.alive():
                    try:
                        note = spec.on_down(self.settings)
                    except Exception as exc:  # noqa: BLE001 - it only shortens the stop: say so, go on
                        note = f"{spec.name}: its early step on `down` failed ({exc}); stopped as before"
                    if note:
                        self.notes.append(note)
                    times["early"] = round(time.perf_counter() - t0, 2)
                for other, needed in needs.items():
                    if spec.name in needed:
                        done[other].wait()
                times["wait"] = round(time.perf_counter() - t0, 2)
                record = process.read_pid(self.pid_path(spec.name))
                if spec.name in keep:
                    if save and record is not None and record.alive() and spec.save_running:
                        after_kill = any(spec.name in needs[other] for other in killed)
                        t0 = time.perf_counter()
                        if note := spec.save_running(self.settings, after_kill):
                            self.notes.append(note)
                        times["save"] = round(time.perf_counter() - t0, 2)
                    return
                if record is not None and record.alive():
                    # a user of this service that had to be killed may have left work behind
                    # (Pub/Sub messages it held come back only when their lease runs out)
                    after_kill = any(spec.name in needs[other] for other in killed)
                    t0 = time.perf_counter()
                    if save and (note := spec.before_stop(self.settings, after_kill)):
                        self.notes.append(note)
                    times["save"] = round(time.perf_counter() - t0, 2)
                    t0 = time.perf_counter()
                    stopped_cleanly = not process.stop(record, spec.stop_signal,
                                                       spec.stop_timeout)
                    times["stop"] = round(time.perf_counter() - t0, 2)
                    if not stopped_cleanly:
                        killed.add(spec.name)
                        self.notes.append(f"{spec.name} did not stop within "
                                          f"{spec.stop_timeout:g} s and was killed")
                    stopped.append(spec.name)
                self.pid_path(spec.name).unlink(missing_ok=True)
                self.starting_path(spec.name).unlink(missing_ok=True)
            finally:
                done[spec.name].set()

        with ThreadPoolExecutor(max_workers=max(1, len(self.services))) as pool:
            for future in [pool.submit(stop_one, spec) for spec in self.services]:
                future.result()
        return stopped

    def _stop_after(self, spec: ServiceSpec) -> tuple[str, ...]:
        """`spec.stop_after`, or nothing for a service that needs it only while busy and has no
        child process now (no flow run in progress; one that starts later is stopped with its
        process group)."""
        if not spec.stop_after_only_if_busy:
            return spec.stop_after
        record = process.read_pid(self.pid_path(spec.name))
        if record is None or not record.alive():
            return spec.stop_after
        try:
            busy = bool(psutil.Process(record.pid).children())
        except psutil.Error:
            busy = True
        return spec.stop_after if busy else ()

    def status(self) -> list[ServiceStatus]:
        """Each service's process and a real probe."""

        def one(spec: ServiceSpec) -> ServiceStatus:
            address = spec.address(self.settings)
            record = process.read_pid(self.pid_path(spec.name))
            if record is None:
                return ServiceStatus(spec.name, address, "down", None, "not started")
            if not record.alive():
                return ServiceStatus(spec.name, address, "down", record.pid,
                                     "process died: `pulse-local up` restarts it")
            since = self._starting_since(spec.name)
            try:
                spec.probe(self.settings)
            except Exception as exc:  # noqa: BLE001 - the probe's error is the status detail
                if since is not None:
                    return ServiceStatus(spec.name, address, "starting", record.pid,
                                         f"started {time.time() - since:.0f} s ago, not answering "
                                         "yet: `pulse-local up` is waiting for it")
                return ServiceStatus(spec.name, address, "unhealthy", record.pid, str(exc)[:120])
            if since is not None:
                return ServiceStatus(spec.name, address, "starting", record.pid,
                                     "answers; `pulse-local up` still runs its start-up hooks "
                                     "(resources, migrations, restoring saved state)")
            try:
                detail = spec.detail(self.settings)
            except Exception as exc:  # noqa: BLE001 - a healthy service whose detail fails says why
                detail = f"detail unavailable: {exc}"[:120]
            return ServiceStatus(spec.name, address, "healthy", record.pid, detail)

        with ThreadPoolExecutor(max_workers=max(1, len(self.services))) as pool:
            return list(pool.map(one, self.services))

    def logs(self, service: str, lines: int = 50) -> str:
        if service not in self._by_name:
            raise PulseError(f"unknown service {service!r}: choose one of {', '.join(self._by_name)}")
        return process.tail(self.log_path(service), lines)
