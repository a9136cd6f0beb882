"""`PullIntake` against a fake subscriber (a unit test: no emulator; the integration tests in
tests/integration/streaming run the same code against the real one)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions

from pulse_local.streaming.pull_intake import PulledMessage, PullIntake


def _received(ack_id: str, message_id: str) -> Any:
    """A ``ReceivedMessage`` as Pull returns it."""
    from google.pubsub_v1.types import PubsubMessage, ReceivedMessage

    return ReceivedMessage(ack_id=ack_id, message=PubsubMessage(
        message_id=message_id, data=b"{}", publish_time=datetime.now(UTC)))


class FakeSubscriber:
    """Hands out ``backlog`` messages, as many per Pull as asked; records acks and deadlines."""

    def __init__(self, backlog: int, *, get_denied: bool = False) -> None:
        self.backlog = backlog
        self.get_denied = get_denied
        self.next_id = 0
        self.acked: list[str] = []
        self.deadlines: list[tuple[int, int]] = []  # (ack ids, seconds)
        self.lock = threading.Lock()

    def get_subscription(self, **_: Any) -> None:
        if self.get_denied:
            raise exceptions.PermissionDenied("no pubsub.subscriptions.get")

    def pull(self, *, max_messages: int, **_: Any) -> Any:
        with self.lock:
            n = min(max_messages, self.backlog - self.next_id)
            out = [_received(f"a{i}", f"m{i}") for i in range(self.next_id, self.next_id + n)]
            self.next_id += n
        if not out:
            time.sleep(0.01)
        from google.pubsub_v1.types import PullResponse

        return PullResponse(received_messages=out)

    def acknowledge(self, *, request: Any, **_: Any) -> None:
        with self.lock:
            self.acked += list(request.ack_ids)

    def modify_ack_deadline(self, *, request: Any, **_: Any) -> None:
        with self.lock:
            self.deadlines.append((len(request.ack_ids), request.ack_deadline_seconds))


def _run(subscriber: FakeSubscriber, capacity: int, handle: Any,
         errors: list[str] | None = None) -> PullIntake:
    intake = PullIntake(subscriber, "projects/p/subscriptions/s", handle, pullers=4,
                        capacity=capacity, max_bytes=10**9, lease_seconds=10,
                        on_error=(errors if errors is not None else []).append)
    intake.start()
    return intake


def test_flow_control_never_holds_more_than_capacity() -> None:
    subscriber = FakeSubscriber(5_000)
    held: list[PulledMessage] = []
    lock = threading.Lock()
    intake = _run(subscriber, 300, lambda ms: (lock.acquire(), held.extend(ms), lock.release()))
    deadline = time.monotonic() + 20
    while len(subscriber.acked) < 5_000 and time.monotonic() < deadline:
        with lock:
            batch, held[:] = held[:50], held[50:]
        intake.settle(batch, [])
        time.sleep(0.001)
    intake.close()
    assert len(set(subscriber.acked)) == 5_000
    assert 0 < intake.max_held <= 300
    assert all(seconds == 10 for _, seconds in subscriber.deadlines)  # leases set on pull


def test_no_lease_call_after_pull_when_the_subscription_deadline_is_the_lease() -> None:
    subscriber = FakeSubscriber(2_000)
    got: list[PulledMessage] = []
    intake = PullIntake(subscriber, "projects/p/subscriptions/s", got.extend, pullers=2,
                        capacity=5_000, max_bytes=10**9, lease_seconds=10,
                        subscription_deadline=10)
    intake.start()
    deadline = time.monotonic() + 5
    while len(got) < 2_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    intake.settle(got, [])
    intake.close()
    assert len(subscriber.acked) == 2_000
    assert subscriber.deadlines == []  # leases came with the Pull; none had to be extended


def test_nack_sets_deadline_zero_and_frees_room() -> None:
    subscriber = FakeSubscriber(10)
    got: list[PulledMessage] = []
    intake = _run(subscriber, 10, got.extend)
    deadline = time.monotonic() + 5
    while len(got) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    intake.settle(got[:4], got[4:])
    intake.close()
    assert subscriber.acked == [m.ack_id for m in got[:4]]
    assert (6, 0) in subscriber.deadlines
    assert intake.held == 0


def test_permission_denied_on_get_subscription_still_connects() -> None:
    """GCP's subscriber role has no pubsub.subscriptions.get; Pull alone must be enough."""
    subscriber = FakeSubscriber(0, get_denied=True)
    errors: list[str] = []
    intake = _run(subscriber, 10, lambda ms: None, errors)
    assert intake.connected.wait(5)
    intake.close()
    assert errors == []


def test_a_pulled_message_keeps_publish_time_to_the_microsecond_and_its_size() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp
    from google.pubsub_v1.types import ReceivedMessage

    received = ReceivedMessage.pb()(ack_id="a1", delivery_attempt=3)
    received.message.message_id, received.message.data = "m1", b'{"x": 1}'
    received.message.attributes["tenant_id"] = "t"
    received.message.publish_time.CopyFrom(Timestamp(seconds=1714563000, nanos=123_456_789))
    intake = PullIntake(FakeSubscriber(0), "projects/p/subscriptions/s", lambda ms: None,
                        pullers=1, capacity=1, max_bytes=10**6, lease_seconds=10)
    message = intake._message(received)
    assert message.publish_time == datetime(2024, 5, 1, 11, 30, 0, 123_456, tzinfo=UTC)
    assert (message.message_id, message.data, message.attributes) == (
        "m1", b'{"x": 1}', {"tenant_id": "t"})
    assert message.delivery_attempt == 3
    assert message.size == received.message.ByteSize() > len(b'{"x": 1}')
