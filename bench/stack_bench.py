"""Stack start-up and shut-down: cold `up` (empty state directory), warm `up` (existing state),
`down`, each with a per-service breakdown, in an isolated state directory on free ports (a
running `make up` stack is not touched); then `down` and `up` with 5,000 events in Bigtable and
1,000 messages waiting in Pub/Sub, saved and restored; then `snapshot save` and `restore` of
that state. Targets from issue 21: cold <= 15 s, warm <= 5 s, down <= 2 s, snapshot save and
restore <= 5 s each, 0 processes left. Figures, never pass/fail.

Per service, `up` shows prepare (initdb) / ready (spawn to first answered probe) / hooks
(declared resources, migrations, restores); `down` shows wait (for its users to stop) / save
(the emulators' state) / stop. The Prefect launcher's own line (import time, whether it skipped
its migrations) is copied from its log."""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from pulse_local.stack.base import StartReport
from pulse_local.stack.native import NativeStack
from pulse_local.testing.plugin import make_test_settings


def _row(label: str, seconds: float, target: float, detail: str = "") -> None:
    print(f"{label:22} {seconds:6.2f} s  (target <= {target:.0f} s, ratio {seconds / target:.2f})"
          f"  {detail}", flush=True)


def _stages(stages: dict[str, dict[str, float]]) -> None:
    """One line per service, slowest last."""
    def total(item: tuple[str, dict[str, float]]) -> float:
        return sum(v for k, v in item[1].items() if k != "cpu")

    for name, parts in sorted(stages.items(), key=total):
        steps = "  ".join(f"{k}={v:.2f}" for k, v in parts.items())
        print(f"{'':22}   {name:12} {total((name, parts)):6.2f} s  {steps}")


def _own_cpu() -> float:
    """CPU-seconds of this process and its reaped children (initdb, pg_controldata...)."""
    me, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                    resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _service_cpu(stack: NativeStack) -> dict[str, float]:
    """CPU-seconds each running service (its process and their children) has used so far."""
    from pulse_local.stack import process

    used = {}
    for spec in stack.services:
        record = process.read_pid(stack.pid_path(spec.name))
        if record is None:
            continue
        try:
            proc = psutil.Process(record.pid)
            procs = [proc, *proc.children(recursive=True)]
            used[spec.name] = sum(sum(p.cpu_times()[:2]) for p in procs)
        except psutil.Error:
            continue
    return used


def _up(stack: NativeStack, label: str, target: float) -> StartReport:
    """`up`, its wall time per service, and the CPU-seconds it cost: on a shared machine the
    CPU figure is the one that does not move with the load (2 idle cores: wall >= cpu / 2)."""
    load = psutil.getloadavg()[0]
    own = _own_cpu()
    report = stack.up()
    own = _own_cpu() - own
    cpu = _service_cpu(stack)
    _row(label, report.total_seconds, target,
         f"load {load:.1f}; cpu {sum(cpu.values()) + own:.1f} s (services "
         f"{sum(cpu.values()):.1f}, up's own hooks and probes {own:.1f})")
    _stages({name: {**parts, "cpu": round(cpu.get(name, 0.0), 2)}
             for name, parts in report.stages.items()})
    launcher = [line for line in stack.logs("prefect", 200).splitlines()
                if line.startswith("prefect_server: imported")]
    if "prefect" in report.stages and launcher:
        print(f"{'':22}   {launcher[-1]}")
    return report


def _down(stack: NativeStack, label: str) -> float:
    load = psutil.getloadavg()[0]
    started = time.perf_counter()
    stack.down()
    seconds = time.perf_counter() - started
    _row(label, seconds, 2, f"load {load:.1f}")
    _stages(stack.stop_seconds)
    for note in stack.notes:
        print(f"{'':22} {note}")
    return seconds


def main() -> None:
    settings = make_test_settings()
    stack = NativeStack(settings)
    try:
        print(f"load average before: {psutil.getloadavg()[0]:.2f}, cpus: {psutil.cpu_count()}")
        _up(stack, "up, empty state dir", 15)
        pids = [s.pid for s in stack.status() if s.pid]
        _down(stack, "down")
        left = [p for p in pids if psutil.pid_exists(p)]
        print(f"{'processes left':22} {len(left)}")
        _up(stack, "up, existing state dir", 5)
        again = stack.up()
        _row("up, already running", again.total_seconds, 5)
        _saved_state_rows(stack)
        _snapshot_rows(stack)
        _cli_down_row(stack)
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
    _down(stack, "down, saving state")
    restored = _up(stack, "up, restoring state", 5)
    for note in restored.notes:
        print(f"{'':22} {note}")


def _snapshot_rows(stack: NativeStack) -> None:
    """`snapshot save` and `restore` of the running stack's state (the rows above)."""
    from pulse_local.stack import snapshot

    work = Path(tempfile.mkdtemp(prefix="pulse-stack-bench-"))
    settings = stack.settings.model_copy(update={"snapshot_dir": work})
    try:
        saved = snapshot.save(settings, "bench", stack=stack)
        _row("snapshot save", saved.seconds, 5, "  ".join(
            f"{k}={v:.2f}s" for k, v in saved.phases.items())
            + f"  ({saved.manifest.size_bytes / 1e6:.1f} MB -> {saved.file_bytes / 1e6:.1f} MB)")
        restored = snapshot.restore(settings, "bench", stack=stack)
        _row("snapshot restore", restored.seconds, 5, "  ".join(
            f"{k}={v:.2f}s" for k, v in restored.phases.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cli_down_row(stack: NativeStack) -> None:
    """`pulse-local down` as a user runs it: a new process (its imports included), wall time."""
    import os
    import subprocess
    import sys

    from pulse_local.config import port_setting, stack_port_fields

    settings = stack.settings
    env = {**os.environ, "PULSE_STATE_DIR": str(settings.state_dir), "PULSE_STACK": "native",
           **{port_setting(f): str(getattr(settings, f)) for f in stack_port_fields()}}
    load = psutil.getloadavg()[0]
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pulse_local.cli", "down"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    seconds = time.perf_counter() - started
    _row("pulse-local down (CLI)", seconds, 2,
         f"load {load:.1f}; exit {out.returncode}; {out.stdout.strip().splitlines()[-1:]}")
