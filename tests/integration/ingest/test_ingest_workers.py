"""The processor in several worker processes (PULSE_PROCESSOR_WORKERS): each builds the app
from the environment and every one stores what it accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pulse_local.config import Settings
from pulse_local.ingest.signature import webhook_headers
from pulse_local.ingest.testing import processor_process
from pulse_local.stack.process import free_port

pytestmark = pytest.mark.integration


def test_two_workers_accept_and_store_every_webhook(
        source_fixtures: Path, pulse_settings: Settings, tenants: dict[str, Any],
        make_webhook: Any, pg_admin: Any, tmp_path: Path) -> None:
    secret = tenants["tenant-0001"]["webhook_secret"]
    bodies = [json.dumps(make_webhook("tenant-0001", value=i)).encode() for i in range(40)]
    with processor_process({"PULSE_PROCESSOR_WORKERS": "2"}, free_port(),
                           tmp_path / "processor.log") as url, httpx.Client(base_url=url) as c:
        answers = [c.post("/webhooks/typeform/tenant-0001", content=b,
                          headers=webhook_headers(secret, b))
                   for b in bodies]
    assert [a.status_code for a in answers] == [200] * len(bodies), answers[0].text
    ids = [a.json()["response_id"] for a in answers]
    stored = pg_admin.execute("select count(*) from responses where id = any(%s::uuid[])",
                              (ids,)).fetchone()[0]
    assert stored == len(bodies)
