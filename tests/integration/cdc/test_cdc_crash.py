"""Integration: exactly-once into the raw layer across crashes. The CDC service runs as a real
process and is killed with SIGKILL at random points ten times during a 100k-change workload
(inserts, updates, deletes in batches); afterwards the merged raw table equals the source row by
row and every change event landed exactly once."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest
from cdc_helpers import CdcCase

pytestmark = pytest.mark.integration

TOTAL_CHANGES = 100_000
BATCH = 1_000  # changes per transaction: 400 inserts, 400 updates, 200 deletes
INITIAL_ROWS = 5_000


def _workload(dsn: str, table: str, done: threading.Event, counts: dict[str, int],
              seed: int) -> None:
    rng = random.Random(seed)
    next_id = INITIAL_ROWS + 1
    with psycopg.connect(dsn, autocommit=True) as conn:
        while counts["changes"] < TOTAL_CHANGES:
            with conn.transaction():
                ins = conn.execute(
                    f"insert into {table} (id, v, s) select g, 0, md5(g::text) "
                    "from generate_series(%s::int, %s::int) g", (next_id, next_id + 399))
                next_id += 400
                upd = conn.execute(
                    f"update {table} set v = v + 1, s = md5(random()::text) where id in "
                    f"(select id from {table} order by random() limit 400)")
                low = rng.randint(1, max(1, next_id - 2_000))
                dele = conn.execute(
                    f"delete from {table} where id in (select id from {table} where id >= %s "
                    "order by id limit 200)", (low,))
            counts["changes"] += ins.rowcount + upd.rowcount + dele.rowcount
            counts["batches"] += 1
            time.sleep(0.08)
    done.set()


def test_sigkill_ten_times_during_100k_changes_loses_and_duplicates_nothing(
        cdc_case: CdcCase) -> None:
    table = cdc_case.t("crash")
    cdc_case.admin.execute(f"create table {table} (id int primary key, v int, s text)")
    cdc_case.admin.execute(f"insert into {table} select g, 0, md5(g::text) "
                           "from generate_series(1, %s) g", (INITIAL_ROWS,))
    cdc_case.publish(table)
    proc = cdc_case.start_service()
    cdc_case.wait_ready(proc)  # backfill done

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    done = threading.Event()
    counts = {"changes": 0, "batches": 0}
    writer = threading.Thread(target=_workload, args=(cdc_case.settings.admin_dsn(), table, done,
                                                      counts, seed))
    writer.start()
    kills = 0
    try:
        while kills < 10:
            time.sleep(rng.uniform(0.2, 1.2))  # some kills land mid-batch, some mid-start-up
            proc.kill()
            proc.wait(10)
            kills += 1
            proc = cdc_case.start_service()
    finally:
        writer.join(120)
    assert done.is_set() and kills == 10, f"workload stalled (seed {seed})"

    cdc_case.wait_ready(proc, timeout=60)
    report = cdc_case.drain(timeout=60)  # waits until the service has landed everything
    assert report.waited_for_service
    assert cdc_case.stop_service(proc) == 0

    raw = cdc_case.raw(table, "id, v, s")
    source = cdc_case.source(table, "id, v, s")
    assert len(raw) == len(source), f"seed {seed}"
    missing = set(source) - set(raw)
    extra = set(raw) - set(source)
    assert not missing and not extra, f"seed {seed}: {len(missing)} missing, {len(extra)} extra"
    events = cdc_case.raw(
        table, "count(*), count(DISTINCT datastream_metadata.change_sequence_number)",
        view=f"{table}__changes")[0]
    assert events[0] == events[1] == INITIAL_ROWS + counts["changes"], f"seed {seed}"
