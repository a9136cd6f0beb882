"""The streaming consumer: Pub/Sub ``response-events-bigtable`` -> Bigtable (+ raw sink).

Threads of one consumer process:

* the intake (`pulse_local.streaming.intake.Intake`, built by ``open_intake``):
  ``options.streams`` threads of unary ``Pull`` with our own leases and flow control
  (`pulse_local.streaming.pull_intake`, the default; why: see there), or the client library's
  streaming pulls (``intake=streaming``, `pulse_local.streaming.streaming_intake`); either
  way the callback only puts the message on a queue and flow control bounds it (a message
  counts until acked or nacked);
* ``options.workers`` writers: take up to ``batch_size`` messages (waiting at most
  ``batch_wait_ms`` to fill a batch), validate, land them in the raw sink, write Bigtable
  (`EventStore.write`), and only then ack; failures nack (Pub/Sub redelivers) or, after the
  declared number of attempts, go to the dead-letter topic with a ``reason`` attribute;
* retries with backoff when Pub/Sub fails (emulator restarted, subscription not yet
  declared, network), a maintenance loop (heartbeat file, peak RSS) and the folder (pending
  aggregate entries into counters, `EventStore.fold`).

`Consumer.stop` (SIGTERM/SIGINT in the CLI) stops intake, finishes and acks what is in hand,
then closes the streams.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulse_local.config import Settings, load_options
from pulse_local.streaming.decode import Invalid, decode
from pulse_local.streaming.inbox import Inbox
from pulse_local.streaming.intake import Intake, open_intake
from pulse_local.streaming.options import (
    BIGQUERY_SUBSCRIPTION,
    DeadLetterConfig,
    StreamingOptions,
    dead_letter_config,
)
from pulse_local.streaming.quality import run_checks
from pulse_local.streaming.sink import RawEventSink, RawMessage
from pulse_local.streaming.status import status_path
from pulse_local.streaming.store import Delivered, EventStore

if TYPE_CHECKING:
    from google.cloud.pubsub_v1.subscriber.message import Message

log = logging.getLogger("pulse_local.streaming")

#: Pub/Sub attribute values are limited to 1024 bytes.
_MAX_ATTRIBUTE = 1024


@dataclass
class ConsumeReport:
    """What a consumer run did."""

    received: int = 0  #: deliveries taken from Pub/Sub (redeliveries count again)
    written: int = 0  #: events stored in Bigtable by this run
    duplicates: int = 0  #: deliveries of events already stored (acked, not counted again)
    dead_lettered: int = 0  #: published to the dead-letter topic, then acked
    retried: int = 0  #: nacked for redelivery
    batches: int = 0
    resubscribed: int = 0  #: streams reopened after an error
    max_in_flight: int = 0  #: most messages held at once (bounded by flow control)
    folded: int = 0  #: pending aggregate entries folded into counters
    leftovers_folded: int = 0  #: of those, found by the full sweep (left by other consumers)
    peak_rss_mb: float = 0.0
    seconds: float = 0.0
    stopped_by: str = ""  #: "max_messages", "idle", "stop" (signal) or "error"
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        rate = self.written / self.seconds if self.seconds else 0.0
        return (f"received {self.received}, written {self.written} ({rate:.0f}/s), "
                f"duplicates {self.duplicates}, dead-lettered {self.dead_lettered}, "
                f"retried {self.retried}, batches {self.batches}, max in flight "
                f"{self.max_in_flight}, peak RSS {self.peak_rss_mb:.0f} MB, "
                f"{self.seconds:.1f} s, stopped by {self.stopped_by}")


def _attribute(value: str) -> str:
    data = value.encode("utf-8")
    return value if len(data) <= _MAX_ATTRIBUTE else data[: _MAX_ATTRIBUTE - 3].decode(
        "utf-8", errors="ignore") + "..."


def _publish_time(message: Message) -> datetime:
    ts = message.publish_time
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def sink_for(settings: Settings) -> RawEventSink:
    """The raw sink of the settings' profile, from the backend factory (the consumer is a
    service's entry point; the sink module itself knows no profile)."""
    from pulse_local.backends import for_profile

    return for_profile(settings).raw_events


