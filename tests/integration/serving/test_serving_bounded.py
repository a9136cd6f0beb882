"""An aggregates read costs what its date range implies, not the tenant's history."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.serving import ServingStore, aggregates
from pulse_local.serving.queries import dimension_values
from pulse_local.streaming.keys import Dimension
from pulse_local.streaming.quality import run_checks
from pulse_local.streaming.store import Delivered, EventStore
from pulse_local.streaming.testing import make_event

pytestmark = pytest.mark.integration
FIRST = datetime(2023, 1, 1, 12, tzinfo=UTC)
DAYS = 400


class CountingTable:
    """The real Bigtable table, counting the rows its reads return (a pass-through)."""

    def __init__(self, table: Any) -> None:
        self.table, self.rows, self.calls = table, 0, 0

    def read_rows(self, query: Any) -> Any:
        rows = self.table.read_rows(query)
        self.rows += len(rows)
        self.calls += 1
        return rows


@pytest.fixture(scope="module")
def history(pulse_stack: Any, pulse_settings: Settings) -> uuid.UUID:
    """A tenant with one event a day on each of two forms for 400 days, and a third form
    with one event on the first day only."""
    tenant, user = uuid.uuid4(), uuid.uuid4()
    events = [make_event(tenant, user, submitted_at=FIRST + timedelta(days=d), form_id=form)
              for d in range(DAYS) for form in ("form-a", "form-b")]
    events.append(make_event(tenant, user, submitted_at=FIRST, form_id="form-c"))
    store = EventStore.for_settings(pulse_settings)
    try:
        for i in range(0, len(events), 200):
            store.write([Delivered(e, f"b{i + j}", e.submitted_at, e.to_message(),
                                   run_checks(e, e.submitted_at))
                         for j, e in enumerate(events[i:i + 200])])
    finally:
        store.close()
    return tenant


@pytest.fixture()
def counted(pulse_stack: Any, pulse_settings: Settings) -> Any:
    store = ServingStore.for_settings(pulse_settings)
    store.aggregates = CountingTable(store.aggregates)  # type: ignore[assignment]
    yield store
    store.close()


def test_one_day_of_every_value_reads_a_handful_of_rows(history: uuid.UUID,
                                                        counted: Any) -> None:
    day = (FIRST + timedelta(days=200)).date()
    got = aggregates(counted, history, Dimension.FORM, start=day, end=day)
    assert [(b.value, b.bucket, b.counters.events) for b in got.buckets] == [
        ("form-a", day.isoformat(), 1), ("form-b", day.isoformat(), 1)]
    # three values found by skipping (one row each, then an empty read), two day rows
    assert counted.aggregates.rows == 3 + 2, counted.aggregates.rows
    assert counted.aggregates.calls == 4 + 1


def test_every_value_over_a_range_equals_the_value_by_value_answers(history: uuid.UUID,
                                                                    counted: Any) -> None:
    start, end = date(2023, 1, 1), date(2023, 1, 10)
    together = aggregates(counted, history, Dimension.FORM, start=start, end=end)
    one_by_one = [b for value in ("form-a", "form-b", "form-c")
                  for b in aggregates(counted, history, Dimension.FORM, start=start, end=end,
                                      value=value).buckets]
    assert together.buckets == one_by_one
    assert len(together.buckets) == 10 + 10 + 1
    assert dimension_values(counted, history, Dimension.FORM) == ["form-a", "form-b", "form-c"]
    assert dimension_values(counted, uuid.uuid4(), Dimension.FORM) == []
