"""SIGKILL the consumer repeatedly mid-stream: every event lands exactly once."""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from typing import Any

import pytest
from conftest import wait_for  # type: ignore[import-not-found]

from pulse_local.config import Settings
from pulse_local.streaming.testing import (
    event_stream,
    fact_event_ids,
    publish_events,
    pull_dead_letters,
    settle_pending,
    tenant_total,
)

pytestmark = pytest.mark.integration

#: Events of the run (PULSE_TEST_KILL_EVENTS overrides; see docs/streaming.md for timings).
EVENTS = int(os.environ.get("PULSE_TEST_KILL_EVENTS", "50000"))
KILLS = 10


#: Seconds within which every message must land after the last kill. The tests' emulator has
#: no retry backoff (`own_pubsub`), so a killed consumer's messages come back once their 10 s
#: lease runs out; this is a liveness bound with a wide margin for a loaded CI machine, not a
#: speed target.
WAIT = 300.0


@pytest.mark.timeout(WAIT + 300)
def test_sigkill_ten_times_keeps_every_event_exactly_once(
        stream_settings: Settings, publisher: Any, spawn_consumer: Any) -> None:
    tenant = uuid.uuid4()
    events = event_stream(EVENTS, tenant, users=200, forms=5)
    began = time.monotonic()
    publish_events(publisher, stream_settings.project, events)
    rng = random.Random(3)
    consumer = spawn_consumer()
    killed_at = []
    for _ in range(KILLS):
        # Kill mid-stream: once this consumer has counted new events, at a random moment.
        before = tenant_total(stream_settings, tenant).events
        wait_for(lambda before=before: tenant_total(stream_settings, tenant).events > before, 120,
                 "the restarted consumer to count events", interval=0.1)
        time.sleep(rng.uniform(0.0, 1.0))
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
        killed_at.append(tenant_total(stream_settings, tenant).events)
        consumer = spawn_consumer()
    assert killed_at[-1] < EVENTS, f"the run ended before the last kill: {killed_at}"

    # Counted is not finished: a killed attempt may have counted a batch whose redelivery
    # (which writes the facts) is still queued behind the backlog. Wait for both.
    progress: dict[str, int] = {}

    def landed() -> bool:
        # The counter is one row; the facts are a scan of up to 50k rows, which costs the
        # emulator seconds of CPU taken from the consumer: scan only once everything counted.
        progress["counted"] = tenant_total(stream_settings, tenant).events
        if progress["counted"] < EVENTS:
            return False
        progress["stored"] = len(fact_event_ids(stream_settings, tenant))
        return progress["stored"] >= EVENTS

    try:
        wait_for(landed, WAIT, f"{EVENTS} events counted and stored", interval=1.0)
    except pytest.fail.Exception:  # say what was there, and whether the consumer lived
        progress["stored"] = len(fact_event_ids(stream_settings, tenant))
        pytest.fail(f"after the kills (counted at each: {killed_at}) the last consumer "
                    f"(alive: {consumer.poll() is None}) reached {progress} of {EVENTS} "
                    f"within {WAIT:.0f} s; consumer logs are in the test's tmp_path")
    time.sleep(2)  # anything still in flight would show up as an over-count now
    consumer.terminate()
    assert consumer.wait(timeout=30) == 0

    total = tenant_total(stream_settings, tenant)
    assert total.events == EVENTS
    assert total.score_sum == pytest.approx(sum(e.total_score or 0 for e in events))
    ids = fact_event_ids(stream_settings, tenant)
    assert len(ids) == EVENTS
    assert set(ids) == {str(e.event_id) for e in events}
    # The same from the counters alone, once every pending entry is folded into them.
    settle_pending(stream_settings, tenant)
    folded = tenant_total(stream_settings, tenant)
    assert folded.events == EVENTS
    assert folded.score_sum == pytest.approx(total.score_sum)
    # Killed consumers' deliveries count towards the subscription's max_delivery_attempts; none
    # of these healthy events may have been dead-lettered (with 5 it happened: docs/streaming.md).
    assert pull_dead_letters(stream_settings.project, 5) == []
    print(f"\n{EVENTS} events, {KILLS} SIGKILLs (at counts {killed_at}): exactly once in "
          f"{time.monotonic() - began:.1f} s")
