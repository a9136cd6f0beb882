"""Replay fixture webhooks against a running processor, signed like Typeform signs them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pulse_local.config import Settings
from pulse_local.ingest.signature import webhook_headers
from pulse_local.source.seed import FixtureError, load_json


@dataclass
class ReplayResult:
    """Counts by HTTP status (0 = transport error) and latencies in seconds.

    ``latencies`` count from when each delivery was due (open loop) or sent (closed loop);
    ``send_delays`` (open loop only) say how late each was sent: when the client itself falls
    behind on a busy machine, its delay is part of the latency but not of the service's time.
    """

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    send_delays: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def percentile(self, p: float) -> float:
        """The `p`-th percentile latency (seconds); 0.0 when nothing was sent."""
        return _percentile(self.latencies, p)

    def send_delay_percentile(self, p: float) -> float:
        """The `p`-th percentile of how late deliveries were sent (seconds; 0.0 closed loop)."""
        return _percentile(self.send_delays, p)


def _percentile(values: list[float], p: float) -> float:
    """The `p`-th percentile of `values` (nearest rank); 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def webhook_file(directory: Path, slug: str) -> Path:
    """A tenant's file of fixture webhooks; `FixtureError` when it is missing."""
    path = Path(directory) / "webhooks" / f"{slug}.jsonl"
    if not path.is_file():
        raise FixtureError(f"{path} is missing: regenerate the fixtures")
    return path


def read_webhooks(path: Path) -> Iterator[bytes]:
    """The webhook bodies of a fixture file, one per non-empty line, in file order."""
    with path.open("rb") as fh:
        for line in fh:
            if body := line.rstrip(b"\r\n"):
                yield body


def load_deliveries(directory: Path) -> list[tuple[str, str, bytes]]:
    """(tenant slug, secret, body) of every fixture webhook, in file order per tenant."""
    directory = Path(directory)
    secrets = {o["slug"]: o["webhook_secret"] for o in load_json(directory, "organizations.json")}
    deliveries: list[tuple[str, str, bytes]] = []
    for slug, secret in secrets.items():
        deliveries += [(slug, secret, body)
                       for body in read_webhooks(webhook_file(directory, slug))]
    return deliveries


async def replay_async(base_url: str, deliveries: list[tuple[str, str, bytes]],
                       concurrency: int = 16, progress: bool = True,
                       timeout: float = 30.0, rate: float | None = None) -> ReplayResult:
    """POST every delivery to ``{base_url}/webhooks/typeform/{slug}`` with `concurrency` workers.

    Without `rate` each worker posts as soon as its last answer came back (closed loop). With
    `rate` (deliveries/s) delivery *i* is due at ``start + i / rate`` (open loop: a steady
    arrival rate, as from many independent senders) and its latency counts from when it was
    due, so time spent waiting for a free worker is not hidden.

    The client is aiohttp: on the two cores the processor, Postgres and the emulators share
    with it, a lighter client leaves more of the machine to what is being exercised (httpx
    cost about twice as much CPU per request here).
    """
    import aiohttp
    from rich.progress import Progress

    result = ReplayResult()
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    queue: asyncio.Queue[tuple[int, tuple[str, str, bytes]]] = asyncio.Queue()
    for item in enumerate(deliveries):
        queue.put_nowait(item)
    connector = aiohttp.TCPConnector(limit=max(1, concurrency))
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("replaying webhooks", total=len(deliveries))
        async with aiohttp.ClientSession(base_url, connector=connector,
                                         timeout=client_timeout) as client:

            async def worker() -> None:
                while not queue.empty():
                    index, (slug, secret, body) = queue.get_nowait()
                    started = time.perf_counter()
                    if rate is not None:
                        due = begun + index / rate
                        if due > started:
                            await asyncio.sleep(due - started)
                        result.send_delays.append(max(0.0, time.perf_counter() - due))
                        started = due
                    try:
                        async with client.post(
                                f"/webhooks/typeform/{slug}", data=body,
                                headers=webhook_headers(secret, body)) as response:
                            await response.read()
                            status = response.status
                    except (aiohttp.ClientError, TimeoutError):
                        status = 0
                    result.latencies.append(time.perf_counter() - started)
                    result.statuses[status] += 1
                    bar.advance(task)

            begun = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
            result.seconds = time.perf_counter() - begun
    return result


def replay(settings: Settings, directory: Path, concurrency: int = 16,
           progress: bool = True, rate: float | None = None) -> dict[int, int]:
    """Replay a fixture directory against the processor of `settings`; counts by status code.

    Status 0 counts transport errors (processor not running: start it with
    ``python -m pulse_local.ingest``).
    """
    base_url = f"http://{settings.host}:{settings.processor_port}"
    deliveries = load_deliveries(Path(directory))
    outcome = asyncio.run(replay_async(base_url, deliveries, concurrency, progress, rate=rate))
    return dict(sorted(outcome.statuses.items()))
