"""The intake's bounds: the submitted_at window (inside what Bigtable keys can hold) and the
nesting depth of free-form answer values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pulse_local.ingest.models import (
    MAX_VALUE_DEPTH,
    SUBMITTED_AT_MAX,
    SUBMITTED_AT_MIN,
    PayloadError,
    json_depth,
    validate_payload,
)
from pulse_local.streaming import keys


def _payload(submitted_at: str, answer: dict[str, Any] | None = None) -> dict[str, Any]:
    field = {"id": "f1", "ref": "q1", "type": "opinion_scale"}
    return {"event_id": "e1", "event_type": "form_response", "form_response": {
        "form_id": "F", "token": "t", "submitted_at": submitted_at,
        "answers": [answer or {"type": "number", "number": 3, "field": field}]}}


def test_the_window_lies_inside_what_the_consumer_can_key() -> None:
    for edge in (SUBMITTED_AT_MIN, SUBMITTED_AT_MAX - timedelta(milliseconds=1)):
        assert keys.from_reversed_component(keys.reversed_component(edge)) == edge


@pytest.mark.parametrize("when", ["2300-01-01T00:00:00Z", "1900-01-01T00:00:00Z",
                                  "1999-12-31T23:59:59.999Z", "2100-01-01T00:00:00Z"])
def test_outside_the_window_is_422_on_submitted_at(when: str) -> None:
    with pytest.raises(PayloadError) as caught:
        validate_payload(_payload(when))
    assert caught.value.status == 422
    assert caught.value.message.startswith("form_response.submitted_at")


def test_the_edges_inside_are_accepted() -> None:
    for when in ("2000-01-01T00:00:00Z", "2099-12-31T23:59:59.999Z"):
        assert validate_payload(_payload(when)).form_response.submitted_at.year in (2000, 2099)


def test_json_depth() -> None:
    assert [json_depth(v) for v in (1, [], {}, [1], {"a": [1, {"b": 2}]}, [[[]]])] == \
        [0, 1, 1, 1, 3, 3]


def test_a_payment_value_nested_too_deep_is_422() -> None:
    value: Any = {"amount": "1"}
    for _ in range(MAX_VALUE_DEPTH):
        value = {"inner": value}
    field = {"id": "f1", "ref": "q1", "type": "payment"}
    with pytest.raises(PayloadError, match="form_response.answers.0.payment"):
        validate_payload(_payload("2024-01-01T00:00:00Z",
                                  {"type": "payment", "payment": value, "field": field}))
    shallow = {"type": "payment", "payment": {"amount": "1", "currency": "EUR"}, "field": field}
    assert validate_payload(_payload("2024-01-01T00:00:00Z", shallow)).form_response.answers
