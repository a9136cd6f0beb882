"""Integration: the emulators' state survives `down`/`up`, and a stack killed with SIGKILL is
repaired on the next `up` (real emulators, the real consumer, its own stack on free ports)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from pulse_local.config import Settings
from pulse_local.stack import emulator_state
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services
from pulse_local.testing.plugin import make_test_settings

pytestmark = pytest.mark.integration


def emulator_stack(settings: Settings, *, consumer: bool = False) -> NativeStack:
    """The two emulators, and the streaming consumer when asked."""
    keep = {"pubsub", "bigtable"} | ({"streaming"} if consumer else set())
    return NativeStack(settings, [s for s in native_services(settings) if s.name in keep])


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    s = make_test_settings()
    # this test's clients go to this stack's emulators, not the session's
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"{s.host}:{s.pubsub_port}")
    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", f"{s.host}:{s.bigtable_port}")
    yield s
    NativeStack(s).down(save=False)
    shutil.rmtree(s.state_dir, ignore_errors=True)


def _bigtable_cells(settings: Settings) -> list[tuple[str, str, list[list[Any]]]]:
    """Every row's cells (the emulator lists a row's families in no fixed order)."""
    return sorted((r["t"], r["k"], sorted(r["c"])) for r in emulator_state._bigtable_rows(settings))


def _publisher() -> Any:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))


def _pull_all(settings: Settings, subscription: str) -> list[tuple[bytes, dict[str, str], str]]:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(settings.project, subscription)
    got = []
    try:
        while True:
            pulled = subscriber.pull(subscription=path, max_messages=1000,
                                     return_immediately=True, timeout=30)
            if not pulled.received_messages:
                return sorted(got)
            got += [(m.message.data, dict(m.message.attributes), m.message.ordering_key)
                    for m in pulled.received_messages]
            subscriber.acknowledge(subscription=path,
                                   ack_ids=[m.ack_id for m in pulled.received_messages])
    finally:
        subscriber.close()


def test_down_and_up_keep_bigtable_and_the_pubsub_backlog(settings: Settings) -> None:
    from pulse_local.streaming.quality import run_checks
    from pulse_local.streaming.store import Delivered, EventStore
    from pulse_local.streaming.testing import make_event

    stack = emulator_stack(settings)
    stack.up()
    tenant = uuid.uuid4()
    events = [make_event(tenant, uuid.uuid4()) for _ in range(20)]
    store = EventStore.for_settings(settings)
    try:
        written = store.write([Delivered(e, str(i), e.submitted_at, e.to_message(),
                                         run_checks(e, e.submitted_at))
                               for i, e in enumerate(events)])
    finally:
        store.close()
    assert len(written.written) == 20
    publisher = _publisher()
    topic = publisher.topic_path(settings.project, "response-events")
    dlq = publisher.topic_path(settings.project, "response-events-dlq")
    for i in range(6):
        publisher.publish(topic, f"backlog {i}".encode(), n=str(i),
                          ordering_key="k" if i % 2 else "").result(timeout=30)
    publisher.publish(dlq, b"dead letter", reason="test").result(timeout=30)
    publisher.stop()
    cells = _bigtable_cells(settings)
    assert len(cells) > 20

    stopped = stack.down()
    assert {"pubsub", "bigtable"} <= set(stopped)
    assert any(n.startswith("bigtable: saved") for n in stack.notes), stack.notes
    assert any(n.startswith("pubsub: saved 7 ") for n in stack.notes), stack.notes

    report = stack.up()
    assert any("restored" in n for n in report.notes), report.notes
    assert any("republished 7 " in n for n in report.notes), report.notes
    assert not any("without `pulse-local down`" in n for n in report.notes)
    assert _bigtable_cells(settings) == cells  # every cell, timestamps included
    backlog = _pull_all(settings, "response-events-bigtable")
    assert backlog == sorted((f"backlog {i}".encode(), {"n": str(i)}, "k" if i % 2 else "")
                             for i in range(6))
    assert _pull_all(settings, "response-events-dlq-monitor") == [
        (b"dead letter", {"reason": "test"}, "")]


def test_a_save_that_keeps_the_emulators_running_hands_the_backlog_back(
        settings: Settings) -> None:
    """`snapshot save` stops only the writers: the emulators are saved in place (their pids
    stay), the Pub/Sub messages read for the save are deliverable at once (not leased until
    their ack deadline), and after the copy the live marks are back and the saved backlog is
    gone from the running state (its messages are still in the emulator)."""
    from pulse_local.stack import process
    from pulse_local.streaming.quality import run_checks
    from pulse_local.streaming.store import Delivered, EventStore
    from pulse_local.streaming.testing import make_event

    stack = emulator_stack(settings)
    stack.up()
    pids = {n: process.read_pid(stack.pid_path(n)) for n in ("pubsub", "bigtable")}
    events = [make_event(uuid.uuid4(), uuid.uuid4()) for _ in range(5)]
    store = EventStore.for_settings(settings)
    try:
        store.write([Delivered(e, str(i), e.submitted_at, e.to_message(),
                               run_checks(e, e.submitted_at)) for i, e in enumerate(events)])
    finally:
        store.close()
    publisher = _publisher()
    topic = publisher.topic_path(settings.project, "response-events")
    for i in range(4):
        publisher.publish(topic, f"kept {i}".encode(), n=str(i)).result(timeout=30)
    publisher.stop()
    cells = _bigtable_cells(settings)
    folder = emulator_state.state_dir(settings)

    assert stack.down(keep=frozenset({"pubsub", "bigtable"})) == []
    assert {n: process.read_pid(stack.pid_path(n)) for n in pids} == pids
    assert any(n.startswith("pubsub: saved 4 ") for n in stack.notes), stack.notes
    assert (folder / "pubsub.jsonl.gz").exists() and (folder / "bigtable.jsonl.gz").exists()
    assert not list(folder.glob("*.live"))  # what a snapshot copies looks like a clean down
    # handed back: a pull that does not wait gets every message now
    assert _pull_all(settings, "response-events-bigtable") == sorted(
        (f"kept {i}".encode(), {"n": str(i)}, "") for i in range(4))

    emulator_state.resume_after_copy(settings, {"pubsub", "bigtable"})
    assert not (folder / "pubsub.jsonl.gz").exists()
    assert {p.name for p in folder.glob("*.live")} == {"pubsub.live", "bigtable.live"}
    assert _bigtable_cells(settings) == cells


def _kill_everything(stack: NativeStack) -> None:
    """SIGKILL every process group of the stack, as a crash or `kill -9` would."""
    from pulse_local.stack import process

    for spec in stack.services:
        record = process.read_pid(stack.pid_path(spec.name))
        if record is not None and record.alive():
            os.killpg(os.getpgid(record.pid), signal.SIGKILL)
            psutil.Process(record.pid).wait(10)  # our child here: reaped


def _wait_total(settings: Settings, tenant: uuid.UUID, events: int) -> int:
    from pulse_local.streaming.testing import tenant_total

    deadline = time.monotonic() + 120
    total = tenant_total(settings, tenant).events
    while total < events and time.monotonic() < deadline:
        time.sleep(0.5)
        total = tenant_total(settings, tenant).events
    return total


def test_kill_9_then_up_rebuilds_the_serving_layer_from_the_raw_sink(settings: Settings
                                                                      ) -> None:
    from pulse_local.streaming.testing import event_stream, publish_events

    stack = emulator_stack(settings, consumer=True)
    stack.up()
    tenant = uuid.uuid4()
    first, second = event_stream(300, tenant, seed=1), event_stream(200, tenant, seed=2)
    publisher = _publisher()
    publish_events(publisher, settings.project, first)
    assert _wait_total(settings, tenant, 300) == 300
    stack.down()  # a clean save with the first 300
    stack.up()
    publish_events(_publisher(), settings.project, second)
    assert _wait_total(settings, tenant, 500) == 500
    _kill_everything(stack)

    report = stack.up()
    notes = " ".join(report.notes)
    assert "ended without `pulse-local down`" in notes, notes
    assert "rebuilt the serving layer" in notes, notes
    assert _wait_total(settings, tenant, 500) == 500
    time.sleep(2)  # nothing more arrives: no event counted twice
    assert _wait_total(settings, tenant, 500) == 500


def test_events_lost_with_pubsub_in_a_kill_9_are_published_again(
        settings: Settings, tmp_path: Any) -> None:
    """Webhooks stored and published while no consumer runs, then the whole stack killed:
    the backlog dies with the emulator. The next `up` finds the revisions stored in
    PostgreSQL that no durable event layer holds and the processor publishes them again from
    the raw archive; every stored revision then reaches the raw sink once."""
    import psycopg

    from pulse_local.events import response_event_id
    from pulse_local.source.fixtures import generate
    from pulse_local.source.replay import replay
    from pulse_local.source.seed import seed_reference_data
    from pulse_local.streaming.sink import raw_events_dir, read_raw

    ingest = {"postgres", "pubsub", "bigtable", "processor"}
    stack = NativeStack(settings, [s for s in native_services(settings) if s.name in ingest])
    stack.up()
    generate(1, 7, tmp_path)
    seed_reference_data(settings, tmp_path)
    statuses = replay(settings, tmp_path, concurrency=4, progress=False)
    assert set(statuses) == {200}, statuses
    with psycopg.connect(settings.admin_dsn()) as conn:
        stored = {str(response_event_id(rid, n)) for rid, n in conn.execute(
            "select response_id, row_number() over (partition by response_id order by id) "
            "from webhook_deliveries where outcome in ('created', 'revised')").fetchall()}
    assert stored
    _kill_everything(stack)

    whole = NativeStack(settings, [s for s in native_services(settings)
                                   if s.name in ingest | {"streaming"}])
    report = whole.up()
    notes = " ".join(report.notes)
    assert f"{len(stored)} revisions stored in PostgreSQL were in no durable" in notes, notes
    assert "posts failed" not in notes, notes
    deadline = time.monotonic() + 120
    consumed: list[str] = []
    while time.monotonic() < deadline:
        rows = read_raw(raw_events_dir(settings), dedup=False) \
            if raw_events_dir(settings).exists() else []
        consumed = [json.loads(r[4])["event_id"] for r in rows]
        if stored <= set(consumed):
            break
        time.sleep(0.5)
    assert set(consumed) == stored


def test_down_with_a_hung_consumer_saves_the_messages_it_held(settings: Settings) -> None:
    """A consumer that does not stop in time (frozen with SIGSTOP here, after its streams
    took messages) is killed by `down`; the messages it held come back to the subscription
    only when their lease runs out, and the save waits for them: after `up`, every event is
    counted once."""
    import dataclasses

    from pulse_local.streaming.testing import event_stream, publish_events

    specs = [dataclasses.replace(s, stop_timeout=0.5) if s.name == "streaming" else s
             for s in native_services(settings) if s.name in {"pubsub", "bigtable", "streaming"}]
    stack = NativeStack(settings, specs)
    stack.up()
    tenant = uuid.uuid4()
    record = next(s for s in stack.status() if s.name == "streaming")
    assert record.pid is not None
    os.killpg(os.getpgid(record.pid), signal.SIGSTOP)
    publish_events(_publisher(), settings.project, event_stream(50, tenant, seed=3))
    time.sleep(2)  # the frozen consumer's open streams receive (and lease) them

    stack.down()
    notes = " ".join(stack.notes)
    assert "streaming did not stop within 0.5 s and was killed" in notes, notes
    assert "pubsub: saved 50 unacknowledged messages" in notes, notes
    stack.up()
    assert _wait_total(settings, tenant, 50) == 50
    time.sleep(2)  # nothing more arrives: no event counted twice
    assert _wait_total(settings, tenant, 50) == 50
