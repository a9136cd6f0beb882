"""Typed responses of the serving API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from pulse_local.events import ResponseEvent


class EventView(BaseModel):
    """One stored event, as the serving API returns it."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    submitted_at: datetime
    quality_status: str
    quality_failures: dict[str, str]
    message_id: str
    event: ResponseEvent


class RecentEvents(BaseModel):
    """A user's events, newest first."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    events: list[EventView]


class Counters(BaseModel):
    """The counters of one aggregate row (scores as sums, in points)."""

    events: int = 0
    complete: int = 0
    scored: int = 0
    flagged: int = 0
    score_sum: float = 0.0
    max_score_sum: float = 0.0

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None


class AggregateBucket(BaseModel):
    """Counters of one dimension value in one time bucket."""

    dimension: str
    value: str
    granularity: str
    bucket: str
    counters: Counters


class Aggregates(BaseModel):
    """Aggregates of a tenant by dimension over a date range, ordered by value then bucket."""

    tenant_id: uuid.UUID
    dimension: str
    buckets: list[AggregateBucket]


class LiveCounters(BaseModel):
    """A tenant's counters: all time, today and this hour (UTC)."""

    tenant_id: uuid.UUID
    as_of: datetime
    total: Counters
    today: Counters
    this_hour: Counters


class Health(BaseModel):
    status: str
    bigtable: str
