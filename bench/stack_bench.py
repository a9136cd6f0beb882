"""Stack start-up and shut-down: cold `up` (empty state directory), warm `up` (existing state),
`down`, per service, in an isolated state directory on free ports (a running `make up` stack is
not touched); then `down` and `up` with 5,000 events in Bigtable and 1,000 messages waiting in
Pub/Sub, saved and restored. Targets from the issue: cold <= 15 s, warm <= 8 s, down <= 3 s,
0 processes left."""

from __future__ import annotations

import shutil
import time

import psutil

from pulse_local.stack.native import NativeStack
from pulse_local.testing.plugin import make_test_settings


def _row(label: str, seconds: float, target: float, per_service: dict[str, float]) -> None:
    services = "  ".join(f"{k}={v:.1f}s" for k, v in per_service.items())
    print(f"{label:22} {seconds:6.2f} s  (target <= {target:.0f} s, ratio {seconds / target:.2f})  {services}")


def main() -> None:
    settings = make_test_settings()
    stack = NativeStack(settings)
    try:
        print(f"load average before: {psutil.getloadavg()[0]:.2f}, cpus: {psutil.cpu_count()}")
        cold = stack.up()
        _row("up, empty state dir", cold.total_seconds, 15, cold.seconds)
        pids = [s.pid for s in stack.status() if s.pid]
        started = time.perf_counter()
        stack.down()
        down_s = time.perf_counter() - started
        left = [p for p in pids if psutil.pid_exists(p)]
        _row("down", down_s, 3, {})
        print(f"{'processes left':22} {len(left)}")
        warm = stack.up()
        _row("up, existing state dir", warm.total_seconds, 8, warm.seconds)
        again = stack.up()
        _row("up, already running", again.total_seconds, 8, {})
        _saved_state_rows(stack)
    finally:
        stack.down(save=False)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def _saved_state_rows(stack: NativeStack, events: int = 5000, backlog: int = 1000) -> None:
    """`down` and `up` with state in the emulators: ``events`` events in Bigtable (written
    by the consumer's store) and ``backlog`` messages waiting in the dead-letter monitor's
    subscription (nothing consumes it), saved on `down` and restored on `up`."""
    import os
    import uuid

    from pulse_local.streaming.quality import run_checks
    from pulse_local.streaming.store import Delivered, EventStore
    from pulse_local.streaming.testing import event_stream, fast_publisher, publish

    settings = stack.settings
    os.environ["PUBSUB_EMULATOR_HOST"] = f"{settings.host}:{settings.pubsub_port}"
    store = EventStore.for_settings(settings.model_copy(
        update={"bigtable_emulator_host": f"{settings.host}:{settings.bigtable_port}"}))
    try:
        stream = event_stream(events, uuid.uuid4())
        for first in range(0, events, 500):
            store.write([Delivered(e, str(first + i), e.submitted_at, e.to_message(),
                                   run_checks(e, e.submitted_at))
                         for i, e in enumerate(stream[first:first + 500])])
    finally:
        store.close()
    publisher = fast_publisher()
    publish(publisher, settings.project, "response-events-dlq",
            [(b"x" * 500, {"n": str(i)}) for i in range(backlog)])
    publisher.stop()
    started = time.perf_counter()
    stack.down()
    _row("down, saving state", time.perf_counter() - started, 3, {})
    for note in stack.notes:
        print(f"{'':22} {note}")
    restored = stack.up()
    _row("up, restoring state", restored.total_seconds, 8, restored.seconds)
    for note in restored.notes:
        print(f"{'':22} {note}")
