"""How the consumer takes messages from its subscription: one interface, two ways.

`Intake` is what the consumer uses; `open_intake` builds the one ``options.intake`` names:

* ``pull`` (the default): `pulse_local.streaming.pull_intake.PullIntake`, unary ``Pull`` with
  our own leases, flow control and batched acks (why not streaming pull: see that module);
* ``streaming``: `pulse_local.streaming.streaming_intake.StreamingPullIntake`, the client
  library's streaming pulls, reopened after an error.

Either way the intake hands deliveries to ``on_messages`` (the consumer's queue) and the
consumer's writers settle them through `Intake.settle`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, assert_never

from pulse_local.streaming.options import StreamingOptions, declared_ack_deadline


class Intake(Protocol):
    """A source of deliveries for the consumer, started once and closed once."""

    def start(self) -> None:
        """Begin handing deliveries to ``on_messages`` (daemon threads)."""

    def stop_pulling(self) -> None:
        """Take no new messages; those in hand can still be settled."""

    def close(self) -> None:
        """Stop everything and wait for the intake's threads."""

    def settle(self, acks: Iterable[Any], nacks: Iterable[Any]) -> None:
        """Ack ``acks`` and nack ``nacks`` (deliveries this intake handed over)."""

    def is_open(self, *, ever: bool = False) -> bool:
        """Whether Pub/Sub answers now (or, with ``ever``, answered once since `start`)."""

    @property
    def max_held(self) -> int | None:
        """Most messages held at once, when the intake counts them (None: the consumer does)."""


def open_intake(options: StreamingOptions, subscriber: Any, subscription_path: str,
                on_messages: Callable[[list[Any]], None], *, on_error: Callable[[str], None],
                on_open: Callable[[float], None], stopped: threading.Event) -> Intake:
    """The intake ``options.intake`` names on ``subscription_path``. ``on_error`` is told of
    every failed call to Pub/Sub; ``on_open`` (streaming) when streams opened, with the
    monotonic time; ``stopped`` (streaming) ends the streams when set."""
    match options.intake:
        case "pull":
            from pulse_local.streaming.pull_intake import PullIntake

            return PullIntake(subscriber, subscription_path, on_messages,
                              pullers=options.streams,
                              capacity=options.streams * options.max_messages,
                              max_bytes=options.streams * options.max_bytes,
                              lease_seconds=options.lease_seconds,
                              subscription_deadline=declared_ack_deadline(options.subscription),
                              on_error=on_error)
        case "streaming":
            from pulse_local.streaming.streaming_intake import StreamingPullIntake

            return StreamingPullIntake(subscriber, subscription_path, on_messages,
                                       streams=options.streams,
                                       max_messages=options.max_messages,
                                       max_bytes=options.max_bytes,
                                       max_lease_extension=options.max_lease_extension,
                                       stopped=stopped, on_error=on_error, on_open=on_open)
    assert_never(options.intake)
