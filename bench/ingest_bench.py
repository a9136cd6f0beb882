"""Benchmark: fixture generation rate and sustained webhook ingestion through the real service.

Starts its OWN isolated stack (fresh state directory, free ports, via the pytest plugin's
``make_test_settings``), with only Postgres and the Pub/Sub emulator, so it never touches a
stack started with ``pulse-local up``. One stack serves every run: it is migrated and seeded
once with enough generated tenants that each run posts deliveries nobody posted before (fresh
rows, not duplicates). ``python -m pulse_local.ingest`` runs in a child process.

These machines are noisy (the same run varies by a third from one minute to the next), so each
load shape is run ``--rounds`` times, the shapes taking turns, and the median is reported with
the range. Usage::

    .venv/bin/python bench/ingest_bench.py [--tenants 3] [--rounds 3] [--concurrency 16] \
        [--rate 500] [--gen-scale 50]

Targets: >= 500 accepted webhooks/s with p95 <= 50 ms; >= 100k generated responses/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

Delivery = tuple[str, str, bytes]


@dataclass(frozen=True)
class Shape:
    """One load shape: processor worker processes, concurrent clients, and an offered rate
    (deliveries/s, open loop) or None (clients post back to back, closed loop)."""

    workers: int
    clients: int
    rate: float | None = None

    def __str__(self) -> str:
        load = (f"a steady {self.rate:,.0f} deliveries/s offered, up to {self.clients} clients"
                if self.rate else f"{self.clients} clients back to back")
        return f"{self.workers} worker process(es), {load}"


@dataclass(frozen=True)
class Figures:
    """What one run measured."""

    sent: int
    accepted: int
    per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    send_delay_p95_ms: float
    offered: float | None = None

    @property
    def meets_target(self) -> bool:
        """>= 500 accepted/s with p95 <= 50 ms, every delivery accepted. At an offered rate
        the run's accepted/s sits just under it (the clock also counts the last responses), so
        an offered rate of at least 500/s sustained within 2 % counts as 500."""
        sustained = self.per_s >= 500 or (
            self.offered is not None and self.offered >= 500 and self.per_s >= 0.98 * self.offered)
        return sustained and self.p95_ms <= 50 and self.accepted == self.sent


def bench_generation(scale: int) -> float:
    """Responses written per second by `fixtures.generate`."""
    from pulse_local.source.fixtures import generate

    out = Path(tempfile.mkdtemp(prefix="pulse-gen-"))
    try:
        started = time.perf_counter()
        counts = generate(scale, 1, out)
        return counts["responses"] / (time.perf_counter() - started)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _runs_of(deliveries: list[Delivery], count: int) -> list[list[Delivery]]:
    """Split the deliveries into `count` runs of whole tenants (a tenant's revisions stay in
    file order within one run)."""
    slugs = list(dict.fromkeys(slug for slug, _, _ in deliveries))
    per_run = max(1, len(slugs) // count)
    runs = []
    for i in range(count):
        chosen = set(slugs[i * per_run:(i + 1) * per_run])
        runs.append([d for d in deliveries if d[0] in chosen])
    return runs


def _measure(url: str, deliveries: list[Delivery], shape: Shape) -> Figures:
    from pulse_local.source.replay import replay_async

    result = asyncio.run(replay_async(url, deliveries, shape.clients, progress=False,
                                      rate=shape.rate))
    accepted = result.statuses.get(200, 0)
    return Figures(
        sent=len(deliveries), accepted=accepted, per_s=accepted / result.seconds,
        p50_ms=result.percentile(50) * 1000, p95_ms=result.percentile(95) * 1000,
        p99_ms=result.percentile(99) * 1000,
        send_delay_p95_ms=result.send_delay_percentile(95) * 1000, offered=shape.rate)


def bench_ingest(shapes: list[Shape], rounds: int, tenants_per_run: int
                 ) -> dict[Shape, list[Figures]]:
    """Every shape `rounds` times through the real processor, into one migrated stack; each
    run posts the webhooks of `tenants_per_run` tenants not posted before (the first 200 of
    each processor start warm it up and are not counted)."""
    from pulse_local.ingest.testing import processor_process
    from pulse_local.source.fixtures import generate
    from pulse_local.source.migrations import migrate
    from pulse_local.source.replay import load_deliveries
    from pulse_local.source.seed import seed_reference_data
    from pulse_local.stack.native import NativeStack
    from pulse_local.stack.services import native_services, service_env
    from pulse_local.testing.plugin import make_test_settings

    settings = make_test_settings()
    os.environ.update(service_env(settings))
    # Only what the processor needs: the rest of a stack (CDC, streaming consumer, Prefect)
    # would be working on the same two cores and measured along with it.
    stack = NativeStack(settings, [s for s in native_services(settings)
                                   if s.name in ("postgres", "pubsub")])
    data = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    worker_counts = sorted({s.workers for s in shapes})
    runs = len(shapes) * rounds + len(worker_counts) * rounds  # + one warm-up per start
    figures: dict[Shape, list[Figures]] = {s: [] for s in shapes}
    try:
        stack.up()
        migrate(settings)
        generate(tenants_per_run * runs, 5, data)
        seed_reference_data(settings, data)
        batches = iter(_runs_of(load_deliveries(data), runs))
        for _ in range(rounds):
            for workers in worker_counts:
                env = {"PULSE_PROCESSOR_WORKERS": str(workers)}
                with processor_process(env, settings.processor_port,
                                       data / "processor.log") as url:
                    _measure(url, next(batches)[:200], Shape(workers, 16))  # warm-up
                    for shape in (s for s in shapes if s.workers == workers):
                        figures[shape].append(_measure(url, next(batches), shape))
        return figures
    finally:
        stack.down()
        shutil.rmtree(settings.state_dir, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


def _spread(values: list[float], unit: str, digits: int = 0) -> str:
    """``median (min-max)`` of the rounds."""
    fmt = f"{{:,.{digits}f}}"
    if len(values) == 1:
        return fmt.format(values[0]) + unit
    return (f"{fmt.format(statistics.median(values))}{unit} "
            f"({fmt.format(min(values))}-{fmt.format(max(values))})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=3,
                        help="tenants per run (~1k deliveries each)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each load shape")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=500.0,
                        help="offered deliveries/s of the steady-rate runs")
    parser.add_argument("--gen-scale", type=int, default=50, help="tenants for generation")
    args = parser.parse_args(argv or [])
    rate = bench_generation(args.gen_scale)
    print(f"fixture generation: {rate:,.0f} responses/s (target >= 100,000)")
    shapes = [Shape(1, 4), Shape(1, args.concurrency), Shape(2, args.concurrency),
              Shape(1, 64, args.rate), Shape(2, 64, args.rate)]
    results = bench_ingest(shapes, args.rounds, args.tenants)
    print(f"ingest, median of {args.rounds} rounds (range); target >= 500 accepted/s "
          "with p95 <= 50 ms:")
    for shape, runs in results.items():
        not_200 = sum(f.sent - f.accepted for f in runs)
        met = sum(f.meets_target for f in runs)
        print(f"  {shape}: {_spread([f.per_s for f in runs], '/s')} accepted, "
              f"p50 {_spread([f.p50_ms for f in runs], ' ms', 1)}, "
              f"p95 {_spread([f.p95_ms for f in runs], ' ms', 1)}, "
              f"p99 {_spread([f.p99_ms for f in runs], ' ms', 1)}; "
              f"{not_200} not 200 of {sum(f.sent for f in runs):,}; "
              f"target met in {met} of {len(runs)} rounds")
        if shape.rate:
            print(f"    latency counts from when each delivery was due; of it, the load "
                  f"generator sent late by p95 "
                  f"{_spread([f.send_delay_p95_ms for f in runs], ' ms', 1)}")
    one = statistics.median(f.per_s for f in results[shapes[1]])
    two = statistics.median(f.per_s for f in results[shapes[2]])
    print(f"2 workers / 1 worker at {args.concurrency} clients: {two / one:.2f} (the load "
          "generator, Postgres and the Pub/Sub emulator share the same 2 cores)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
