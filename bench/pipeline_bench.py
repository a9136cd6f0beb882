"""`pulse-local run` wall time, per stage, on an isolated fresh stack (a `make up` stack is not
touched): the default fixtures (scale 2, ~2k responses), then a bigger set on the same stack to
show how time grows. Target from the issue: <= 60 s after the stack is up on the defaults.

    python -m bench pipeline                 # scales 2 and 10 (~2k and ~10k responses)
    PULSE_BENCH_PIPELINE_SCALES=2,10,100 python -m bench pipeline
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import psutil
from rich.console import Console

from pulse_local.pipeline import run_pipeline
from pulse_local.stack import stack_for
from pulse_local.stack.services import service_env
from pulse_local.testing.plugin import make_test_settings

TARGET_S = 60.0


class _PeakRss:
    """Peak resident memory of this process and its children, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
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

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    scales = [int(s) for s in os.environ.get("PULSE_BENCH_PIPELINE_SCALES", "2,10").split(",")]
    settings = make_test_settings()
    saved = dict(os.environ)
    os.environ.update(service_env(settings))
    stack = stack_for(settings)
    try:
        print(f"load average before: {psutil.getloadavg()[0]:.2f}, cpus: {psutil.cpu_count()}")
        report = stack.up()
        print(f"stack up in {report.total_seconds:.1f} s (not counted below)")
        baseline = None
        for scale in scales:
            run_settings = settings.model_copy(update={"fixture_scale": scale})
            console = Console(record=True, width=200, quiet=True)
            began = time.perf_counter()
            with _PeakRss() as rss:  # the stack's services are separate processes, not counted
                summary = run_pipeline(run_settings, console)
            seconds = time.perf_counter() - began
            stages = "  ".join(f"{s.name}={s.seconds:.1f}s" for s in summary.stages)
            per_1k = seconds / scale
            baseline = baseline or per_1k
            print(f"scale {scale:4d} (~{scale}k responses): {seconds:6.1f} s "
                  f"{'ok' if summary.ok else 'FAILED'}  (target <= {TARGET_S:.0f} s at scale 2, "
                  f"ratio {seconds / TARGET_S:.2f}); {per_1k:.1f} s per 1k responses "
                  f"(x{per_1k / baseline:.2f} of the first); peak RSS of the run "
                  f"{rss.peak / 2**20:.0f} MB\n    {stages}")
            if not summary.ok:
                print(console.export_text())
                break
    finally:
        stack.down()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
