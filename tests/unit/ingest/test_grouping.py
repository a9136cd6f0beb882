"""Unit tests of `Grouper` (no sockets; the group call is a plain function standing in for an
archive append or a Publish call)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pulse_local.ingest.grouping import Grouper, Outcome


class _Gate:
    """A group call that blocks until released, recording the groups it saw."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[Outcome[int]]:
        self.groups.append(items)
        self.release.wait(5)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def test_items_handed_in_during_a_call_go_together_in_the_next() -> None:
    gate = _Gate()
    grouper: Grouper[int, int] = Grouper(gate)

    async def scenario() -> list[object]:
        first = asyncio.create_task(grouper.submit(0))
        await asyncio.sleep(0.05)  # the first call is now in flight, holding the gate
        rest = [asyncio.create_task(grouper.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        gate.release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert gate.groups == [[0], [1, 2, 3, 4, 5]]
    assert outcomes[0] == 0 and outcomes[2] == 20 and outcomes[4] == 40
    assert [str(o) for o in outcomes[1::2]] == ["odd 1", "odd 3", "odd 5"]  # per item, alone


def test_groups_are_capped_and_a_raising_call_fails_only_its_group() -> None:
    calls: list[list[int]] = []

    def call(items: list[int]) -> list[int]:
        calls.append(items)
        if 3 in items:
            raise OSError("disk full")
        return items

    grouper: Grouper[int, int] = Grouper(call, max_items=3)

    async def scenario() -> list[object]:
        tasks = [asyncio.create_task(grouper.submit(i)) for i in range(7)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert calls == [[0, 1, 2], [3, 4, 5], [6]]
    assert outcomes[:3] == [0, 1, 2] and outcomes[6] == 6
    assert all(isinstance(o, OSError) and str(o) == "disk full" for o in outcomes[3:6])


def test_a_call_returning_the_wrong_number_of_outcomes_is_an_error_for_each_item() -> None:
    grouper: Grouper[int, int] = Grouper(lambda items: [1])

    async def scenario() -> list[object]:
        tasks = [asyncio.create_task(grouper.submit(i)) for i in range(2)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, RuntimeError) and "1 outcomes for 2 items" in str(o)
               for o in outcomes)


def test_a_cancelled_waiter_leaves_the_others_their_results() -> None:
    gate = _Gate()
    grouper: Grouper[int, int] = Grouper(gate)

    async def scenario() -> tuple[bool, int]:
        gone = asyncio.create_task(grouper.submit(2))
        kept = asyncio.create_task(grouper.submit(4))
        await asyncio.sleep(0.05)
        gone.cancel()
        gate.release.set()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return gone.cancelled(), await kept

    assert asyncio.run(scenario()) == (True, 40)
    assert gate.groups == [[2, 4]]


def test_a_busy_grouper_lingers_so_that_later_items_join_the_group() -> None:
    """Pure asyncio, no fakes. After a call (busy), the next group waits `linger`: an item
    handed in during that wait goes in the same call."""
    groups: list[list[int]] = []
    grouper: Grouper[int, int] = Grouper(lambda items: groups.append(items) or items,
                                         linger=0.5, busy_window=60.0)

    async def scenario() -> None:
        await grouper.submit(0)  # first call: the grouper was idle
        first = asyncio.create_task(grouper.submit(1))
        await asyncio.sleep(0.05)  # well inside the linger
        await asyncio.gather(first, grouper.submit(2))

    asyncio.run(scenario())
    assert groups == [[0], [1, 2]]


def test_an_idle_grouper_does_not_linger() -> None:
    """With no call in the busy window the item is called at once: a 5 s linger would make
    the 2 s wait below time out."""
    groups: list[list[int]] = []
    grouper: Grouper[int, int] = Grouper(lambda items: groups.append(items) or items,
                                         linger=5.0, busy_window=0.0)

    async def scenario() -> list[int]:
        return [await asyncio.wait_for(grouper.submit(i), timeout=2) for i in range(2)]

    assert asyncio.run(scenario()) == [0, 1]
    assert groups == [[0], [1]]


def test_a_coroutine_call_runs_on_the_loop_and_two_groups_may_be_in_flight() -> None:
    """Pure asyncio, no fakes: with ``in_flight=2`` a second call starts while the first
    waits, and the items handed in meanwhile go together in the next call."""
    groups: list[list[int]] = []
    gate = asyncio.Event()

    async def call(items: list[int]) -> list[int]:
        groups.append(items)
        await gate.wait()
        return [i * 10 for i in items]

    grouper: Grouper[int, int] = Grouper(call, in_flight=2)

    async def scenario() -> list[int]:
        first = asyncio.create_task(grouper.submit(0))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(grouper.submit(1))
        await asyncio.sleep(0.01)
        rest = [asyncio.create_task(grouper.submit(i)) for i in (2, 3)]
        await asyncio.sleep(0.01)
        started = [list(g) for g in groups]
        gate.set()
        results = await asyncio.gather(first, second, *rest)
        assert started == [[0], [1]]  # two calls in flight, 2 and 3 waiting
        return results

    assert asyncio.run(scenario()) == [0, 10, 20, 30]
    assert groups == [[0], [1], [2, 3]]


def test_an_item_handed_in_as_the_last_call_ends_is_not_left_waiting() -> None:
    """Regression: a drain that just finished still counted as in flight until its done
    callback ran, so an item handed in at that moment (the waiter of the last call, woken
    first) started no call and waited for ever."""
    for in_flight in (1, 2):
        grouper: Grouper[int, int] = Grouper(lambda items: items, in_flight=in_flight)

        async def scenario(g: Grouper[int, int] = grouper) -> list[int]:
            first = await g.submit(0)
            async with asyncio.timeout(2):  # not wait_for: its new task would run too late
                return [first, await g.submit(1)]

        assert asyncio.run(scenario()) == [0, 1]
