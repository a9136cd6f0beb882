"""Whole-stack snapshots of the default dataset: the full stack in an isolated state directory
on free ports, the `make run` fixture set (PULSE_FIXTURE_SCALE tenants, ~1k responses each)
loaded in bulk, CDC drained and the raw sink caught up; then `snapshot save` (clean down, copy,
up) and `snapshot restore` (verify, down, swap, up), their sizes and the size per 1k responses.
Targets from issue 21: save and restore <= 5 s each. Figures, never pass/fail."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from pulse_local.stack import snapshot
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import service_env
from pulse_local.testing.plugin import make_test_settings


def _row(label: str, seconds: float, target: float, detail: str = "") -> None:
    print(f"{label:26} {seconds:6.2f} s  (target <= {target:.0f} s, ratio {seconds / target:.2f})"
          f"  {detail}")


def _phases(phases: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.1f}s" for k, v in phases.items())


def _wait_raw_sink(settings: object, settle: float = 3.0, limit: float = 120.0) -> int:
    """Wait until the raw events sink stops growing; its event count."""
    from pulse_local.streaming.sink import raw_events_dir, read_raw

    root = raw_events_dir(settings)  # type: ignore[arg-type]
    last, since, deadline = -1, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        count = len(read_raw(root)) if root.exists() else 0
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= settle:
            break
        time.sleep(0.5)
    return last


def main() -> None:
    from pulse_local.cdc import drain
    from pulse_local.source.bulk import bulk_load, describe
    from pulse_local.source.fixtures import generate
    from pulse_local.source.seed import seed_reference_data

    work = Path(tempfile.mkdtemp(prefix="pulse-snapshot-bench-"))
    settings = make_test_settings().model_copy(update={"snapshot_dir": work / "snapshots"})
    os.environ.update(service_env(settings))
    stack = NativeStack(settings)
    try:
        print(f"load average before: {psutil.getloadavg()[0]:.2f}, cpus: {psutil.cpu_count()}")
        stack.up()
        fixtures = work / "fixtures"
        generate(settings.fixture_scale, settings.fixture_seed, fixtures)
        seed_reference_data(settings, fixtures)
        print(f"{'loaded':26} {describe(bulk_load(settings, fixtures))}")
        drain(settings, timeout=120)
        print(f"{'raw events':26} {_wait_raw_sink(settings)}")

        saved = snapshot.save(settings, "bench", stack=stack)
        m = saved.manifest
        _row("snapshot save", saved.seconds, 5, _phases(saved.phases))
        print(f"{'':26} {len(m.files)} files, {m.size_bytes / 1e6:.1f} MB -> "
              f"{saved.file_bytes / 1e6:.1f} MB")
        responses = m.responses or 0
        if responses:
            print(f"{'size per 1k responses':26} {saved.file_bytes / responses:8.1f} kB "
                  f"({responses} responses; uncompressed {m.size_bytes / responses:.1f} kB)")
        started = time.perf_counter()
        snapshot.verify(saved.path, settings, work / "verify")
        _row("  of which verify alone", time.perf_counter() - started, 5)
        restored = snapshot.restore(settings, "bench", stack=stack)
        _row("snapshot restore", restored.seconds, 5, _phases(restored.phases))
        for note in restored.notes:
            print(f"{'':26} {note}")
        if responses <= 20_000:  # four more saves: minutes at 100k
            _alternatives(settings, stack)
        slowest = sorted(stack.stop_seconds.items(), key=lambda i: -sum(i[1].values()))[:3]
        print(f"{'  slowest stops':26} " + "; ".join(
            f"{name} " + " ".join(f"{k}={v:.2f}" for k, v in parts.items())
            for name, parts in slowest))
        for note in stack.notes:
            print(f"{'':26} {note}")
    finally:
        stack.down(save=False)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _alternatives(settings: object, stack: NativeStack) -> None:
    """Back to back, same data, order A B B A: `save` as it was before (every service but
    Prefect stopped, saved and started again; no early checkpoint) against `save` now (the
    emulators and the serving API keep running and are saved in place; PostgreSQL checkpoints
    while its users stop)."""
    kept_now = snapshot.KEPT_RUNNING_ON_SAVE
    early = {s.name: s.on_down for s in stack.services}
    import dataclasses

    def variant(old: bool) -> None:
        snapshot.KEPT_RUNNING_ON_SAVE = frozenset({"prefect"}) if old else kept_now
        stack.services = [dataclasses.replace(s, on_down=(lambda _: None) if old
                                              else early[s.name]) for s in stack.services]
        stack._by_name = {s.name: s for s in stack.services}

    try:
        for label, old in (("A: save as before", True), ("B: save now", False),
                           ("B: save now", False), ("A: save as before", True)):
            variant(old)
            saved = snapshot.save(settings, "bench", stack=stack, force=True)  # type: ignore[arg-type]
            slowest = max(stack.stop_seconds.items(), key=lambda i: sum(i[1].values()))
            _row(label, saved.seconds, 5, _phases(saved.phases)
                 + f"  load {psutil.getloadavg()[0]:.1f}; slowest stop {slowest[0]} "
                 + " ".join(f"{k}={v:.2f}" for k, v in slowest[1].items()))
    finally:
        variant(False)