class Consumer:
    """One consumer process's machinery; `run` blocks until a stop condition."""

    def __init__(self, settings: Settings, options: StreamingOptions | None = None, *,
                 status_path: Path | None = None) -> None:
        self.settings = settings
        self.options = options or load_options(StreamingOptions)
        self.status_path = status_path
        self.dead_letter: DeadLetterConfig = dead_letter_config(
            self.options.policy_subscription or self.options.subscription,
            max_failed_attempts=self.options.max_failed_attempts)
        self.report = ConsumeReport()
        self._inbox: Inbox[Message] = Inbox()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._intake_open = threading.Event()
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._finished = 0
        self._publisher: Any = None
        self._subscriber: Any = None
        self._store: EventStore | None = None
        self._sink: RawEventSink | None = None
        self._intake: Intake | None = None
        #: The ``subscription_name`` of raw rows: the BigQuery subscription the sink stands in for.
        self._raw_subscription = (f"projects/{settings.project}/subscriptions/"
                                  f"{BIGQUERY_SUBSCRIPTION}")

    # Public -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask `run` to stop (safe from a signal handler or another thread)."""
        self._stop.set()

    def run(self, max_messages: int | None = None,
            idle_timeout: float | None = None) -> ConsumeReport:
        """Consume until `stop`, ``max_messages`` finished deliveries, or ``idle_timeout``
        seconds without a message (and nothing in hand). Returns the report."""
        from pulse_local.resources import bigtable_endpoint, pubsub_clients, pubsub_endpoint

        began = time.monotonic()
        self._publisher, self._subscriber = pubsub_clients(
            pubsub_endpoint(self.settings, self.settings.profile))
        log.info("consumer: Pub/Sub %s, Bigtable %s, subscription %s, DLQ %s after %d failed "
                 "processings (Pub/Sub's own after %d unsettled deliveries)",
                 pubsub_endpoint(self.settings, self.settings.profile) or "GCP",
                 bigtable_endpoint(self.settings, self.settings.profile) or "GCP",
                 self.options.subscription, self.dead_letter.dead_letter_topic,
                 self.dead_letter.max_failed_attempts, self.dead_letter.max_delivery_attempts)
        self._store = EventStore.for_settings(self.settings, fold_after=self.options.fold_after)
        self._sink = sink_for(self.settings) if self.options.sink else None
        if self._sink is not None:
            # ready before the first message: the first batch paid the local sink's imports
            # (0.7 s), every message behind it waited, and the p95 latency showed it
            self._sink.write([])
        self._intake_open.set()
        threads = [threading.Thread(target=self._worker, name=f"writer-{i}", daemon=True)
                   for i in range(self.options.workers)]
        self._intake = self._open_intake()
        self._intake.start()
        threads.append(threading.Thread(target=self._maintain, name="maintenance", daemon=True))
        threads.append(threading.Thread(target=self._fold, name="folder", daemon=True))
        for thread in threads:
            thread.start()
        try:
            self.report.stopped_by = self._wait(max_messages, idle_timeout)
        finally:
            self._shutdown(threads)
            self.report.seconds = round(time.monotonic() - began, 3)
            self._write_status(final=True)
            self._store.close()
            from pulse_local.resources import close_pubsub_clients

            close_pubsub_clients(self._publisher, self._subscriber)
        log.info("consumer stopped: %s", self.report.summary())
        return self.report

    # Stop conditions --------------------------------------------------------------------------
    def _wait(self, max_messages: int | None, idle_timeout: float | None) -> str:
        while not self._stop.wait(0.05):
            with self._lock:
                finished, idle_since = self._finished, self._last_activity
                quiet = self._in_flight == 0
            if max_messages is not None and finished >= max_messages:
                return "max_messages"
            if (idle_timeout is not None and quiet and self._is_open(ever=True)
                    and time.monotonic() - idle_since >= idle_timeout):
                return "idle"
        return "stop"

    def _shutdown(self, threads: Sequence[threading.Thread]) -> None:
        """Stop intake (new and queued deliveries are nacked), let the writers finish the
        batches they hold (acked once durable), then stop every thread and close the streams."""
        self._intake_open.clear()
        if self._intake is not None:
            self._intake.stop_pulling()  # leases go on until the writers are done
        self._nack_waiting()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    break
            time.sleep(0.02)
        self._stop.set()
        for thread in threads:
            thread.join(timeout=10)
        self._nack_waiting()
        if self._intake is not None:
            self._intake.close()

    def _nack_waiting(self) -> None:
        waiting = self._inbox.drain()
        if waiting:
            self._settle([], waiting)
            self._done(len(waiting))

    # Pub/Sub ----------------------------------------------------------------------------------
    def _open_intake(self) -> Intake:
        path = self._subscriber.subscription_path(self.settings.project,
                                                  self.options.subscription)
        return open_intake(self.options, self._subscriber, path, self._on_messages,
                           on_error=lambda text: self._record_error(text, reconnect=True),
                           on_open=self._streams_opened, stopped=self._stop)

    def _streams_opened(self, opened: float) -> None:
        """Idle time counts from when the intake's streams opened."""
        with self._lock:
            self._last_activity = max(self._last_activity, opened)

    def _is_open(self, *, ever: bool = False) -> bool:
        """Whether Pub/Sub answers now (or, with ``ever``, answered once since `run`)."""
        return self._intake is not None and self._intake.is_open(ever=ever)

    def _record_error(self, text: str, *, reconnect: bool = False) -> None:
        """Keep the last 20 errors in the report; ``reconnect``: Pub/Sub itself failed."""
        with self._lock:
            if reconnect:
                self.report.resubscribed += 1
            self.report.errors = (self.report.errors + [text[:300]])[-20:]

    def _settle(self, acks: list[Message], nacks: list[Message]) -> None:
        """Ack and nack a batch's deliveries (batched RPCs with the pull intake)."""
        assert self._intake is not None, "settled before the intake was opened"
        self._intake.settle(acks, nacks)

    def _on_messages(self, messages: list[Message]) -> None:
        """Hand deliveries (a Pull's, or one streaming-pull message) to the writers, or nack
        them when stopping."""
        if not self._intake_open.is_set():
            self._settle([], messages)
            return
        with self._lock:
            self._in_flight += len(messages)
            self.report.received += len(messages)
            if self._intake is None or self._intake.max_held is None:  # else it counts them
                self.report.max_in_flight = max(self.report.max_in_flight, self._in_flight)
            self._last_activity = time.monotonic()
        self._inbox.put_many(messages)

    # Writers ----------------------------------------------------------------------------------
    def _next_batch(self) -> list[Message]:
        return self._inbox.take(self.options.batch_size, first_wait=0.1,
                                fill_wait=self.options.batch_wait_ms / 1000)

    def _worker(self) -> None:
        while not self._stop.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                self._process(batch)
            except Exception:  # a bug: keep the worker alive, Pub/Sub redelivers the batch
                log.exception("unexpected error processing a batch of %d; nacking it",
                              len(batch))
                self._settle([], batch)
                self._done(len(batch))

    def _done(self, count: int) -> None:
        with self._lock:
            self._in_flight -= count
            self._finished += count
            self._last_activity = time.monotonic()

    def _process(self, batch: list[Message]) -> None:
        """Validate, sink, store, then ack/nack/dead-letter every message of the batch."""
        assert self._store is not None
        delivered: list[Delivered] = []
        owners: list[Message] = []
        to_dlq: list[tuple[Message, str, str]] = []
        crashed: list[tuple[Message, str]] = []
        for message in batch:
            try:
                outcome = decode(message.data, message.attributes)
                if isinstance(outcome, Invalid):
                    to_dlq.append((message, outcome.reason, outcome.detail))
                    continue
                published = _publish_time(message)
                quality = run_checks(outcome, published)
            except Exception as exc:  # noqa: BLE001 - a message our code cannot handle: retried, then DLQ
                crashed.append((message, f"{type(exc).__name__}: {exc}"))
                continue
            delivered.append(Delivered(outcome, message.message_id, published, message.data,
                                       quality))
            owners.append(message)
        acks: list[Message] = []
        nacks: list[Message] = []
        try:
            if self._sink is not None:
                self._sink.write([self._raw(m) for m in batch])
            result = self._store.write(delivered)
        except Exception as exc:  # noqa: BLE001 - infrastructure: every message is retried as a whole
            log.warning("batch of %d failed, nacking for redelivery: %s", len(batch), exc)
            self._settle([], batch)
            self._record_error(str(exc))
            with self._lock:
                self.report.retried += len(batch)
            self._done(len(batch))
            return
        acks += [owners[i] for i in result.written + result.duplicates]
        failures = [(owners[i], why) for i, why in result.failed.items()] + crashed
        for message, why in failures:
            attempts = self._store.count_attempt(message.message_id, _publish_time(message))
            if attempts >= self.dead_letter.max_failed_attempts:
                to_dlq.append((message, "processing_failed",
                               f"failed {attempts} times, last error: {why}"))
            else:
                log.warning("message %s failed (attempt %d of %d): %s", message.message_id,
                            attempts, self.dead_letter.max_failed_attempts, why)
                nacks.append(message)
        dead = self._dead_letter(to_dlq)
        acks += dead
        nacks += [m for m, _, _ in to_dlq if m not in dead]
        self._settle(acks, nacks)
        with self._lock:
            self.report.batches += 1
            self.report.written += len(result.written)
            self.report.duplicates += len(result.duplicates)
            self.report.dead_lettered += len(dead)
            self.report.retried += len(nacks)
        self._done(len(batch))

    def _raw(self, message: Message) -> RawMessage:
        return RawMessage(
            subscription_name=self._raw_subscription,
            message_id=message.message_id,
            publish_time=_publish_time(message),
            data=message.data,
            attributes=message.attributes,
        )

    def _dead_letter(self, items: list[tuple[Message, str, str]]) -> list[Message]:
        """Publish to the dead-letter topic; returns the messages that are safely there."""
        if not items:
            return []
        topic = self._publisher.topic_path(self.settings.project,
                                           self.dead_letter.dead_letter_topic)
        futures = []
        for message, reason, detail in items:
            attributes = {
                **dict(message.attributes),
                "reason": reason,
                "reason_detail": _attribute(detail),
                "source_message_id": message.message_id,
                "CloudPubSubDeadLetterSourceSubscription": self.options.subscription,
                "CloudPubSubDeadLetterSourceSubscriptionProject": self.settings.project,
                "CloudPubSubDeadLetterSourceDeliveryCount": str(message.delivery_attempt or 0),
                "CloudPubSubDeadLetterSourceTopicPublishTime":
                    _publish_time(message).isoformat(),
            }
            log.warning("dead-lettering message %s: %s: %s", message.message_id, reason, detail)
            futures.append((message, self._publisher.publish(topic, message.data, **attributes)))
        published = []
        for message, future in futures:
            try:
                future.result(timeout=30)
                published.append(message)
            except Exception as exc:  # noqa: BLE001 - stays on the subscription: nacked, retried later
                log.error("could not dead-letter %s (%s); it will be redelivered",
                          message.message_id, exc)
        return published

    # Maintenance ------------------------------------------------------------------------------
    def _maintain(self) -> None:
        import psutil

        me = psutil.Process()
        next_status = 0.0
        while not self._stop.wait(0.25):
            rss = me.memory_info().rss / 2**20
            with self._lock:
                self.report.peak_rss_mb = round(max(self.report.peak_rss_mb, rss), 1)
            if time.monotonic() >= next_status:
                self._write_status()
                next_status = time.monotonic() + self.options.heartbeat_seconds

    def _fold(self) -> None:
        """Every ``fold_seconds``, fold the pending entries of the rows this process wrote;
        every ``sweep_seconds`` (the first time 2 x fold_after after start: what a predecessor
        left goes early) every row with pending entries. A failed pass is tried again on the
        next one; entries wait, readers count them meanwhile."""
        assert self._store is not None
        sweep = self.options.sweep_seconds
        next_sweep = time.monotonic() + 2 * self.options.fold_after if sweep > 0 else None
        while not self._stop.wait(self.options.fold_seconds):
            everything = next_sweep is not None and time.monotonic() >= next_sweep
            if everything:  # also after a failed sweep: passes over what we wrote go on
                next_sweep = time.monotonic() + sweep
            try:
                report = self._store.fold(everything=everything)
            except Exception as exc:  # noqa: BLE001 - a maintenance pass: the next one retries
                log.warning("folding pending aggregate entries failed (retried in %.0f s): %s",
                            self.options.fold_seconds, exc)
                continue
            with self._lock:
                self.report.folded += report.folded_entries
                if everything:
                    self.report.leftovers_folded += report.folded_entries

    def _write_status(self, *, final: bool = False) -> None:
        """Bring the report up to date and, for the service, write the heartbeat file."""
        held = self._intake.max_held if self._intake is not None else None
        if held is not None:  # an intake that counts what it holds (`_on_messages`)
            with self._lock:
                self.report.max_in_flight = held
        if self.status_path is None:
            return
        subscribed = self._is_open()
        with self._lock:
            status = {"pid": os.getpid(), "updated_at": time.time(),
                      "subscribed": subscribed and not final, "stopped": final,
                      "in_flight": self._in_flight, **asdict(self.report)}
        tmp = self.status_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(status))
        os.replace(tmp, self.status_path)


