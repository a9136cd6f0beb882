"""Helpers shared by the streaming tests and the benchmark: valid events and fast publishing."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pulse_local.events import QuestionScore, ResponseEvent, response_event_id


def make_event(tenant_id: uuid.UUID, user_id: uuid.UUID | None = None, *,
               submitted_at: datetime | None = None, form_id: str = "form-a",
               assessment_id: uuid.UUID | None = None, scores: Sequence[float] = (3.0, 4.0),
               is_complete: bool = True, rng: random.Random | None = None) -> ResponseEvent:
    """A valid, quality-clean event (scores on a 1..5 scale, totals consistent)."""
    rng = rng or random.Random()
    response_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    question_scores = tuple(
        QuestionScore(question_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                      ref=f"q{i}", raw_score=s, score=s, reverse_keyed=False,
                      scale_min=1, scale_max=5)
        for i, s in enumerate(scores)
    )
    return ResponseEvent(
        event_id=response_event_id(response_id, 1),
        tenant_id=tenant_id,
        user_id=user_id,
        response_id=response_id,
        revision=1,
        assessment_id=assessment_id or uuid.UUID(int=1),
        form_id=form_id,
        run_id=None,
        typeform_token=response_id.hex[:12],
        submitted_at=submitted_at or datetime.now(UTC),
        is_complete=is_complete,
        answer_count=len(scores),
        scores=question_scores,
        total_score=sum(scores) if scores else None,
        max_score=5.0 * len(scores) if scores else None,
    )


def event_stream(count: int, tenant_id: uuid.UUID, *, users: int = 50, forms: int = 3,
                 start: datetime | None = None, span: timedelta = timedelta(hours=3),
                 seed: int = 7) -> list[ResponseEvent]:
    """``count`` events of one tenant spread over ``users`` users, ``forms`` forms and
    ``span`` of time (deterministic for a seed and tenant).

    The tenant is part of the random seed: streams of one seed for other tenants draw from
    the same sequence and, whatever their sizes, fall into step and repeat each other's event
    ids, which the raw sink's dedup (by event id, across tenants) then counts once."""
    rng = random.Random(f"{seed}:{tenant_id}")
    start = start or datetime.now(UTC) - span - timedelta(minutes=1)
    user_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(users)]
    events = []
    for _ in range(count):
        offset = timedelta(milliseconds=rng.randrange(int(span.total_seconds() * 1000)))
        events.append(make_event(
            tenant_id, rng.choice(user_ids), submitted_at=start + offset,
            form_id=f"form-{rng.randrange(forms)}",
            scores=(float(rng.randint(1, 5)), float(rng.randint(1, 5))), rng=rng))
    return events


def publish(publisher: Any, project: str, topic: str, messages: Iterable[tuple[bytes,
            dict[str, str]]]) -> list[str]:
    """Publish ``(data, attributes)`` pairs and wait for every message id."""
    path = publisher.topic_path(project, topic)
    futures = [publisher.publish(path, data, **attributes) for data, attributes in messages]
    return [f.result(timeout=60) for f in futures]


def publish_events(publisher: Any, project: str, events: Iterable[ResponseEvent],
                   topic: str = "response-events") -> list[str]:
    """Publish events as the webhook processor does (body + attributes)."""
    return publish(publisher, project, topic, ((e.to_message(), e.attributes()) for e in events))


def publish_batched(publisher: Any, project: str, topic: str,
                    messages: Sequence[tuple[bytes, dict[str, str]]], *, batch: int = 1000,
                    in_flight: int = 4) -> int:
    """Publish ``(data, attributes)`` pairs as raw ``Publish`` calls of ``batch`` messages,
    ``in_flight`` at a time, through ``publisher``'s own channel; returns how many the service
    took. A load generator: the client library's per-message futures and batching thread cost
    ~100 µs of CPU a message, which on two cores is taken from the system being measured."""
    from google.api_core.gapic_v1 import routing_header
    from google.pubsub_v1.types import PublishRequest

    path = publisher.topic_path(project, topic)
    request_pb = PublishRequest.pb()
    stub = publisher.transport.publish
    metadata = (routing_header.to_grpc_metadata({"topic": path}),)
    pending: list[Any] = []
    published = 0
    for first in range(0, len(messages), batch):
        request = request_pb(topic=path)
        for data, attributes in messages[first:first + batch]:
            request.messages.add(data=data, attributes=attributes)
        pending.append(stub.future(PublishRequest.wrap(request), timeout=60,
                                   metadata=metadata))
        if len(pending) >= in_flight:
            published += len(pending.pop(0).result().message_ids)
    for future in pending:
        published += len(future.result().message_ids)
    return published


