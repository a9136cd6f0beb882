"""Serving API with Bigtable down: every read answers 503 naming the cause, within the read
deadline instead of the client's default ten minutes. "Down" is the real client pointed at a
closed port (nothing listens there)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pulse_local.config import Settings
from pulse_local.serving.app import create_app
from pulse_local.stack.process import free_port

pytestmark = pytest.mark.integration


def test_bigtable_down_answers_503_with_the_cause(pulse_settings: Settings) -> None:
    down = pulse_settings.model_copy(
        update={"bigtable_emulator_host": f"127.0.0.1:{free_port()}"})
    with TestClient(create_app(down)) as client:
        health = client.get("/healthz")
        counters = client.get(f"/v1/tenants/{uuid.uuid4()}/counters")
    assert health.status_code == 503
    assert "Bigtable" in health.json()["detail"]
    assert counters.status_code == 503, counters.text
    detail: Any = counters.json()["detail"]
    assert detail.startswith("Bigtable unavailable: ") and len(detail) > len(
        "Bigtable unavailable: ")
    assert counters.headers["Retry-After"] == "5"
