"""The serving API on the session's Bigtable emulator: tenant isolation, order, limits, ranges."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pulse_local.config import Settings
from pulse_local.serving.app import create_app
from pulse_local.streaming.quality import run_checks
from pulse_local.streaming.store import Delivered, EventStore
from pulse_local.streaming.testing import make_event

pytestmark = pytest.mark.integration
BASE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(pulse_stack: Any, pulse_settings: Settings) -> dict[str, Any]:
    """Two tenants; tenant A's user has 30 events one minute apart from BASE."""
    a, b, user, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events = [make_event(a, user, submitted_at=BASE + timedelta(minutes=i),
                         form_id="form-x" if i % 2 else "form-y") for i in range(30)]
    events.append(make_event(b, user, submitted_at=BASE, form_id="form-x"))
    events.append(make_event(a, other, submitted_at=BASE, form_id="form-x"))
    store = EventStore.for_settings(pulse_settings)
    try:
        result = store.write([Delivered(e, str(i), e.submitted_at, e.to_message(),
                                        run_checks(e, e.submitted_at))
                              for i, e in enumerate(events)])
    finally:
        store.close()
    assert len(result.written) == 32
    return {"a": a, "b": b, "user": user, "events": events}


@pytest.fixture(scope="module")
def client(pulse_stack: Any, pulse_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(pulse_settings)) as test_client:
        yield test_client


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "bigtable": "ok"}


def test_recent_events_newest_first_with_limit(client: TestClient, seeded: dict[str, Any],
                                               serving_headers: Any) -> None:
    url = f"/v1/tenants/{seeded['a']}/users/{seeded['user']}/events"
    body = client.get(url, params={"limit": 5}, headers=serving_headers(seeded["a"])).json()
    got = [e["submitted_at"] for e in body["events"]]
    assert len(got) == 5
    assert got == sorted(got, reverse=True)
    assert datetime.fromisoformat(got[0]) == BASE + timedelta(minutes=29)
    assert body["events"][0]["event"]["tenant_id"] == str(seeded["a"])


def test_time_range_is_start_inclusive_end_exclusive(client: TestClient,
                                                     seeded: dict[str, Any],
                                                     serving_headers: Any) -> None:
    url = f"/v1/tenants/{seeded['a']}/users/{seeded['user']}/events"
    auth = serving_headers(seeded["a"])
    start, end = BASE + timedelta(minutes=10), BASE + timedelta(minutes=20)
    body = client.get(url, params={"start": start.isoformat(), "end": end.isoformat(),
                                   "limit": 100}, headers=auth).json()
    times = [datetime.fromisoformat(e["submitted_at"]) for e in body["events"]]
    assert times == [BASE + timedelta(minutes=m) for m in range(19, 9, -1)]
    assert client.get(url, params={"start": "2024-05-01T10:00:00"},
                      headers=auth).status_code == 422
    assert client.get(url, params={"limit": 0}, headers=auth).status_code == 422


def test_a_tenant_cannot_read_another_tenants_rows(client: TestClient,
                                                   seeded: dict[str, Any],
                                                   serving_headers: Any) -> None:
    a, b, user = seeded["a"], seeded["b"], seeded["user"]
    as_b = client.get(f"/v1/tenants/{b}/users/{user}/events", params={"limit": 100},
                      headers=serving_headers(b)).json()
    assert [e["event"]["tenant_id"] for e in as_b["events"]] == [str(b)]
    refused = client.get(f"/v1/tenants/{a}/counters",
                         headers={"X-Tenant-Id": str(b), **serving_headers(a)})
    assert refused.status_code == 403
    operator = serving_headers(operator=True)
    assert client.get(f"/v1/tenants/{a}%23/counters", headers=operator).status_code == 422
    assert client.get(f"/v1/tenants/{a}%23/counters",
                      headers=serving_headers(a)).status_code == 403
    stranger = uuid.uuid4()
    empty = client.get(f"/v1/tenants/{stranger}/aggregates/form",
                       params={"start": "2024-05-01", "end": "2024-05-01"},
                       headers=serving_headers(stranger)).json()
    assert empty["buckets"] == []
    assert client.get(f"/v1/tenants/{b}/counters",
                      headers=serving_headers(b)).json()["total"]["events"] == 1


def test_aggregates_by_dimension_and_date_range(client: TestClient,
                                                seeded: dict[str, Any],
                                                serving_headers: Any) -> None:
    a = seeded["a"]
    auth = serving_headers(a)
    body = client.get(f"/v1/tenants/{a}/aggregates/form",
                      params={"start": "2024-05-01", "end": "2024-05-01"}, headers=auth).json()
    by_value = {x["value"]: x["counters"]["events"] for x in body["buckets"]}
    assert by_value == {"form-x": 16, "form-y": 15}
    hourly = client.get(f"/v1/tenants/{a}/aggregates/form",
                        params={"start": "2024-05-01", "end": "2024-05-01", "value": "form-x",
                                "granularity": "hour"}, headers=auth).json()
    assert [(x["bucket"], x["counters"]["events"]) for x in hourly["buckets"]] == [
        ("2024-05-01T10", 16)]
    none = client.get(f"/v1/tenants/{a}/aggregates/form",
                      params={"start": "2024-05-02", "end": "2024-05-03"}, headers=auth).json()
    assert none["buckets"] == []
    total = client.get(f"/v1/tenants/{a}/counters", headers=auth).json()["total"]
    assert total["events"] == 31
    assert total["score_sum"] == pytest.approx(31 * 7.0)