def fast_publisher() -> Any:
    """A PublisherClient batching up to 1000 messages / 10 ms (for load generation)."""
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(
        max_messages=1000, max_bytes=4 * 1024 * 1024, max_latency=0.01))


def tenant_total(settings: Any, tenant: uuid.UUID) -> Any:
    """The tenant's all-time counters."""
    from pulse_local.serving import ServingStore, live_counters

    store = ServingStore.for_settings(settings)
    try:
        return live_counters(store, tenant).total
    finally:
        store.close()


def fact_event_ids(settings: Any, tenant: uuid.UUID) -> list[str]:
    """Event ids of every fact row of a tenant (keys only)."""
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange
    from google.cloud.bigtable.data import row_filters as rf

    from pulse_local.streaming import keys
    from pulse_local.streaming.layout import FACT_TABLE, bigtable_data_client

    client = bigtable_data_client(settings)
    try:
        table = client.get_table(settings.bigtable_instance, FACT_TABLE)
        prefix = keys.tenant_prefix(tenant)
        rows = table.read_rows(ReadRowsQuery(
            row_ranges=RowRange(start_key=prefix, end_key=keys.prefix_end(prefix)),
            row_filter=rf.RowFilterChain([rf.CellsRowLimitFilter(1),
                                          rf.StripValueTransformerFilter(True)])))
        return [r.row_key.decode().rsplit("#", 1)[1] for r in rows]
    finally:
        client.close()


def pending_event_ids(settings: Any, tenant: uuid.UUID) -> list[uuid.UUID]:
    """Event ids of every pending aggregate entry of a tenant's rows (repeats too): what the
    fold has not moved into the counters yet."""
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange
    from google.cloud.bigtable.data import row_filters as rf

    from pulse_local.streaming.layout import AGGREGATE_TABLE, ENTRY, PENDING, bigtable_data_client

    client = bigtable_data_client(settings)
    try:
        table = client.get_table(settings.bigtable_instance, AGGREGATE_TABLE)
        prefix = f"{tenant}#".encode()
        rows = table.read_rows(ReadRowsQuery(row_ranges=[RowRange(prefix, prefix + b"\xff")],
                                             row_filter=rf.FamilyNameRegexFilter(PENDING)))
        return [uuid.UUID(bytes=entry[0]) for row in rows for cell in row.cells
                for entry in ENTRY.iter_unpack(cell.value)]
    finally:
        client.close()


def fold_until_settled(store: Any, settings: Any, tenant: uuid.UUID, rounds: int = 4) -> bool:
    """Fold every pending row until the tenant has no pending entry left (each round waits
    out ``fold_after``: a first pass may only learn that the events are done); whether it
    got there within ``rounds``."""
    import time

    for _ in range(rounds):
        store.fold(everything=True)
        if not pending_event_ids(settings, tenant):
            return True
        time.sleep(store.fold_after + 0.1)
    return False


def settle_pending(settings: Any, tenant: uuid.UUID) -> None:
    """Fold, with a store of the consumers' own options, until no pending entry of the tenant
    is left, so its counters alone hold every event (AssertionError otherwise)."""
    from pulse_local.config import load_options
    from pulse_local.streaming.options import StreamingOptions
    from pulse_local.streaming.store import EventStore

    store = EventStore.for_settings(settings,
                                    fold_after=load_options(StreamingOptions).fold_after)
    try:
        assert fold_until_settled(store, settings, tenant), "entries left pending"
    finally:
        store.close()
    assert pending_event_ids(settings, tenant) == []


def pull_dead_letters(project: str, timeout: float, *, at_least: int = 1) -> list[Any]:
    """Pull (and ack) from ``response-events-dlq-monitor`` until ``at_least`` messages came or
    ``timeout`` seconds passed; returns the received messages (``PUBSUB_EMULATOR_HOST`` picks
    the emulator)."""
    import time

    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, "response-events-dlq-monitor")
    received: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(received) < at_least and time.monotonic() < deadline:
            response = subscriber.pull(subscription=path, max_messages=100, timeout=5)
            if response.received_messages:
                subscriber.acknowledge(subscription=path, ack_ids=[
                    m.ack_id for m in response.received_messages])
                received += response.received_messages
        return received
    finally:
        subscriber.close()
