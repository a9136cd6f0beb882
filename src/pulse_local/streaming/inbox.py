"""Deliveries waiting for a writer, handed over a Pull at a time and taken a batch at a time.

A `queue.Queue` of single messages cost ~6 µs of CPU a message (a lock, a notify and often a
thread wake-up on each side); the consumer moves thousands a second on two cores, so the
intake puts a whole Pull's messages in one call and a writer takes a whole batch in one call.
Order is not kept across writers anyway: the events carry no ordering key.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """A thread-safe FIFO that is filled and emptied in chunks."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, items: list[T]) -> None:
        """Append ``items`` and wake the writers waiting for them."""
        if not items:
            return
        with self._changed:
            self._items.extend(items)
            self._changed.notify_all()

    def take(self, limit: int, first_wait: float, fill_wait: float) -> list[T]:
        """Up to ``limit`` items, oldest first. Waits up to ``first_wait`` s for the first one
        (returns ``[]`` if none came), then up to ``fill_wait`` s more for the batch to fill."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._items, first_wait):
                return []
            deadline = time.monotonic() + fill_wait
            while len(self._items) < limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            count = min(limit, len(self._items))  # another writer may have taken them all
            return [self._items.popleft() for _ in range(count)]

    def drain(self) -> list[T]:
        """Everything waiting, removed (at shutdown: to be nacked)."""
        with self._changed:
            items = list(self._items)
            self._items.clear()
            return items
