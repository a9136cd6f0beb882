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


def test_bigtable_down_answers_503_with_the_cause(pulse_settings: Settings,
                                                 serving_headers: Any) -> None:
    down = pulse_settings.model_copy(
        update={"bigtable_emulator_host": f"127.0.0.1:{free_port()}"})
    tenant = uuid.uuid4()
    with TestClient(create_app(down)) as client:
        health = client.get("/healthz")
        counters = client.get(f"/v1/tenants/{tenant}/counters", headers=serving_headers(tenant))
    assert health.status_code == 503
    assert "Bigtable" in health.json()["detail"]
    assert counters.status_code == 503, counters.text
    detail: Any = counters.json()["detail"]
    assert detail.startswith("Bigtable unavailable: ") and len(detail) > len(
        "Bigtable unavailable: ")
    assert counters.headers["Retry-After"] == "5"


def test_serving_answers_again_once_bigtable_is_back() -> None:
    """Bigtable killed and restarted on the same port (its own emulator): the serving app
    answers 503 meanwhile, then 200 again without a restart of its own."""
    import os
    import shutil
    import signal
    import time

    from pulse_local.stack.native import NativeStack
    from pulse_local.stack.services import native_services
    from pulse_local.testing.plugin import make_test_settings

    settings = make_test_settings()
    settings = settings.model_copy(update={
        "bigtable_emulator_host": f"{settings.host}:{settings.bigtable_port}"})
    stack = NativeStack(settings, [s for s in native_services(settings) if s.name == "bigtable"])
    stack.up()
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
            pid = next(s.pid for s in stack.status() if s.pid)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            down = [client.get("/healthz").status_code for _ in range(5)]
            time.sleep(8)  # down a while, as in the probe that found the hang
            assert down == [503] * 5
            stack.up()
            deadline = time.monotonic() + 30
            status = client.get("/healthz").status_code
            while status != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
                status = client.get("/healthz").status_code
            assert status == 200
    finally:
        stack.down(save=False)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
