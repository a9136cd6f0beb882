"""Unit tests of `replay_async` against a tiny in-process aiohttp server (not the processor)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from pulse_local.source.replay import ReplayResult, replay_async


async def _serve(handler_delay: float, arrivals: list[float]) -> tuple[web.AppRunner, str]:
    async def webhook(request: web.Request) -> web.Response:
        arrivals.append(time.perf_counter())
        await request.read()
        await asyncio.sleep(handler_delay)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/webhooks/typeform/{slug}", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def test_a_rate_spaces_the_deliveries_and_latency_counts_from_when_each_was_due() -> None:
    deliveries = [("tenant-0001", "secret-secret-123", b'{"n": %d}' % i) for i in range(11)]

    async def scenario() -> ReplayResult:
        arrivals: list[float] = []
        runner, url = await _serve(0.05, arrivals)
        try:
            # 1 worker, a handler taking 50 ms and 100 deliveries/s offered: each delivery
            # waits for the previous one, so latencies from the due time must grow
            return await replay_async(url, deliveries, concurrency=1, progress=False,
                                      rate=100.0)
        finally:
            await runner.cleanup()

    result = asyncio.run(scenario())
    assert dict(result.statuses) == {200: 11}
    latencies, delays = result.latencies, result.send_delays
    assert latencies[-1] > latencies[0] + 0.3  # 10 x (50 ms served - 10 ms spacing) queued
    # the client was the one holding them back: sent late by all but the service time
    assert len(delays) == 11 and delays[-1] > 0.3
    # each latency is its send delay plus at least the 50 ms service time (no upper bound:
    # a loaded machine may add any amount, and timing is for `make bench`)
    assert all(lat - late > 0.04 for lat, late in zip(latencies, delays, strict=True))
    assert result.send_delay_percentile(100) == max(delays)


def test_without_a_backlog_deliveries_arrive_no_faster_than_the_rate() -> None:
    deliveries = [("tenant-0001", "secret-secret-123", b"{}")] * 11

    async def scenario() -> list[float]:
        arrivals: list[float] = []
        runner, url = await _serve(0.0, arrivals)
        try:
            await replay_async(url, deliveries, concurrency=4, progress=False, rate=50.0)
        finally:
            await runner.cleanup()
        return arrivals

    arrivals = asyncio.run(scenario())
    assert len(arrivals) == 11
    assert arrivals[-1] - arrivals[0] >= 10 / 50.0 - 0.01  # 10 gaps of 20 ms


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        asyncio.run(replay_async("http://127.0.0.1:9", [("t", "s", b"{}")], rate=0.0,
                                 progress=False))
