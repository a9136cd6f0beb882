"""The consumer's default intake: unary ``Pull`` with our own leases (`Intake`, see intake.py).

Why not the client library's streaming pull (``SubscriberClient.subscribe``)? Measured on the
official emulator (0.8.20, the one the Google Cloud CLI ships): when a consumer process dies,
the emulator fails to clean up its streaming pulls (``NoSuchMethodError`` in its gRPC layer on
cancel) and keeps the messages leased to those dead streams; after three killed consumers, 500
of 3,000 messages came back within 60 s (ack deadline 10 s). With unary ``Pull`` every message
of a killed consumer came back as soon as its ack deadline ran out (3,000 of 3,000). ``Pull``
is a first-class API on GCP as well, so one code path serves both profiles.

`PullIntake` keeps what the streaming client gave us:

* **flow control**: pullers ask only for what fits under ``capacity`` messages and
  ``max_bytes`` bytes held (a message is held from pull until ack or nack), so memory is
  bounded whatever the backlog;
* **leases**: pulled messages get a short ack deadline (``lease_seconds``: the subscription's
  own when it is that short, as declared, or set right after the Pull) that a lease thread
  extends while they are held, so a crashed consumer's messages are redelivered seconds later;
* **batched settlement**: `settle` acks and nacks a batch in as few RPCs as possible.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("pulse_local.streaming")

#: Ack ids per acknowledge / modifyAckDeadline request (Pub/Sub's request limit is 512 KiB).
_ACK_CHUNK = 1000
#: Messages asked for per Pull call.
_PULL_MAX = 1000
#: How long a Pull on an empty subscription waits: short, so `close` (SIGTERM, `make down`)
#: does not wait for a long poll to end.
_LONG_POLL_SECONDS = 2.0


@dataclass(eq=False)
class PulledMessage:
    """One delivery, with the attributes the consumer reads from a streaming-pull ``Message``."""

    intake: PullIntake = field(repr=False)
    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: datetime
    delivery_attempt: int | None
    size: int

    def ack(self) -> None:
        """Acknowledge this delivery alone (batches go through `PullIntake.settle`)."""
        self.intake.settle([self], [])

    def nack(self) -> None:
        """Hand this delivery back for redelivery now."""
        self.intake.settle([], [self])


class PullIntake:
    """Pull threads feeding ``on_messages`` (each Pull's messages in one call), with flow
    control, leases and batched acks."""

    def __init__(self, subscriber: Any, subscription_path: str,
                 on_messages: Callable[[list[PulledMessage]], None], *, pullers: int,
                 capacity: int, max_bytes: int, lease_seconds: int,
                 subscription_deadline: int | None = None,
                 on_error: Callable[[str], None] = lambda _: None) -> None:
        self.subscriber = subscriber
        self.path = subscription_path
        self.on_messages = on_messages
        self.on_error = on_error  # told of every failed Pull (the caller keeps the record)
        self.pullers = pullers
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.lease_seconds = lease_seconds
        #: A Pull leases messages for the subscription's ack deadline; when that is the lease
        #: already, setting it again after each Pull is a wasted call (1,000 ack ids each).
        self._set_lease_on_pull = subscription_deadline != lease_seconds
        self._stop = threading.Event()  # pullers stop
        self._leases_stop = threading.Event()  # the lease keeper stops (after the pullers)
        #: Ack/modify calls must end well within a lease, or the lease thread falls behind.
        self._rpc_timeout = max(1.0, lease_seconds / 3)
        self._held: dict[str, tuple[PulledMessage, float]] = {}  # ack id -> (message, leased at)
        self._held_bytes = 0
        self._reserved = 0  # room promised to Pull calls in progress
        self.max_held = 0  # most messages held at once (flow control keeps it <= capacity)
        self._room = threading.Condition()
        self.connected = threading.Event()  # set while the last Pull call succeeded
        self.ever_connected = threading.Event()  # set once a call succeeded
        self._threads: list[threading.Thread] = []

    # Lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the pullers and the lease keeper (daemon threads; they end with `stop`)."""
        self._threads = [threading.Thread(target=self._pull_loop, name=f"puller-{i}",
                                          daemon=True) for i in range(self.pullers)]
        self._threads.append(threading.Thread(target=self._lease_loop, name="leases",
                                              daemon=True))
        for thread in self._threads:
            thread.start()

    def stop_pulling(self, timeout: float = _LONG_POLL_SECONDS + 1) -> None:
        """Stop taking messages (a Pull in progress finishes); leases of held messages are
        still extended until `close`, so messages being written are not redelivered."""
        self._stop.set()
        with self._room:
            self._room.notify_all()
        for thread in self._threads[:-1]:
            thread.join(timeout=timeout)

    def close(self, timeout: float = _LONG_POLL_SECONDS + 1) -> None:
        """Stop pulling and extending leases; wait for the threads."""
        self.stop_pulling(timeout)
        self._leases_stop.set()
        for thread in self._threads[-1:]:
            thread.join(timeout=timeout)

    def is_open(self, *, ever: bool = False) -> bool:
        """Whether the last Pull call succeeded (or, with ``ever``, one did)."""
        return (self.ever_connected if ever else self.connected).is_set()

    @property
    def held(self) -> int:
        """Messages pulled and not yet acked or nacked."""
        with self._room:
            return len(self._held)

    # Pulling ----------------------------------------------------------------------------------
    def _wait_for_room(self) -> int:
        """Block until fewer than ``capacity`` messages are held or reserved; reserve and
        return how many the next Pull may bring (0 when stopping)."""
        with self._room:
            while not self._stop.is_set() and (
                    len(self._held) + self._reserved >= self.capacity
                    or self._held_bytes >= self.max_bytes):
                self._room.wait(0.1)
            if self._stop.is_set():
                return 0
            room = min(_PULL_MAX, self.capacity - len(self._held) - self._reserved)
            self._reserved += room
            return room

    def _pull_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            room = self._wait_for_room()
            if room == 0:
                continue
            received = self._pull(room)  # never raises
            messages = []
            try:
                messages = [self._message(r) for r in received or []]
            except Exception:
                log.exception("unreadable Pull response; nacking its %d messages",
                              len(received or []))
                self._modify([r.ack_id for r in received or []], 0)
            now = time.monotonic()
            with self._room:  # the reservation turns into held messages in one step
                self._reserved -= room
                for m in messages:
                    self._held[m.ack_id] = (m, now)
                    self._held_bytes += m.size
                self.max_held = max(self.max_held, len(self._held))
                self._room.notify_all()
            if received is None:  # the call failed: back off
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            if not messages:
                continue
            if self._set_lease_on_pull:
                self._modify([m.ack_id for m in messages], self.lease_seconds)
            try:
                self.on_messages(messages)
            except Exception:
                log.exception("%d messages could not be handed over; nacking them",
                              len(messages))
                self.settle([], messages)

    def _pull(self, room: int) -> list[Any] | None:
        """One Pull of at most ``room`` messages; None when the call failed (logged).

        While not connected, a `GetSubscription` first: a Pull on an empty subscription is a
        long poll, and readiness should not wait for it. On GCP the subscriber role has no
        ``pubsub.subscriptions.get``: a permission error there still proves the service answers
        (the Pull that follows says whether consuming is allowed)."""
        from google.api_core import exceptions

        try:
            if not self.connected.is_set():
                try:
                    self.subscriber.get_subscription(subscription=self.path, timeout=5,
                                                     retry=None)
                except exceptions.PermissionDenied:
                    log.debug("no pubsub.subscriptions.get on %s: fine, Pull needs only "
                              "pubsub.subscriptions.consume", self.path)
                self._answered()
            response = self.subscriber.pull(subscription=self.path, max_messages=room,
                                            timeout=_LONG_POLL_SECONDS, retry=None)
        except exceptions.DeadlineExceeded:
            self._answered()  # an empty long poll: the service is there
            return []
        except Exception as exc:  # noqa: BLE001 - any failure of the call: logged, retried with backoff
            self.connected.clear()
            self.on_error(str(exc))
            log.warning("pull from %s failed: %s; retrying with backoff (if the subscription "
                        "is missing, `pulse-local up` declares it)", self.path, exc)
            return None
        self._answered()
        # the protobuf messages themselves: reading fields through the proto-plus wrappers
        # cost the consumer a sixth of its CPU (py-spy, backlog drain)
        return list(type(response).pb(response).received_messages)

    def _answered(self) -> None:
        self.connected.set()
        self.ever_connected.set()

    def _message(self, received: Any) -> PulledMessage:
        """A delivery from a ``ReceivedMessage`` protobuf."""
        msg = received.message
        stamp = msg.publish_time  # ToDatetime costs twice this, ~1.5 µs a message
        published = datetime.fromtimestamp(stamp.seconds, UTC).replace(
            microsecond=stamp.nanos // 1000)
        return PulledMessage(
            intake=self, ack_id=received.ack_id, message_id=msg.message_id, data=msg.data,
            attributes=dict(msg.attributes), publish_time=published,
            delivery_attempt=int(received.delivery_attempt) or None,
            size=msg.ByteSize())  # what the client library's flow control counts, too

    # Leases and settlement --------------------------------------------------------------------
    def _lease_loop(self) -> None:
        """Every third of a lease, extend the leases of held messages that are half used."""
        period = max(1.0, self.lease_seconds / 3)
        while not self._leases_stop.wait(period):
            now = time.monotonic()
            with self._room:
                due = [ack for ack, (_, at) in self._held.items()
                       if now - at >= self.lease_seconds / 2]
                for ack in due:
                    self._held[ack] = (self._held[ack][0], now)
            if due:
                self._modify(due, self.lease_seconds)

    def settle(self, acks: Iterable[PulledMessage], nacks: Iterable[PulledMessage]) -> None:
        """Ack and nack (deadline 0: redeliver now) deliveries; frees their flow-control room.

        A failed ack only means a redelivery later, which the store recognises as a duplicate."""
        ack_ids = [m.ack_id for m in acks]
        nack_ids = [m.ack_id for m in nacks]
        with self._room:  # first, so the lease thread cannot extend what is being settled
            for ack in ack_ids + nack_ids:
                held = self._held.pop(ack, None)
                if held is not None:
                    self._held_bytes -= held[0].size
            self._room.notify_all()
        for chunk in _chunks(ack_ids):
            try:
                self.subscriber.acknowledge(request=_request("AcknowledgeRequest",
                                                             subscription=self.path,
                                                             ack_ids=chunk),
                                            timeout=self._rpc_timeout, retry=None)
            except Exception as exc:  # noqa: BLE001 - redelivered later and deduplicated
                log.warning("ack of %d messages failed (they will be redelivered and "
                            "recognised as duplicates): %s", len(chunk), exc)
        if nack_ids:
            self._modify(nack_ids, 0)

    def _modify(self, ack_ids: list[str], seconds: int) -> None:
        for chunk in _chunks(ack_ids):
            try:
                self.subscriber.modify_ack_deadline(
                    request=_request("ModifyAckDeadlineRequest", subscription=self.path,
                                     ack_ids=chunk, ack_deadline_seconds=seconds),
                    timeout=self._rpc_timeout, retry=None)
            except Exception as exc:  # noqa: BLE001 - the subscription's own deadline still applies
                log.warning("modifyAckDeadline(%d s) of %d messages failed: %s", seconds,
                            len(chunk), exc)


def _request(name: str, **fields: Any) -> Any:
    """A ``google.pubsub_v1.types`` request built as a protobuf and wrapped, not converted:
    proto-plus converts a list of 1,000 ack ids element by element (a tenth of the consumer's
    CPU went to building ack and deadline requests, py-spy)."""
    from google.pubsub_v1 import types

    cls = getattr(types, name)
    return cls.wrap(cls.pb()(**fields))


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _ACK_CHUNK):
        yield items[i:i + _ACK_CHUNK]
