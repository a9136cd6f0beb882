"""Serving: tenant-scoped reads of the Bigtable event store, as functions and a FastAPI app.

    from pulse_local.serving import ServingStore, recent_events
    store = ServingStore.for_settings(settings)
    page = recent_events(store, tenant_id, user_id, limit=20)
"""

from __future__ import annotations

from pulse_local.config import Settings
from pulse_local.serving.queries import (
    ServingStore,
    aggregates,
    live_counters,
    recent_events,
)


def serving_ready(settings: Settings, timeout: float = 2.0) -> None:
    """Probe for the stack: ``GET /healthz`` answers 200."""
    import httpx

    from pulse_local.errors import ServiceUnavailable

    url = f"http://{settings.host}:{settings.serving_port}/healthz"
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.TransportError as exc:
        raise ServiceUnavailable(f"serving API at {url} does not answer ({exc}): start it with "
                                 "`python -m pulse_local.serving`") from None
    if response.status_code != 200:
        raise ServiceUnavailable(f"serving API unhealthy: {response.status_code} {response.text}")


__all__ = ["ServingStore", "aggregates", "live_counters", "recent_events", "serving_ready"]
