"""The stack's Prefect API asks for its generated basic-auth string (the session's real Prefect
server); the stack's own clients carry it (the deployments server registered its deployments
through it, and flows run on it: tests/integration/stack/test_session_stack.py)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from pulse_local.config import Settings
from pulse_local.endpoints import prefect_auth_headers, prefect_auth_string
from pulse_local.orchestration import deployments_ready
from pulse_local.stack.services import prefect_api_url

pytestmark = pytest.mark.integration


def test_an_unauthenticated_request_is_refused(pulse_stack: Any,
                                               pulse_settings: Settings) -> None:
    api = prefect_api_url(pulse_settings)
    auth = prefect_auth_string(pulse_settings)
    assert auth and auth.startswith("pulse:")
    wrong = "Basic " + base64.b64encode(b"pulse:not-the-password").decode()
    for headers in ({}, {"Authorization": wrong}, {"Authorization": "Bearer x"}):
        answer = httpx.post(f"{api}/deployments/filter", json={"limit": 1}, headers=headers,
                            timeout=10)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.json() == {"exception_message": "Unauthorized"}
    ok = httpx.post(f"{api}/deployments/filter", json={"limit": 1}, timeout=10,
                    headers=prefect_auth_headers(pulse_settings))
    assert ok.status_code == 200 and isinstance(ok.json(), list)
    # health stays open (the stack's probe and compose's healthcheck)
    assert httpx.get(f"{api}/health", timeout=10).json() is True


def test_the_stack_clients_carry_the_auth_string(pulse_stack: Any, pulse_settings: Settings,
                                                 prefect_client: Any) -> None:
    deployments_ready(pulse_settings, timeout=10)  # raw HTTP with the stack's header
    assert prefect_client.read_deployments()  # Prefect's own client, from the environment
