"""`pulse-local run` wall time, per stage, each run on its own fresh isolated stack (a `make up`
stack is not touched): the default fixtures (scale 2, ~2k responses) through the processor as
`make run` does, then bigger sets loaded in bulk (`PULSE_REPLAY_MODE=bulk`: the processor's
checks and rules, rows written with COPY) to show how time grows up to 1M responses.
Targets from the issue: <= 60 s after the stack is up on the defaults; 1M in <= 10 min and
<= 4 GB.

    python -m bench pipeline                                   # 2, 10, bulk:10, bulk:100, bulk:1000
    PULSE_BENCH_PIPELINE_RUNS=2,bulk:10 python -m bench pipeline
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Any

import psutil
from rich.console import Console

from pulse_local.pipeline import run_pipeline
from pulse_local.stack import stack_for
from pulse_local.stack.services import service_env
from pulse_local.testing.plugin import make_test_settings

TARGET_S = 60.0


class _PeakRss:
    """Peak resident memory, sampled every 0.2 s: of this process and its children (the stack's
    services included), and the machine's used memory above what it used at the start."""

    def __init__(self) -> None:
        self.peak = 0
        self.machine_peak = 0
        self._baseline = psutil.virtual_memory().used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self.machine_peak = max(self.machine_peak,
                                    psutil.virtual_memory().used - self._baseline)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _runs() -> list[tuple[str, int]]:
    """(replay mode, fixture scale) of each run: ``2`` is through the processor, ``bulk:100``
    in bulk."""
    spec = os.environ.get("PULSE_BENCH_PIPELINE_RUNS", "2,10,bulk:10,bulk:100,bulk:1000")
    runs = []
    for item in spec.split(","):
        mode, _, scale = item.strip().rpartition(":")
        runs.append((mode or "http", int(scale)))
    return runs


def run_once(mode: str, scale: int) -> tuple[float, float, Any, _PeakRss]:
    """One pipeline run on a fresh stack: (stack up seconds, run seconds, summary, memory)."""
    settings = make_test_settings().model_copy(update={"fixture_scale": scale,
                                                       "replay_mode": mode})
    saved = dict(os.environ)
    os.environ.update(service_env(settings))
    stack = stack_for(settings)
    try:
        up = stack.up().total_seconds
        console = Console(record=True, width=200, quiet=True)
        began = time.perf_counter()
        with _PeakRss() as memory:
            summary = run_pipeline(settings, console)
        seconds = time.perf_counter() - began
        if not summary.ok:
            print(console.export_text())
        return up, seconds, summary, memory
    finally:
        stack.down()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def main() -> None:
    print(f"load average before: {psutil.getloadavg()[0]:.2f}, cpus: {psutil.cpu_count()}")
    per_1k: dict[str, float] = {}
    for mode, scale in _runs():
        up, seconds, summary, memory = run_once(mode, scale)
        rate = seconds / scale  # ~1k responses per scale unit
        first = per_1k.setdefault(mode, rate)
        stages = "  ".join(f"{s.name}={s.seconds:.1f}s" for s in summary.stages)
        target = (f"target <= {TARGET_S:.0f} s, ratio {seconds / TARGET_S:.2f}" if scale == 2
                  else f"target <= 600 s, ratio {seconds / 600:.2f}" if scale == 1000 else "")
        print(f"{mode:4s} scale {scale:4d} (~{scale}k responses): {seconds:7.1f} s "
              f"{'ok' if summary.ok else 'FAILED'} after a {up:.1f} s stack up ({target}); "
              f"{rate:.2f} s per 1k responses (x{rate / first:.2f} of the first {mode} run); "
              f"peak RSS of the run and the stack {memory.peak / 2**30:.2f} GB, machine "
              f"{memory.machine_peak / 2**30:.2f} GB above its start (target <= 4 GB at 1M)"
              f"\n    {stages}", flush=True)
        if not summary.ok:
            break


if __name__ == "__main__":
    main()
