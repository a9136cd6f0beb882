"""Serving API with authentication on: read latency over HTTP and the token's cost.

Starts a private Bigtable emulator and the serving service (`python -m pulse_local.serving`, on
free ports, a temporary state directory), seeds one tenant, then measures:

- token verification in process (PyJWT HS256 decode and the claim checks), µs per token;
- ``GET /v1/tenants/{t}/users/{u}/events?limit=20`` with a valid token, ms per request
  (target p95 <= 20 ms, as without authentication);
- the same request with a token of another key (401 before any read), ms per request: what
  authentication alone costs through HTTP.

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
        print(f"token verification (PyJWT HS256 + claims, in process): {per_token:.1f} µs "
              f"per request")
        print(f"serving GET recent events (limit=20) over HTTP with a token: p95 "
              f"{_p95(reads):.1f} ms, median {statistics.median(reads):.1f} ms (target p95 "
              f"<= 20 ms; statuses {sorted(ok)})")
        print(f"the same request refused at authentication (bad signature, no read): p95 "
              f"{_p95(refused):.1f} ms, median {statistics.median(refused):.1f} ms "
              f"(statuses {sorted(no)})")
    finally:
        stack.down()
        import shutil

        shutil.rmtree(settings.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
