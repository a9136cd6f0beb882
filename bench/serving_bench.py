"""Serving API with authentication on: read latency over HTTP and the token's cost.

Starts a private Bigtable emulator and the serving service (`python -m pulse_local.serving`, on
free ports, a temporary state directory), seeds one tenant, then measures:

- token verification in process (PyJWT HS256 decode and the claim checks), µs per token;
- ``GET /v1/tenants/{t}/users/{u}/events?limit=20`` with a valid token, ms per request
  (target p95 <= 20 ms, as without authentication);
- the same request with a token of another key (401 before any read), ms per request: what
  authentication alone costs through HTTP;
- a one-day ``aggregates`` of every form over five years of daily history, and of one form
  (the read is bounded by its date range either way).

Figures are printed; the bench never fails on a number.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from typing import Any


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def verification_us(settings: Any, rounds: int = 20_000) -> float:
    """µs per `LocalTokenVerifier.verify` of a fresh tenant token."""
    from pulse_local.serving.auth import LocalTokenVerifier, issue_local_token, signing_key

    key = signing_key(settings)
    token = issue_local_token(key, tenant_id=uuid.uuid4())
    verifier = LocalTokenVerifier(key)
    started = time.perf_counter()
    for _ in range(rounds):
        verifier.verify(token)
    return (time.perf_counter() - started) / rounds * 1e6


def seed(settings: Any, events: int = 5000, users: int = 100) -> tuple[uuid.UUID, list[Any]]:
    """One tenant's events in Bigtable; returns the tenant and its users."""
    from pulse_local.streaming.quality import run_checks
    from pulse_local.streaming.store import Delivered, EventStore
    from pulse_local.streaming.testing import event_stream

    tenant = uuid.uuid4()
    stream = event_stream(events, tenant, users=users)
    writer = EventStore.for_settings(settings)
    try:
        for i in range(0, len(stream), 500):
            writer.write([Delivered(e, str(j), e.submitted_at, e.to_message(),
                                    run_checks(e, e.submitted_at))
                          for j, e in enumerate(stream[i:i + 500])])
    finally:
        writer.close()
    return tenant, sorted({e.user_id for e in stream}, key=str)


def http_reads(base: str, tenant: uuid.UUID, users: list[Any], token: str,
               requests: int = 500) -> tuple[list[float], set[int]]:
    """ms per GET of a random user's 20 latest events; the statuses seen."""
    import random

    import httpx

    rng, out, statuses = random.Random(1), [], set()
    with httpx.Client(base_url=base, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(requests):
            user = rng.choice(users)
            started = time.perf_counter()
            response = client.get(f"/v1/tenants/{tenant}/users/{user}/events",
                                  params={"limit": 20})
            out.append((time.perf_counter() - started) * 1000)
            statuses.add(response.status_code)
    return out, statuses


def aggregates_one_day(settings: Any, years: int = 5, forms: int = 3,
                       rounds: int = 50) -> tuple[float, float]:
    """Median ms of a one-day aggregates read of every form, and of one form, over ``years``
    of daily events on ``forms`` forms."""
    from datetime import UTC, datetime, timedelta

    from pulse_local.serving import ServingStore, aggregates
    from pulse_local.streaming.keys import Dimension
    from pulse_local.streaming.quality import run_checks
    from pulse_local.streaming.store import Delivered, EventStore
    from pulse_local.streaming.testing import make_event

    tenant, user = uuid.uuid4(), uuid.uuid4()
    first = datetime(2020, 1, 1, 12, tzinfo=UTC)
    events = [make_event(tenant, user, submitted_at=first + timedelta(days=d),
                         form_id=f"form-{f}") for d in range(365 * years) for f in range(forms)]
    writer = EventStore.for_settings(settings)
    try:
        for i in range(0, len(events), 500):
            writer.write([Delivered(e, f"a{i + j}", e.submitted_at, e.to_message(),
                                    run_checks(e, e.submitted_at))
                          for j, e in enumerate(events[i:i + 500])])
    finally:
        writer.close()
    day = (first + timedelta(days=365 * years // 2)).date()
    store = ServingStore.for_settings(settings)
    try:
        timings: dict[str | None, list[float]] = {None: [], "form-0": []}
        for _ in range(rounds):
            for value, out in timings.items():
                started = time.perf_counter()
                aggregates(store, tenant, Dimension.FORM, start=day, end=day, value=value)
                out.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
    return statistics.median(timings[None]), statistics.median(timings["form-0"])


def main() -> None:
    """Start Bigtable and the serving service, measure, print."""
    from pulse_local.serving.auth import issue_local_token, signing_key
    from pulse_local.stack.native import NativeStack
    from pulse_local.stack.services import native_services, service_env
    from pulse_local.testing.plugin import make_test_settings

    settings = make_test_settings()
    specs = [s for s in native_services(settings) if s.name in ("bigtable", "serving")]
    stack = NativeStack(settings, specs)
    stack.up()
    os.environ.update(service_env(settings))
    try:
        per_token = verification_us(settings)
        tenant, users = seed(settings)
        base = f"http://{settings.host}:{settings.serving_port}"
        good = issue_local_token(signing_key(settings), tenant_id=tenant, ttl_seconds=3600)
        forged = issue_local_token(os.urandom(32), tenant_id=tenant, ttl_seconds=3600)
        http_reads(base, tenant, users, good, requests=50)  # warm up
        reads, ok = http_reads(base, tenant, users, good)
        refused, no = http_reads(base, tenant, users, forged)
        every, one = aggregates_one_day(settings)
        print(f"token verification (PyJWT HS256 + claims, in process): {per_token:.1f} µs "
              f"per request")
        print(f"serving GET recent events (limit=20) over HTTP with a token: p95 "
              f"{_p95(reads):.1f} ms, median {statistics.median(reads):.1f} ms (target p95 "
              f"<= 20 ms; statuses {sorted(ok)})")
        print(f"the same request refused at authentication (bad signature, no read): p95 "
              f"{_p95(refused):.1f} ms, median {statistics.median(refused):.1f} ms "
              f"(statuses {sorted(no)})")
        print(f"aggregates of one day over 5 years of daily events (3 forms): every form "
              f"{every:.1f} ms, one form {one:.1f} ms (medians of 50)")
    finally:
        stack.down()
        import shutil

        shutil.rmtree(settings.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
