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

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

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

    def __enter__(self) -> Self:
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


def run_once(mode: str, scale: int) -> dict[str, Any]:
    """One pipeline run on a fresh stack (in this process: `main` gives each its own, so that
    clients and settings cached per process, Prefect's among them, start clean)."""
    settings = make_test_settings().model_copy(update={"fixture_scale": scale,
                                                       "replay_mode": mode})
    os.environ.update(service_env(settings))
    stack = stack_for(settings)
    try:
        up = stack.up().total_seconds
        console = Console(width=200, quiet=True)
        began = time.perf_counter()
        with _PeakRss() as memory:
            summary = run_pipeline(settings, console)
        return {"up": up, "seconds": time.perf_counter() - began, "ok": summary.ok,
                "stages": [(s.name, s.ok, s.seconds, s.detail) for s in summary.stages],
                "peak": memory.peak, "machine_peak": memory.machine_peak}
    finally:
        stack.down()
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--run":  # a child of the loop below
        print("RESULT " + json.dumps(run_once(sys.argv[2], int(sys.argv[3]))), flush=True)
        return
    print(f"load average before: {psutil.getloadavg()[0]:.2f}, cpus: {psutil.cpu_count()}")
    per_1k: dict[str, float] = {}
    for mode, scale in _runs():
        child = subprocess.run([sys.executable, "-m", "bench.pipeline_bench", "--run", mode,
                                str(scale)], capture_output=True, text=True, check=False,
                               cwd=Path(__file__).resolve().parent.parent)
        lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
        if not lines:
            print(f"{mode} scale {scale}: the run crashed (exit {child.returncode}):\n"
                  f"{child.stderr[-3000:]}")
            break
        run = json.loads(lines[-1].removeprefix("RESULT "))
        seconds = run["seconds"]
        rate = seconds / scale  # ~1k responses per scale unit
        first = per_1k.setdefault(mode, rate)
        stages = "  ".join(f"{name}={sec:.1f}s" for name, _, sec, _ in run["stages"])
        target = (f"target <= {TARGET_S:.0f} s, ratio {seconds / TARGET_S:.2f}" if scale == 2
                  else f"target <= 600 s, ratio {seconds / 600:.2f}" if scale == 1000
                  else "no target")
        print(f"{mode:4s} scale {scale:4d} (~{scale}k responses): {seconds:7.1f} s "
              f"{'ok' if run['ok'] else 'FAILED'} after a {run['up']:.1f} s stack up "
              f"({target}); {rate:.2f} s per 1k responses (x{rate / first:.2f} of the first "
              f"{mode} run); peak RSS of the run and the stack {run['peak'] / 2**30:.2f} GB, "
              f"machine {run['machine_peak'] / 2**30:.2f} GB above its start (target <= 4 GB "
              f"at 1M)\n    {stages}", flush=True)
        if not run["ok"]:
            name, _, _, detail = run["stages"][-1]
            print(f"    {name} failed: {detail}")
            break


if __name__ == "__main__":
    main()
