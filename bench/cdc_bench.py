"""CDC benchmark: commit-to-visible latency in the raw layer under a steady write load (the
service running), throughput of a bulk load through the same code path (`drain`), and
pg_recvlogical reading a slot of the same workload, as a ratio. Targets from the issue:
p95 <= 1 s, >= 20k changes/s, ratio >= 0.5.

Runs its own PostgreSQL (isolated state directory, free port): a running `make up` stack is
not touched. ``python -m bench cdc`` or ``python bench/cdc_bench.py``."""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import yaml

from pulse_local.cdc import drain
from pulse_local.cdc.config import StreamConfig
from pulse_local.cdc.datastream import destination_table
from pulse_local.cdc.landing import FILE_NAME, RawLayer
from pulse_local.config import Settings
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services, service_env
from pulse_local.testing.plugin import make_test_settings

STEADY_RATE = 100        # transactions per second during the latency run
STEADY_SECONDS = 10.0
BULK_ROWS = 100_000      # inserted, then updated: 200k changes
RECVLOGICAL = Path("/usr/lib/postgresql/15/bin/pg_recvlogical")


def _config(settings: Settings, name: str) -> StreamConfig:
    return StreamConfig.model_validate({
        "name": f"bench-{name}",
        "source": {"publication": f"bench_{name}", "replication_slot": f"bench_{name}"},
        "destination": {"path": str(settings.state_dir / "raw" / name), "mode": "append-only"},
    })


def _visible_ids(layer: RawLayer, table: str, seen: set[str], found: dict[int, float]) -> None:
    """Record the first time each id is visible (file committed under the watermark)."""
    state = layer.read_state()
    if state is None or not state.backfill_complete:
        return
    folder = layer.table_dir(table)
    if not folder.is_dir():
        return
    for path in folder.glob("*.parquet"):
        match = FILE_NAME.match(path.name)
        if path.name in seen or match is None or int(match[1], 16) > state.watermark:
            continue
        seen.add(path.name)
        now = time.time()
        for value in pq.read_table(path, columns=["id"]).column("id").to_pylist():
            found.setdefault(value, now)


def latency(settings: Settings) -> tuple[float, float, int]:
    """p50/p95 seconds from commit (client side) to visible in the raw layer, and samples."""
    config = _config(settings, "latency")
    with psycopg.connect(settings.admin_dsn(), autocommit=True) as conn:
        conn.execute("create table lat (id int primary key, payload text)")
        conn.execute("create publication bench_latency for table lat")
    config_path = settings.state_dir / "latency.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(by_alias=True)))
    log = open(settings.state_dir / "cdc-bench.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "pulse_local.cdc", "serve", "--config",
                             str(config_path)], env={**os.environ, **service_env(settings)},
                            stdout=log, stderr=log)
    layer = RawLayer(config.raw_dir(settings), config.name)
    committed: dict[int, float] = {}
    found: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:
        seen: set[str] = set()
        while not stop.is_set():
            _visible_ids(layer, destination_table("public", "lat"), seen, found)
            time.sleep(0.005)
        _visible_ids(layer, destination_table("public", "lat"), seen, found)

    try:
        deadline = time.monotonic() + 30
        while (layer.read_heartbeat() or {}).get("phase") != "streaming":
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"CDC did not start; see {log.name}")
            time.sleep(0.05)
        watcher = threading.Thread(target=watch)
        watcher.start()
        with psycopg.connect(settings.admin_dsn(), autocommit=True) as conn:
            start = time.monotonic()
            i = 0
            while time.monotonic() - start < STEADY_SECONDS:
                i += 1
                conn.execute("insert into lat values (%s, repeat('x', 200))", (i,))
                committed[i] = time.time()
                time.sleep(max(0.0, start + i / STEADY_RATE - time.monotonic()))
        wait_until = time.monotonic() + 10
        while len(found) < len(committed) and time.monotonic() < wait_until:
            time.sleep(0.05)
        stop.set()
        watcher.join()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    delays = sorted(found[i] - committed[i] for i in committed if i in found)
    if len(delays) < len(committed):
        print(f"  WARNING: {len(committed) - len(delays)} rows never became visible")
    p95 = delays[int(0.95 * (len(delays) - 1))]
    return statistics.median(delays), p95, len(delays)


def throughput(settings: Settings) -> tuple[int, float, float]:
    """(changes, our seconds, pg_recvlogical seconds) for the same bulk workload."""
    config = _config(settings, "bulk")
    with psycopg.connect(settings.admin_dsn(), autocommit=True) as conn:
        conn.execute("create table bulk (id int primary key, v int, note text, "
                     "at timestamptz default now(), amount numeric(12,2))")
        conn.execute("create publication bench_bulk for table bulk")
        drain(settings, config)  # slot + (empty) backfill
        conn.execute("select pg_create_logical_replication_slot('bench_recv', 'pgoutput')")
        conn.execute("insert into bulk (id, v, note, amount) select g, g, md5(g::text), g / 7.0 "
                     "from generate_series(1, %s) g", (BULK_ROWS,))
        conn.execute("update bulk set v = v + 1, note = 'updated'")
        end = conn.execute("select pg_current_wal_lsn()::text").fetchone()[0]
    began = time.perf_counter()
    report = drain(settings, config)
    ours = time.perf_counter() - began

    out = settings.state_dir / "recvlogical.out"
    env = {**os.environ, "PGPASSWORD": settings.admin_password()}
    began = time.perf_counter()
    subprocess.run([str(RECVLOGICAL), "-h", settings.host, "-p", str(settings.postgres_port),
                    "-U", settings.db_admin_user, "-d", settings.db_name, "-S", "bench_recv",
                    "--start", "-E", end, "-o", "proto_version=1",
                    "-o", "publication_names=bench_bulk", "-f", str(out), "--no-loop"],
                   env=env, check=True, capture_output=True)
    theirs = time.perf_counter() - began
    return report.changes, ours, theirs


def main() -> None:
    # its own server, whatever PULSE_ADMIN_DATABASE_URL a `pulse-local env` shell exports
    settings = make_test_settings().model_copy(
        update={"admin_database_url": None, "database_url": None})
    stack = NativeStack(settings, [s for s in native_services(settings) if s.name == "postgres"])
    try:
        stack.up()
        p50, p95, samples = latency(settings)
        print(f"commit-to-visible latency  p50 {p50 * 1000:6.0f} ms  p95 {p95 * 1000:6.0f} ms  "
              f"({samples} commits at {STEADY_RATE}/s; target p95 <= 1000 ms, "
              f"ratio {p95 / 1.0:.2f})")
        changes, ours, theirs = throughput(settings)
        rate, recv_rate = changes / ours, changes / theirs
        print(f"bulk throughput            {rate:8.0f} changes/s ({changes} changes in "
              f"{ours:.2f} s; target >= 20000, ratio {rate / 20000:.2f})")
        print(f"pg_recvlogical             {recv_rate:8.0f} changes/s ({theirs:.2f} s, same WAL)")
        print(f"ours / pg_recvlogical      {rate / recv_rate:8.2f}    (target >= 0.5)")
    finally:
        stack.down()
        shutil.rmtree(settings.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
