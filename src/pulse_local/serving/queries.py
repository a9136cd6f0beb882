"""Tenant-scoped reads of the Bigtable event store (library functions the API wraps).

Every read is a key range built by `pulse_local.streaming.keys` from a tenant id (a UUID, so
it cannot contain the separator): a tenant can only ever reach rows under ``{tenant}#``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

from pulse_local.config import Settings
from pulse_local.events import ResponseEvent
from pulse_local.serving.models import (
    AggregateBucket,
    Aggregates,
    Counters,
    EventView,
    LiveCounters,
    RecentEvents,
)
from pulse_local.streaming import keys
from pulse_local.streaming.keys import Dimension, Granularity
from pulse_local.streaming.layout import (
    AGGREGATE_TABLE,
    COUNTER_QUALIFIER_REGEX,
    FACT_TABLE,
    PENDING,
    hours_in,
    read_counters,
    row_counters,
)

if TYPE_CHECKING:
    from google.cloud.bigtable.data import BigtableDataClient, ReadRowsQuery, Row, Table
    from google.cloud.bigtable.data.row_filters import RowFilter

#: Largest page of events one call returns.
MAX_LIMIT = 1000
#: Widest date range of one aggregates call.
MAX_DAYS = 366


#: Seconds one read may take, its retries included (the client's default is 600: with
#: Bigtable down a request, ``/healthz`` included, hung that long), and one attempt of it.
READ_TIMEOUT = 3.0
READ_ATTEMPT_TIMEOUT = 1.5


class BigtableUnavailable(HTTPException):
    """Bigtable did not answer a read within `READ_TIMEOUT`: 503 with the cause (an
    HTTPException, so every route answers it without a handler of its own)."""

    def __init__(self, cause: str) -> None:
        super().__init__(503, f"Bigtable unavailable: {cause}"[:500],
                         headers={"Retry-After": "5"})


class BoundedTable:
    """A table whose reads give up after `READ_TIMEOUT` with `BigtableUnavailable`."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def read_rows(self, query: ReadRowsQuery) -> list[Row]:
        from google.api_core.exceptions import GoogleAPIError

        try:
            return self.table.read_rows(query, operation_timeout=READ_TIMEOUT,
                                        attempt_timeout=READ_ATTEMPT_TIMEOUT)
        except GoogleAPIError as exc:
            raise BigtableUnavailable(f"{type(exc).__name__}: {exc}") from exc


class ServingStore:
    """The two tables the serving layer reads, on one data client."""

    def __init__(self, client: BigtableDataClient, instance: str) -> None:
        self.client = client
        self.facts = BoundedTable(client.get_table(instance, FACT_TABLE))
        self.aggregates = BoundedTable(client.get_table(instance, AGGREGATE_TABLE))

    @classmethod
    def for_settings(cls, settings: Settings) -> ServingStore:
        from pulse_local.streaming.layout import bigtable_data_client

        return cls(bigtable_data_client(settings), settings.bigtable_instance)

    def close(self) -> None:
        self.client.close()


def _event_view(row: Row) -> EventView:
    cells = {(c.family, c.qualifier): c.value for c in row.cells}
    parsed = keys.parse_fact_key(row.row_key)
    return EventView(
        event_id=parsed.event_id,
        submitted_at=parsed.timestamp,
        quality_status=cells.get(("quality", b"status"), b"unknown").decode(),
        quality_failures=json.loads(cells.get(("quality", b"failures"), b"{}")),
        message_id=cells.get(("meta", b"message_id"), b"").decode(),
        event=ResponseEvent.from_message(cells[("event", b"json")]),
    )


def recent_events(store: ServingStore, tenant_id: uuid.UUID, user_id: uuid.UUID | None, *,
                  start: datetime | None = None, end: datetime | None = None,
                  limit: int = 50) -> RecentEvents:
    """A user's events with ``start <= submitted_at < end``, newest first, at most ``limit``."""
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange
    from google.cloud.bigtable.data import row_filters as rf

    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}, got {limit}")
    if start and end and start >= end:
        raise ValueError(f"start {start.isoformat()} must be before end {end.isoformat()}")
    low, high = keys.fact_range(tenant_id, user_id, start, end)
    query = ReadRowsQuery(row_ranges=RowRange(start_key=low, end_key=high or None), limit=limit,
                          row_filter=rf.CellsColumnLimitFilter(1))
    rows = store.facts.read_rows(query)
    return RecentEvents(tenant_id=tenant_id, user_id=user_id,
                        events=[_event_view(r) for r in rows])


def _counters(row: Row | None, hour: int | None = None, *,
              columns: dict[str, int] | None = None) -> Counters:
    if row is None:
        return Counters()
    raw = read_counters(row, hour, columns=columns)
    return Counters(events=raw["events"], complete=raw["complete"], scored=raw["scored"],
                    flagged=raw["flagged"], score_sum=raw["score_milli"] / 1000,
                    max_score_sum=raw["max_score_milli"] / 1000)


