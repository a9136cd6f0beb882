"""A burst far above the steady rate: flow control bounds what the consumer holds, and every
event still lands once (real Pub/Sub and Bigtable emulators)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.streaming import StreamingOptions, consume
from pulse_local.streaming.testing import event_stream, publish_events, tenant_total

pytestmark = pytest.mark.integration

#: The whole burst is published before the consumer starts: the backlog is ~10 s of the
#: consumer's steady rate at once, 40 times what flow control lets it hold.
BURST = 20_000
CAPACITY = 2 * 250


def test_burst_is_held_within_flow_control_and_lands_once(
        stream_settings: Settings, publisher: Any) -> None:
    tenant = uuid.uuid4()
    events = event_stream(BURST, tenant, users=100, forms=4)
    publish_events(publisher, stream_settings.project, events)
    options = StreamingOptions(streams=2, max_messages=250, batch_size=200, sink=False)
    report = consume(stream_settings, idle_timeout=3, options=options)

    assert 0 < report.max_in_flight <= CAPACITY, report.summary()
    assert report.written == BURST, report.summary()
    assert tenant_total(stream_settings, tenant).events == BURST
    print(f"\nburst of {BURST:,}: held at most {report.max_in_flight} (flow control "
          f"{CAPACITY}), peak RSS {report.peak_rss_mb:.0f} MB, {report.summary()}")
