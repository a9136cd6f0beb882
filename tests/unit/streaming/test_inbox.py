"""`Inbox`: chunked hand-over between pull threads and writers (real threads, no fakes)."""

from __future__ import annotations

import threading
import time

from pulse_local.streaming.inbox import Inbox


def test_take_waits_for_a_full_batch_then_returns_the_oldest_first() -> None:
    inbox: Inbox[int] = Inbox()
    inbox.put_many(list(range(3)))
    threading.Timer(0.05, inbox.put_many, args=[list(range(3, 10))]).start()
    assert inbox.take(5, first_wait=1.0, fill_wait=2.0) == [0, 1, 2, 3, 4]
    assert inbox.take(100, first_wait=1.0, fill_wait=0.0) == [5, 6, 7, 8, 9]
    assert len(inbox) == 0


def test_take_returns_a_partial_batch_after_the_fill_wait_and_nothing_when_idle() -> None:
    inbox: Inbox[str] = Inbox()
    began = time.monotonic()
    assert inbox.take(10, first_wait=0.05, fill_wait=30.0) == []
    inbox.put_many(["a", "b"])
    assert inbox.take(10, first_wait=30.0, fill_wait=0.05) == ["a", "b"]
    # neither wait ran to the 30 s bound (half of it leaves room for any loaded machine)
    assert time.monotonic() - began < 15.0


def test_concurrent_writers_take_every_item_exactly_once() -> None:
    inbox: Inbox[int] = Inbox()
    taken: list[list[int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set() or len(inbox):
            batch = inbox.take(50, first_wait=0.01, fill_wait=0.001)
            with lock:
                taken.append(batch)

    writers = [threading.Thread(target=writer) for _ in range(3)]
    for w in writers:
        w.start()
    for start in range(0, 20_000, 700):
        inbox.put_many(list(range(start, min(start + 700, 20_000))))
    stop.set()
    for w in writers:
        w.join(10)
    everything = [i for batch in taken for i in batch]
    assert sorted(everything) == list(range(20_000))
    assert max(len(batch) for batch in taken) <= 50


def test_drain_removes_everything_waiting() -> None:
    inbox: Inbox[int] = Inbox()
    inbox.put_many([1, 2, 3])
    inbox.put_many([])
    assert inbox.drain() == [1, 2, 3]
    assert inbox.take(1, first_wait=0.0, fill_wait=0.0) == []
