"""Property: whatever malformed payload arrives, no 5xx and no partial write."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

DELETE = object()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found += _paths(sub, (*prefix, i))
    return found


def _apply(payload: dict[str, Any], path: tuple[Any, ...], replacement: Any) -> None:
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    if replacement is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement


@st.composite
def malformed(draw: st.DrawFn, template: dict[str, Any]) -> bytes:
    """A body derived from a valid payload by 1-3 random edits, or random bytes/JSON."""
    kind = draw(st.sampled_from(["edit", "edit", "edit", "edit", "json", "bytes", "truncate"]))
    payload = copy.deepcopy(template)
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        _apply(payload, path, draw(st.just(DELETE) | json_values))
    raw = json.dumps(payload).encode()
    if kind == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    return raw


@pytest.mark.timeout(300)
def test_malformed_payloads_never_5xx_nor_partial(post: Any, make_webhook: Any, pg_admin: Any) -> None:
    template = make_webhook()
    template["form_response"]["token"] = "TEMPLATE"

    def counts() -> tuple[int, int, int]:
        row = pg_admin.execute(
            "select (select count(*) from responses), (select count(*) from answers), "
            "(select count(*) from webhook_deliveries)").fetchone()
        return row[0], row[1], row[2]

    statuses: dict[int, int] = {}
    tokens = iter(range(10**9))

    @settings(max_examples=800, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=malformed(template))
    def check(body: bytes) -> None:
        # a fresh token per example, so a still-valid body creates rather than duplicates
        body = body.replace(b'"TEMPLATE"', f'"tok-{next(tokens)}-{id(body)}"'.encode())
        before = counts()
        response = post("tenant-0001", body)
        after = counts()
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, response.text
        if response.status_code != 200:
            assert after == before, f"{response.status_code} but rows changed"

    check()
    orphan = pg_admin.execute(
        "select count(*) from responses r where r.answer_count <> "
        "(select count(*) from answers a where a.response_id = r.id)").fetchone()[0]
    assert orphan == 0, "a response row does not hold all its answers"
    assert sum(statuses.values()) >= 500, statuses
    assert set(statuses) <= {200, 400, 401, 413, 422}, statuses
