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
    tenant_total,
)

pytestmark = pytest.mark.integration

#: Events of the run (PULSE_TEST_KILL_EVENTS overrides; see docs/streaming.md for timings).
EVENTS = int(os.environ.get("PULSE_TEST_KILL_EVENTS", "5000"))
KILLS = 10


def test_sigkill_ten_times_keeps_every_event_exactly_once(
        stream_settings: Settings, publisher: Any, spawn_consumer: Any) -> None:
    tenant = uuid.uuid4()
    events = event_stream(EVENTS, tenant, users=200, forms=5)
    began = time.monotonic()
    publish_events(publisher, stream_settings.project, events)
    rng = random.Random(3)
    consumer = spawn_consumer()
    for _ in range(KILLS):
        time.sleep(rng.uniform(2.0, 3.5))
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
        consumer = spawn_consumer()

    # A liveness bound, not a speed target: the emulator keeps handing messages to the killed
    # consumers' dead streams until their leases expire (docs/streaming.md).
    wait_for(lambda: tenant_total(stream_settings, tenant).events >= EVENTS, 360,
             f"{EVENTS} events counted", interval=1.0)
    time.sleep(2)  # anything still in flight would show up as an over-count now
    consumer.terminate()
    assert consumer.wait(timeout=30) == 0

    total = tenant_total(stream_settings, tenant)
    assert total.events == EVENTS
    assert total.score_sum == pytest.approx(sum(e.total_score or 0 for e in events))
    ids = fact_event_ids(stream_settings, tenant)
    assert len(ids) == EVENTS
    assert set(ids) == {str(e.event_id) for e in events}
    print(f"\n{EVENTS} events, {KILLS} SIGKILLs: exactly once in "
          f"{time.monotonic() - began:.1f} s")
