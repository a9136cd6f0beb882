"""Stack start-up and shut-down: cold `up` (empty state directory), warm `up` (existing state),
`down`, per service, in an isolated state directory on free ports (a running `make up` stack is
not touched). Targets from the issue: cold <= 15 s, warm <= 8 s, down <= 3 s, 0 processes left."""

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
    finally:
        stack.down()
        shutil.rmtree(settings.state_dir, ignore_errors=True)
