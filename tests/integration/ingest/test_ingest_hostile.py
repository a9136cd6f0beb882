"""Hostile input on the processor: nothing it refuses is stored, and no answer tells a caller
which tenant slugs exist."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pulse_local.config import Settings

pytestmark = pytest.mark.integration


def _archived(settings: Settings) -> int:
    """Lines in the raw archive (every archived delivery is one)."""
    return sum(len(p.read_bytes().splitlines())
               for p in Path(settings.raw_bucket_dir).rglob("*.jsonl"))


@pytest.fixture()
def nothing_stored(row_counts: Any, pulse_settings: Settings) -> Any:
    """Assert after the test's requests that no row and no archive line was added."""
    before = row_counts(), _archived(pulse_settings)
    yield
    assert (row_counts(), _archived(pulse_settings)) == before


@pytest.mark.parametrize("when", ["2300-01-01T00:00:00Z", "1900-06-01T12:00:00Z",
                                  "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z",
                                  "9999-12-31T23:59:59+14:00"])
def test_submitted_at_outside_the_window_is_422(post: Any, make_webhook: Any,
                                                nothing_stored: None, when: str) -> None:
    response = post("tenant-0001", make_webhook(submitted_at=when))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("form_response.submitted_at"), response.json()
    assert "2000-01-01" in response.json()["detail"]


def test_the_first_moment_of_the_window_is_accepted(post: Any, make_webhook: Any) -> None:
    response = post("tenant-0001", make_webhook(submitted_at="2000-01-01T00:00:00Z"))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "created"


def test_unknown_and_known_tenants_answer_a_bad_signature_alike(
        post: Any, make_webhook: Any, nothing_stored: None) -> None:
    payload = json.dumps(make_webhook()).encode()
    answers = [post(slug, payload, secret="w" * 40)
               for slug in ("tenant-0001", "tenant-9999", "no-such-tenant-at-all")]
    answers += [post(slug, payload, signed=False) for slug in ("tenant-0001", "tenant-9999")]
    answers.append(post("NOT_A_SLUG", payload, secret="w" * 40))
    assert {r.status_code for r in answers} == {401}
    assert len({r.content for r in answers}) == 1, [r.text for r in answers]


def test_compressed_bodies_are_refused_unread(post: Any, make_webhook: Any,
                                              nothing_stored: None) -> None:
    raw = json.dumps(make_webhook()).encode()
    zipped = post("tenant-0001", gzip.compress(raw), headers={"content-encoding": "gzip"})
    assert zipped.status_code == 415 and "Content-Encoding" in zipped.json()["detail"]
    # a gzip bomb: 20 MB of zeros in about 20 kB; never inflated
    bomb = gzip.compress(b"0" * 20_000_000)
    assert len(bomb) < 100_000
    answer = post("tenant-0001", bomb, headers={"content-encoding": "gzip"})
    assert answer.status_code == 415
    deflated = post("tenant-0001", raw, headers={"content-encoding": "deflate, gzip"})
    assert deflated.status_code == 415


def test_deep_nesting_is_refused_with_4xx(post: Any, make_webhook: Any,
                                          nothing_stored: None) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    response = post("tenant-0001", deep)
    assert response.status_code == 400, response.text
    # nested inside an ignored key of a valid payload, beyond the parser's recursion limit
    payload = json.dumps(make_webhook()).encode()
    hidden = payload[:-1] + b', "extra": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert post("tenant-0001", hidden).status_code == 400
    # a free-form answer value (stored as jsonb) nested deeper than allowed
    webhook = make_webhook()
    value: Any = {"amount": "1"}
    for _ in range(40):
        value = {"inner": value}
    first = webhook["form_response"]["answers"][0]
    webhook["form_response"]["answers"][0] = {"type": "payment", "payment": value,
                                              "field": first["field"]}
    refused = post("tenant-0001", webhook)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("form_response.answers.0.payment")
    assert "nested deeper" in refused.json()["detail"]
