"""Authentication and tenant scoping of the serving API, against the stack's running service.

The service (`python -m pulse_local.serving`, started by the session's stack) and these tests
share the stack's signing key (state directory); tokens are issued as `pulse-local token` does.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest

from pulse_local.config import Settings
from pulse_local.serving.auth import (
    LOCAL_AUDIENCE,
    LOCAL_ISSUER,
    issue_local_token,
    signing_key,
    signing_key_path,
)
from pulse_local.streaming.quality import run_checks
from pulse_local.streaming.store import Delivered, EventStore
from pulse_local.streaming.testing import make_event

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tenants(pulse_stack: Any, pulse_settings: Settings) -> dict[str, uuid.UUID]:
    """Two tenants with three and one events in Bigtable."""
    a, b, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    when = datetime(2024, 6, 1, 9, tzinfo=UTC)
    events = [make_event(a, user, submitted_at=when.replace(minute=i)) for i in range(3)]
    events.append(make_event(b, user, submitted_at=when))
    store = EventStore.for_settings(pulse_settings)
    try:
        store.write([Delivered(e, f"auth-{i}", e.submitted_at, e.to_message(),
                               run_checks(e, e.submitted_at)) for i, e in enumerate(events)])
    finally:
        store.close()
    return {"a": a, "b": b, "user": user}


@pytest.fixture(scope="module")
def http(pulse_stack: Any, pulse_settings: Settings) -> Iterator[httpx.Client]:
    """A client of the running service (not an in-process app)."""
    base = f"http://{pulse_settings.host}:{pulse_settings.serving_port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_refused(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"}, body  # a reason, no data
    assert reason in body["detail"], body


def test_no_token_is_401_with_a_reason(http: httpx.Client, tenants: dict[str, uuid.UUID]
                                       ) -> None:
    response = http.get(f"/v1/tenants/{tenants['a']}/counters")
    _assert_refused(response, 401, "missing bearer token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    other_scheme = http.get(f"/v1/tenants/{tenants['a']}/counters",
                            headers={"Authorization": "Basic YTpi"})
    _assert_refused(other_scheme, 401, "missing bearer token")
    # every data route, and before the path is validated
    for path in (f"/v1/tenants/{tenants['a']}/users/{tenants['user']}/events",
                 f"/v1/tenants/{tenants['a']}/aggregates/form?start=2024-06-01&end=2024-06-01",
                 "/v1/tenants/not-a-uuid/counters"):
        _assert_refused(http.get(path), 401, "missing bearer token")


def test_a_token_signed_with_another_key_is_401(http: httpx.Client,
                                                tenants: dict[str, uuid.UUID]) -> None:
    forged = issue_local_token(os.urandom(32), tenant_id=tenants["a"])
    _assert_refused(http.get(f"/v1/tenants/{tenants['a']}/counters", headers=_bearer(forged)),
                    401, "signature")
    # the same claims without a signature (alg none) are refused too
    claims = jwt.decode(forged, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    _assert_refused(http.get(f"/v1/tenants/{tenants['a']}/counters",
                             headers=_bearer(unsigned)), 401, "invalid token")
    _assert_refused(http.get(f"/v1/tenants/{tenants['a']}/counters",
                             headers=_bearer("not.a.jwt")), 401, "invalid token")


def test_an_expired_token_is_401(http: httpx.Client, pulse_settings: Settings,
                                 tenants: dict[str, uuid.UUID]) -> None:
    expired = issue_local_token(signing_key(pulse_settings), tenant_id=tenants["a"],
                                ttl_seconds=60, now=time.time() - 3600)
    _assert_refused(http.get(f"/v1/tenants/{tenants['a']}/counters", headers=_bearer(expired)),
                    401, "expired")


def test_a_token_of_another_audience_is_401(http: httpx.Client, pulse_settings: Settings,
                                            tenants: dict[str, uuid.UUID]) -> None:
    now = int(time.time())
    token = jwt.encode({"iss": LOCAL_ISSUER, "aud": "someone-else", "iat": now,
                        "exp": now + 60, "sub": "x", "tenant": str(tenants["a"])},
                       signing_key(pulse_settings), algorithm="HS256")
    _assert_refused(http.get(f"/v1/tenants/{tenants['a']}/counters", headers=_bearer(token)),
                    401, "Audience")
    both = jwt.encode({"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "iat": now, "exp": now + 60,
                       "sub": "x", "tenant": str(tenants["a"]), "role": "operator"},
                      signing_key(pulse_settings), algorithm="HS256")
    _assert_refused(http.get(f"/v1/tenants/{tenants['a']}/counters", headers=_bearer(both)),
                    401, "must name one")


def test_another_tenants_token_is_403_without_data(http: httpx.Client, serving_token: Any,
                                                   tenants: dict[str, uuid.UUID]) -> None:
    as_b = _bearer(serving_token(tenants["b"]))
    a = tenants["a"]
    for path in (f"/v1/tenants/{a}/counters",
                 f"/v1/tenants/{a}/users/{tenants['user']}/events",
                 f"/v1/tenants/{a}/aggregates/form?start=2024-06-01&end=2024-06-01",
                 f"/v1/tenants/{str(a).upper()}/counters",
                 f"/v1/tenants/{a}%23/counters"):
        _assert_refused(http.get(path, headers=as_b), 403, "may not read")


def test_the_right_tenants_token_reads_its_data(http: httpx.Client, serving_token: Any,
                                                tenants: dict[str, uuid.UUID]) -> None:
    a = tenants["a"]
    auth = _bearer(serving_token(a))
    counters = http.get(f"/v1/tenants/{a}/counters", headers=auth)
    assert counters.status_code == 200, counters.text
    assert counters.json()["total"]["events"] == 3
    page = http.get(f"/v1/tenants/{a}/users/{tenants['user']}/events", headers=auth).json()
    assert [e["event"]["tenant_id"] for e in page["events"]] == [str(a)] * 3


def test_the_operator_reads_every_tenant(http: httpx.Client, serving_token: Any,
                                         tenants: dict[str, uuid.UUID]) -> None:
    auth = _bearer(serving_token(operator=True))
    totals = [http.get(f"/v1/tenants/{tenants[t]}/counters", headers=auth).json()["total"]
              for t in ("a", "b")]
    assert [t["events"] for t in totals] == [3, 1]
    assert http.get("/v1/tenants/not-a-uuid/counters", headers=auth).status_code == 422


def test_docs_are_served_locally_and_health_is_open(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok", "bigtable": "ok"}
    schema = http.get("/openapi.json").json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_the_key_file_is_private(pulse_stack: Any, pulse_settings: Settings) -> None:
    path = signing_key_path(pulse_settings)
    assert path.is_relative_to(pulse_settings.state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_pulse_local_token_issues_a_token_the_service_accepts(
        http: httpx.Client, pulse_settings: Settings, tenants: dict[str, uuid.UUID],
        pg_admin: Any) -> None:
    slug = f"auth-{tenants['b'].hex[:8]}"
    pg_admin.execute("insert into organizations (id, slug, name) values (%s, %s, 'Auth B')",
                     (tenants["b"], slug))
    env = {**os.environ, "PULSE_STATE_DIR": str(pulse_settings.state_dir),
           "PYTHONPATH": os.pathsep.join(sys.path)}

    def token(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pulse_local.cli", "token", *args],
                              env=env, capture_output=True, text=True, timeout=60,
                              check=False)

    unknown = token("--tenant", "no-such-tenant")
    assert unknown.returncode == 2 and "no tenant with slug 'no-such-tenant'" in unknown.stderr
    issued = token("--tenant", slug, "--ttl", "120")
    assert issued.returncode == 0, issued.stderr
    out = issued.stdout.strip()
    claims = jwt.decode(out, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    response = http.get(f"/v1/tenants/{tenants['b']}/counters", headers=_bearer(out))
    assert response.status_code == 200, response.text
    assert response.json()["total"]["events"] == 1
