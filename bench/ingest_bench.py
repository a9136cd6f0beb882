"""Benchmark: fixture generation rate and sustained webhook ingestion through the real service.

Starts its OWN isolated stack (fresh state directory, free ports, via the pytest plugin's
``make_test_settings`` + ``pulse_local.stack.stack_for(settings).up()``), so it never touches a
stack started with ``pulse-local up``; migrates, seeds fixtures, runs ``python -m
pulse_local.ingest`` in a child process, replays the webhooks with concurrent HTTP clients and
stops everything. Usage::

    .venv/bin/python bench/ingest_bench.py [--scale 6] [--concurrency 16] [--rate 500] [--gen-scale 50]

Targets: >= 500 accepted webhooks/s with p95 <= 50 ms; >= 100k generated responses/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path


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


def bench_ingest(scale: int, concurrency: int, workers: int = 1,
                 rate: float | None = None) -> dict[str, float]:
    """Accepted webhooks/s and latency percentiles through the real processor: clients
    posting back to back (closed loop), or deliveries due at a steady `rate` with latency
    counted from when each was due (open loop)."""
    from pulse_local.ingest.testing import processor_process
    from pulse_local.source.fixtures import generate
    from pulse_local.source.migrations import migrate
    from pulse_local.source.replay import load_deliveries, replay_async
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
    try:
        stack.up()
        migrate(settings)
        generate(scale, 5, data)
        seed_reference_data(settings, data)
        deliveries = load_deliveries(data)
        warmup, measured = deliveries[:200], deliveries[200:]
        env = {"PULSE_PROCESSOR_WORKERS": str(workers)}
        with processor_process(env, settings.processor_port, data / "processor.log") as url:
            asyncio.run(replay_async(url, warmup, concurrency, progress=False))
            result = asyncio.run(replay_async(url, measured, concurrency, progress=False,
                                              rate=rate))
        accepted = result.statuses.get(200, 0)
        return {
            "sent": float(len(measured)), "accepted": float(accepted),
            "non_200": float(len(measured) - accepted),
            "accepted_per_s": accepted / result.seconds,
            "p50_ms": result.percentile(50) * 1000, "p95_ms": result.percentile(95) * 1000,
            "p99_ms": result.percentile(99) * 1000,
            "send_delay_p95_ms": result.send_delay_percentile(95) * 1000,
        }
    finally:
        stack.down()
        shutil.rmtree(settings.state_dir, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=6, help="tenants to replay (~1k each)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=500.0,
                        help="offered deliveries/s of the steady-rate runs")
    parser.add_argument("--gen-scale", type=int, default=50, help="tenants for generation")
    args = parser.parse_args(argv or [])
    rate = bench_generation(args.gen_scale)
    print(f"fixture generation: {rate:,.0f} responses/s (target >= 100,000)")
    rates = {}
    for workers, concurrency in ((1, 4), (1, args.concurrency), (2, args.concurrency)):
        figures = bench_ingest(args.scale, concurrency, workers)
        rates[(workers, concurrency)] = figures["accepted_per_s"]
        print(f"ingest, {workers} worker process(es), {concurrency} clients back to back: "
              f"{figures['accepted_per_s']:,.0f} accepted webhooks/s over "
              f"{figures['sent']:,.0f} deliveries ({figures['non_200']:.0f} not 200) "
              f"(target >= 500/s)")
        print(f"  latency: p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
              f"p99 {figures['p99_ms']:.1f} ms (target p95 <= 50 ms)")
    for workers in (1, 2):
        figures = bench_ingest(args.scale, 64, workers, rate=args.rate)
        print(f"ingest at a steady {args.rate:,.0f} deliveries/s offered, {workers} worker "
              f"process(es), up to 64 clients: {figures['accepted_per_s']:,.0f} accepted/s "
              f"({figures['non_200']:.0f} not 200); latency from when each was due: p50 "
              f"{figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, p99 "
              f"{figures['p99_ms']:.1f} ms (target: 500/s at p95 <= 50 ms); of it, the load "
              f"generator sent late by p95 {figures['send_delay_p95_ms']:.1f} ms")
    one, two = rates[(1, args.concurrency)], rates[(2, args.concurrency)]
    print(f"2 workers / 1 worker at {args.concurrency} clients: {two / one:.2f} (the load "
          "generator, Postgres and the Pub/Sub emulator share the same 2 cores)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
