"""Property-based fuzzing of the running serving API from its own OpenAPI schema
(schemathesis): whatever the path, query and token, no answer is a 5xx and none hangs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from pulse_local.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def serving_url(pulse_stack: Any, pulse_settings: Settings) -> str:
    return f"http://{pulse_settings.host}:{pulse_settings.serving_port}"


@pytest.fixture(scope="module")
def serving_schema(serving_url: str) -> Any:
    """The schema the running service publishes (local profile: /openapi.json is served)."""
    assert httpx.get(f"{serving_url}/openapi.json", timeout=10).status_code == 200
    return schemathesis.openapi.from_url(f"{serving_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("serving_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_request_gets_a_server_error_or_hangs(case: Any, serving_url: str,
                                                 serving_headers: Any) -> None:
    operator = serving_headers(operator=True)
    for headers in (operator, serving_headers("00000000-0000-4000-8000-000000000001"), {}):
        # `timeout`: a hang fails the test (requests raises) instead of stalling the suite
        response = case.call(base_url=serving_url, headers=headers, timeout=15)
        assert response.status_code < 500, (case.formatted_path, case.query,
                                            response.status_code, response.text[:300])
        if case.method.upper() != "GET":  # schemathesis also tries other methods
            assert response.status_code == 405, (case.method, response.text[:300])
        elif not headers and case.path != "/healthz":
            assert response.status_code == 401, (case.formatted_path, response.text[:300])