def _counter_filter() -> RowFilter:
    """The counter columns of aggregate rows and their pending entries (newest cells)."""
    from google.cloud.bigtable.data import row_filters as rf

    counters = rf.RowFilterChain([rf.FamilyNameRegexFilter("counts"),
                                  rf.ColumnQualifierRegexFilter(COUNTER_QUALIFIER_REGEX)])
    return rf.RowFilterChain([rf.RowFilterUnion([counters, rf.FamilyNameRegexFilter(PENDING)]),
                              rf.CellsColumnLimitFilter(1)])


def aggregates(store: ServingStore, tenant_id: uuid.UUID, dimension: Dimension, *,
               start: date, end: date, value: str | None = None,
               granularity: Granularity = Granularity.DAY) -> Aggregates:
    """Counters of ``dimension`` (one ``value`` or all of them) per day or hour, for the days
    ``start..end`` inclusive. Both come from the day rows (hours are their ``hHH.`` columns);
    hours without events have no bucket."""
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange

    if granularity is Granularity.TOTAL:
        raise ValueError("granularity must be day or hour (the total is in live counters)")
    if end < start or (end - start).days >= MAX_DAYS:
        raise ValueError(f"need start <= end within {MAX_DAYS} days, got {start}..{end}")
    first, last = start.isoformat(), (end + timedelta(days=1)).isoformat()
    values = [value] if value is not None else dimension_values(store, tenant_id, dimension)
    if not values:
        return Aggregates(tenant_id=tenant_id, dimension=dimension.value, buckets=[])
    # one range per value, each holding only the requested days: the read costs what the
    # date range implies, not the tenant's history
    ranges = []
    for one in values:
        prefix = keys.aggregate_prefix(tenant_id, dimension, one, Granularity.DAY)
        ranges.append(RowRange(start_key=prefix + first.encode(),
                               end_key=prefix + last.encode()))
    rows = store.aggregates.read_rows(ReadRowsQuery(row_ranges=ranges,
                                                    row_filter=_counter_filter()))
    buckets = []
    name = granularity.name.lower()
    for row in rows:
        parsed = keys.parse_aggregate_key(row.row_key)
        if parsed.granularity is not Granularity.DAY or not first <= parsed.bucket < last:
            continue
        columns = row_counters(row)
        periods: list[tuple[str, int | None]] = (
            [(parsed.bucket, None)] if granularity is Granularity.DAY
            else [(f"{parsed.bucket}T{hour:02d}", hour)
                  for hour in hours_in(row, columns=columns)])
        buckets += [AggregateBucket(dimension=dimension.value, value=parsed.value,
                                    granularity=name, bucket=label,
                                    counters=_counters(row, hour, columns=columns))
                    for label, hour in periods]
    return Aggregates(tenant_id=tenant_id, dimension=dimension.value, buckets=buckets)


def dimension_values(store: ServingStore, tenant_id: uuid.UUID,
                     dimension: Dimension) -> list[str]:
    """The values a tenant has aggregates for in ``dimension``, by skipping from one value's
    rows to the next: one single-row read (key only) per value, whatever the history."""
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange
    from google.cloud.bigtable.data import row_filters as rf

    start = keys.aggregate_prefix(tenant_id, dimension)
    end = keys.prefix_end(start)
    key_only = rf.RowFilterChain([rf.CellsRowLimitFilter(1), rf.StripValueTransformerFilter(True)])
    values: list[str] = []
    while True:
        rows = store.aggregates.read_rows(ReadRowsQuery(
            row_ranges=RowRange(start_key=start, end_key=end), limit=1, row_filter=key_only))
        if not rows:
            return values
        found = keys.parse_aggregate_key(rows[0].row_key).value
        values.append(found)
        start = keys.prefix_end(keys.aggregate_prefix(tenant_id, dimension, found))


def live_counters(store: ServingStore, tenant_id: uuid.UUID,
                  now: datetime | None = None) -> LiveCounters:
    """The tenant's all-time, today's and this hour's counters (one read of two rows: the
    all-time row, and today's row with its hourly columns)."""
    from google.cloud.bigtable.data import ReadRowsQuery

    now = (now or datetime.now(UTC)).astimezone(UTC)
    total = keys.aggregate_key(tenant_id, Dimension.ALL, keys.ALL_VALUE, Granularity.TOTAL,
                               keys.TOTAL_BUCKET)
    today = keys.aggregate_key(tenant_id, Dimension.ALL, keys.ALL_VALUE, Granularity.DAY,
                               keys.bucket(now, Granularity.DAY))
    rows = {r.row_key: r for r in store.aggregates.read_rows(
        ReadRowsQuery(row_keys=[total, today], row_filter=_counter_filter()))}
    day = rows.get(today)
    columns = row_counters(day) if day is not None else None
    return LiveCounters(tenant_id=tenant_id, as_of=now, total=_counters(rows.get(total)),
                        today=_counters(day, columns=columns),
                        this_hour=_counters(day, now.hour, columns=columns))
