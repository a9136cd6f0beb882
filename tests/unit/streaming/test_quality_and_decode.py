"""Validation and quality checks (no sockets)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from pulse_local.streaming import keys
from pulse_local.streaming.decode import Invalid, decode
from pulse_local.streaming.keys import Dimension, Granularity
from pulse_local.streaming.layout import contributions
from pulse_local.streaming.quality import run_checks
from pulse_local.streaming.testing import make_event

T = uuid.uuid4()
NOW = datetime.now(UTC)


def test_a_clean_event_passes_every_check() -> None:
    event = make_event(T, uuid.uuid4(), submitted_at=NOW)
    result = run_checks(event, NOW)
    assert result.ok and result.status == "ok" and len(result.checks) == 4


def test_out_of_range_score_and_inconsistent_total_are_flagged() -> None:
    event = make_event(T, uuid.uuid4(), submitted_at=NOW, scores=(9.0,))
    result = run_checks(event, NOW)
    assert "scores_in_range" in result.failures
    bad_total = make_event(T, uuid.uuid4(), submitted_at=NOW).model_copy(
        update={"total_score": 99.0})
    assert "totals_consistent" in run_checks(bad_total, NOW).failures


def test_missing_user_and_future_timestamp_are_flagged() -> None:
    event = make_event(T, None, submitted_at=NOW + timedelta(hours=1))
    failures = run_checks(event, NOW).failures
    assert "user_id" in failures["required_fields"]
    assert "after the publish time" in failures["timestamp_sane"]
    old = make_event(T, uuid.uuid4(), submitted_at=datetime(2001, 1, 1, tzinfo=UTC))
    assert "before 2012" in run_checks(old, NOW).failures["timestamp_sane"]


def test_decode_roundtrip_and_reasons() -> None:
    event = make_event(T, uuid.uuid4())
    assert decode(event.to_message(), event.attributes()) == event
    assert decode(b"{oops", {}) == Invalid("not_json", decode(b"{oops", {}).detail)
    v2 = decode(event.to_message(), {**event.attributes(), "schema_version": "2"})
    assert isinstance(v2, Invalid) and v2.reason == "unsupported_schema_version"
    body = json.loads(event.to_message())
    body["schema_version"] = 3
    assert decode(json.dumps(body).encode(), {}).reason == "unsupported_schema_version"
    del body["schema_version"], body["form_id"]
    missing = decode(json.dumps(body).encode(), {})
    assert isinstance(missing, Invalid) and missing.reason == "schema_violation"
    assert "form_id" in missing.detail
    mismatch = decode(event.to_message(), {**event.attributes(), "tenant_id": str(uuid.uuid4())})
    assert isinstance(mismatch, Invalid) and mismatch.reason == "attribute_mismatch"


def test_contributions_cover_the_total_and_three_day_rows_with_their_hours() -> None:
    event = make_event(T, uuid.uuid4(), submitted_at=NOW, scores=(2.5, 4.0))
    rows = contributions(event, run_checks(event, NOW))
    counters = {"events": 1, "complete": 1, "scored": 1, "score_milli": 6500,
                "max_score_milli": 10000}
    hour = f"h{NOW.astimezone(UTC).hour:02d}."
    total = [k for k in rows if keys.parse_aggregate_key(k).granularity is Granularity.TOTAL]
    days = {keys.parse_aggregate_key(k).dimension: k for k in rows if k not in total}
    assert len(rows) == 4 and len(total) == 1
    assert set(days) == {Dimension.ALL, Dimension.FORM, Dimension.ASSESSMENT}
    assert rows[total[0]] == counters
    for key in days.values():
        assert keys.parse_aggregate_key(key).bucket == NOW.astimezone(UTC).date().isoformat()
        assert rows[key] == {**counters, **{hour + c: n for c, n in counters.items()}}