def consume(settings: Settings, *, max_messages: int | None = None,
            idle_timeout: float | None = None,
            options: StreamingOptions | None = None) -> ConsumeReport:
    """Consume ``response-events`` into Bigtable (and the raw sink) from a flow or a script.

    Drain mode: returns after ``max_messages`` deliveries were finished (acked, nacked or
    dead-lettered) or after ``idle_timeout`` seconds without a message; with neither it runs
    until the process is stopped. Installs no signal handlers.
    """
    return Consumer(settings, options).run(max_messages=max_messages, idle_timeout=idle_timeout)


def serve(settings: Settings, options: StreamingOptions | None = None, *,
          child_of: int | None = None) -> ConsumeReport:
    """Run the consumer service until SIGTERM/SIGINT, with a heartbeat file for the probe, and
    ``options.processes - 1`` child consumer processes beside it (`pulse_local.streaming.pool`).
    ``child_of``: run as a child of that service process (no heartbeat file, no children of
    its own; stops when the service is gone)."""
    import signal

    from pulse_local.runtime import settle_garbage_collector
    from pulse_local.streaming.pool import ChildConsumers, stop_when_orphaned

    options = options or load_options(StreamingOptions)
    consumer = Consumer(settings, options,
                        status_path=None if child_of else status_path(settings))
    settle_garbage_collector()
    if child_of:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: consumer.stop())
        stop_when_orphaned(child_of, consumer.stop)
        return consumer.run()
    same_options = {f"PULSE_STREAMING_{name.upper()}": str(value)
                    for name, value in options.model_dump().items()
                    if isinstance(value, str | int | float)}  # bool is an int
    children = ChildConsumers(options.processes - 1, settings.state_dir / "logs",
                              env=same_options)

    def stop(*_: object) -> None:
        consumer.stop()
        children.terminate()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    if children.count:
        children.start()
    try:
        return consumer.run()
    finally:
        codes = children.stop()
        if any(code not in (0, None) for code in codes):
            log.warning("consumer children exited with %s", codes)
