"""Both intakes behind `Intake` (unary Pull, the client library's streaming pull) deliver every
event once into Bigtable on the real Pub/Sub and Bigtable emulators."""

from __future__ import annotations

import typing
import uuid
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.streaming import StreamingOptions, consume
from pulse_local.streaming.testing import event_stream, fact_event_ids, publish_events, tenant_total

pytestmark = pytest.mark.integration

INTAKES = typing.get_args(StreamingOptions.model_fields["intake"].annotation)


@pytest.mark.parametrize("intake", INTAKES)
def test_each_intake_writes_every_event_once(intake: str, stream_settings: Settings,
                                             publisher: Any) -> None:
    tenant = uuid.uuid4()
    events = event_stream(120, tenant, users=3)
    publish_events(publisher, stream_settings.project, events)
    publish_events(publisher, stream_settings.project, events[:20])  # re-deliveries

    report = consume(stream_settings, idle_timeout=2.0,
                     options=StreamingOptions(intake=intake, streams=2, sink=False))

    assert report.written + report.duplicates == 140
    assert report.max_in_flight >= 1  # counted by the intake (pull) or the consumer (streaming)
    assert sorted(fact_event_ids(stream_settings, tenant)) == sorted(str(e.event_id)
                                                                      for e in events)
    assert tenant_total(stream_settings, tenant).events == 120
