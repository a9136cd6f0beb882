"""More consumer processes under one service: one Python process is held to about one core by
its interpreter lock, and the consumer's work (decoding, checks, building requests) is Python.

The service's process (the one `make up` starts and probes) runs a `Consumer` itself and keeps
``processes - 1`` children running, each ``python -m pulse_local.streaming consume --child-of
<pid>``:
a full consumer with its own pulls, writers and fold. Pub/Sub spreads the messages over all
of them, and the store's protocol is safe for any number of concurrent consumers. The parent
restarts a child that dies, passes SIGTERM on and waits for the children before it exits; a
child whose parent is gone (killed with SIGKILL) stops by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("pulse_local.streaming")

#: How often a child checks that its parent is alive, and the parent its children.
WATCH_SECONDS = 0.5
#: Wait before restarting a child that died, doubled while it keeps dying young (max 30 s).
_RESTART_BACKOFF = 1.0


class ChildConsumers:
    """The service's extra consumer processes; `start`, then `stop` when the service stops."""

    def __init__(self, count: int, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.count = count
        self.log_dir = log_dir
        #: Environment overrides: the parent's own options, so every process runs the same.
        self.env = env or {}
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="children", daemon=True)
        self.restarts = 0

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"streaming-child-{index + 1}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            # the service's process group: `pulse-local down` stops and waits for the whole
            # group (a Ctrl-C reaches them too; `terminate` has stopped restarts by then)
            return subprocess.Popen([sys.executable, "-m", "pulse_local.streaming", "consume",
                                     "--child-of", str(os.getpid())],
                                    stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, **self.env})
        finally:
            out.close()

    def start(self) -> None:
        """Start every child and the thread that restarts the ones that die."""
        for index in range(self.count):
            self._procs[index] = self._spawn(index)
        self._thread.start()

    def _watch(self) -> None:
        backoff = [_RESTART_BACKOFF] * self.count
        started = [time.monotonic()] * self.count
        while not self._stop.wait(WATCH_SECONDS):
            for index, proc in enumerate(self._procs):
                if proc is None or proc.poll() is None:
                    continue
                lived = time.monotonic() - started[index]
                if lived > 60:
                    backoff[index] = _RESTART_BACKOFF
                log.warning("consumer child %d exited with %s; restarting it in %.0f s (its "
                            "log: %s)", index + 1, proc.returncode, backoff[index],
                            self.log_dir / f"streaming-child-{index + 1}.log")
                if self._stop.wait(backoff[index]):
                    return
                backoff[index] = min(backoff[index] * 2, 30)
                started[index] = time.monotonic()
                try:
                    self._procs[index] = self._spawn(index)
                    self.restarts += 1
                except OSError as exc:  # tried again on the next tick, with the longer backoff
                    log.error("could not restart consumer child %d: %s", index + 1, exc)

    def terminate(self) -> None:
        """Stop restarting children and send each SIGTERM now (safe in a signal handler):
        they drain while the parent does."""
        self._stop.set()
        for proc in self._procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 12.0) -> list[int | None]:
        """SIGTERM every child, wait up to ``timeout`` s, kill what is left; exit codes."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        live = [p for p in self._procs if p is not None]
        for proc in live:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for proc in live:
            try:
                codes.append(proc.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                log.warning("consumer child %d did not stop within %.0f s; killing it",
                            proc.pid, timeout)
                proc.kill()
                codes.append(proc.wait())
        return codes


def stop_when_orphaned(parent: int, on_orphan: Callable[[], None]) -> threading.Thread:
    """In a child: call ``on_orphan()`` once ``parent`` (the service's pid, given on the
    command line: it may die before the child has started) is no longer its parent process,
    checking every `WATCH_SECONDS`."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        log.warning("the consumer service (pid %d) is gone; this child stops", parent)
        on_orphan()

    thread = threading.Thread(target=watch, name="orphan-watch", daemon=True)
    thread.start()
    return thread
