"""The client library's streaming pulls as the consumer's intake (``intake=streaming``).

``streams`` streaming pulls (``SubscriberClient.subscribe``) with the library's flow control
and lease management; each message is handed over alone. When one stream ends with an error
they are all reopened, backing off from 0.5 s to 10 s while the error persists. The default
intake is unary ``Pull`` (`pulse_local.streaming.pull_intake`: why, see there).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("pulse_local.streaming")


class StreamingPullIntake:
    """Streaming pulls feeding ``on_messages`` one message per call, until ``stopped``."""

    #: The library's flow control bounds what is held; the consumer counts it.
    max_held: int | None = None

    def __init__(self, subscriber: Any, subscription_path: str,
                 on_messages: Callable[[list[Any]], None], *, streams: int, max_messages: int,
                 max_bytes: int, max_lease_extension: int, stopped: threading.Event,
                 on_error: Callable[[str], None] = lambda _: None,
                 on_open: Callable[[float], None] = lambda _: None) -> None:
        self.subscriber = subscriber
        self.path = subscription_path
        self.on_messages = on_messages
        self.streams = streams
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_lease_extension = max_lease_extension
        self.stopped = stopped
        self.on_error = on_error
        self.on_open = on_open
        self._subscribed = False
        self._opened_once = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the supervisor thread that keeps the streams open."""
        self._thread = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._thread.start()

    def stop_pulling(self) -> None:
        """Nothing to do: the streams stay open (they carry the leases) until ``stopped``;
        the consumer nacks what arrives meanwhile."""

    def close(self) -> None:
        """Wait for the supervisor (it ends once ``stopped`` is set)."""
        if self._thread is not None:
            self._thread.join(timeout=10)

    def settle(self, acks: Iterable[Any], nacks: Iterable[Any]) -> None:
        """Ack and nack message by message (the library batches the RPCs)."""
        for message in acks:
            message.ack()
        for message in nacks:
            message.nack()

    def is_open(self, *, ever: bool = False) -> bool:
        """Whether the streams are open now (or, with ``ever``, were once)."""
        return self._opened_once.is_set() if ever else self._subscribed

    def _on_message(self, message: Any) -> None:
        """Streaming-pull callback: ``on_messages`` for one message."""
        self.on_messages([message])

    def _flow_control(self) -> Any:
        from google.cloud import pubsub_v1

        return pubsub_v1.types.FlowControl(
            max_messages=self.max_messages,
            max_bytes=self.max_bytes,
            max_duration_per_lease_extension=self.max_lease_extension,
        )

    def _supervise(self) -> None:
        """Keep ``streams`` streaming pulls open; reopen them all after an error, backing off
        from 0.5 s to 10 s while the error persists."""
        path = self.path
        backoff = 0.5
        while not self.stopped.is_set():
            futures = [self.subscriber.subscribe(path, self._on_message,
                                                 flow_control=self._flow_control())
                       for _ in range(self.streams)]
            self._subscribed = True
            opened = time.monotonic()
            self.on_open(opened)  # idle time counts from when the streams are open
            self._opened_once.set()
            failure: BaseException | None = None
            while not self.stopped.is_set() and failure is None:
                for future in futures:
                    if future.done():
                        failure = future.exception() or RuntimeError("stream closed")
                        break
                self.stopped.wait(0.1)
            self._subscribed = False
            for future in futures:
                future.cancel()
            for future in futures:
                try:
                    future.result(timeout=10)
                except Exception as exc:  # noqa: BLE001 - the error that ended the stream, already recorded
                    log.debug("stream ended: %s", exc)
            if failure is None:
                return
            if time.monotonic() - opened > 30:
                backoff = 0.5
            message = (f"streaming pull on {path} failed: {failure}; reopening in {backoff:.1f} s"
                       " (if the subscription is missing, `pulse-local up` declares it)")
            log.warning(message)
            self.on_error(str(failure))
            self.stopped.wait(backoff)
            backoff = min(backoff * 2, 10.0)
