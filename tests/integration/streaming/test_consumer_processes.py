"""The consumer service with several processes, against the real emulators: they share the
stream exactly once, a child that dies is restarted, SIGTERM stops them all, and children of
a killed service stop by themselves."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import psutil
import pytest
from conftest import wait_for  # type: ignore[import-not-found]

from pulse_local.config import Settings
from pulse_local.streaming.testing import (
    event_stream,
    fact_event_ids,
    publish_events,
    settle_pending,
    tenant_total,
)

pytestmark = pytest.mark.integration


def _children(parent: int) -> list[psutil.Process]:
    """The live child consumers of a service process (a killed one not yet reaped is not)."""
    found = []
    for proc in psutil.Process(parent).children():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "--child-of" in proc.cmdline():
                found.append(proc)
        except psutil.Error:  # it ended while we looked: not a live child
            continue
    return found


def test_three_processes_share_the_stream_restart_a_dead_child_and_stop_together(
        stream_settings: Settings, publisher: Any, spawn_consumer: Any) -> None:
    tenant = uuid.uuid4()
    events = event_stream(6000, tenant, users=100)
    service = spawn_consumer(PULSE_STREAMING_PROCESSES="3")
    wait_for(lambda: len(_children(service.pid)) == 2, 30, "two child consumers")
    first, second = _children(service.pid)

    publish_events(publisher, stream_settings.project, events[:3000])
    wait_for(lambda: tenant_total(stream_settings, tenant).events >= 1000, 60,
             "the first events to be counted")
    first.send_signal(signal.SIGKILL)  # mid-stream
    wait_for(lambda: len(_children(service.pid)) == 2 and first.pid not in
             [c.pid for c in _children(service.pid)], 30, "the dead child to be replaced")
    publish_events(publisher, stream_settings.project, events[3000:])
    wait_for(lambda: tenant_total(stream_settings, tenant).events >= len(events), 120,
             "every event to be counted")

    children = _children(service.pid)
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=30) == 0
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"children left running: {alive}"
    assert second.pid in [c.pid for c in children]  # the healthy child ran throughout

    # the consumers folded as they went; fold what is left and check the counters alone
    settle_pending(stream_settings, tenant)
    total = tenant_total(stream_settings, tenant)
    assert total.events == len(events)
    assert total.score_sum == pytest.approx(sum(e.total_score or 0 for e in events))
    assert sorted(fact_event_ids(stream_settings, tenant)) == sorted(
        str(e.event_id) for e in events)


def test_children_of_a_killed_service_stop_by_themselves(
        stream_settings: Settings, spawn_consumer: Any) -> None:
    service = spawn_consumer(PULSE_STREAMING_PROCESSES="2")
    wait_for(lambda: len(_children(service.pid)) == 1, 30, "the child consumer")
    child = _children(service.pid)[0]
    service.send_signal(signal.SIGKILL)
    service.wait()
    _gone, alive = psutil.wait_procs([child], timeout=30)
    assert not alive, "the orphaned child kept running"
