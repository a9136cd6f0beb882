"""Serving: tenant-scoped reads of the Bigtable event store, as functions and a FastAPI app.

    from pulse_local.serving import ServingStore, recent_events
    store = ServingStore.for_settings(settings)
    page = recent_events(store, tenant_id, user_id, limit=20)
"""

from __future__ import annotations

from pulse_local.serving.queries import (
    ServingStore,
    aggregates,
    live_counters,
    recent_events,
)

__all__ = ["ServingStore", "aggregates", "live_counters", "recent_events"]
