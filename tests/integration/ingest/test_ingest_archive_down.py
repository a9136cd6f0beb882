"""Raw archive unavailable: 503 + Retry-After and nothing stored (a delivery is archived
before it is written); the sender's retry, once the archive is back, archives, stores and
publishes it.

The real processor over HTTP, the real Postgres and Pub/Sub emulator; the archive (a local
directory standing in for the bucket) is made to fail by a regular file where its folder goes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pulse_local.ingest.signature import webhook_headers
from pulse_local.ingest.testing import processor_process
from pulse_local.stack.process import free_port

pytestmark = pytest.mark.integration


def test_archive_down_answers_503_and_the_retry_loses_nothing(
        source_fixtures: Path, pulse_settings: Any, make_webhook: Any, tenants: Any,
        pg_admin: Any, tmp_path: Path) -> None:
    blocked = f"archive-down-{uuid.uuid4().hex[:8]}"
    blocker = pulse_settings.raw_bucket_dir / blocked
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the archive's folder must go\n")
    env = {"PULSE_PROCESSOR_ARCHIVE_PREFIX": f"{blocked}/webhooks",
           "PULSE_PROCESSOR_RETRY_AFTER_SECONDS": "9"}
    payload = make_webhook()
    raw = json.dumps(payload).encode()
    headers = webhook_headers(tenants["tenant-0001"]["webhook_secret"], raw)
    token = payload["form_response"]["token"]
    with processor_process(env, free_port(), tmp_path / "p.log") as url:
        first = httpx.post(f"{url}/webhooks/typeform/tenant-0001", content=raw,
                           headers=headers, timeout=30)
        assert first.status_code == 503, first.text
        assert first.json()["error"] == "archive_unavailable"
        assert first.headers["Retry-After"] == "9"
        assert pg_admin.execute("select count(*) from responses where typeform_token = %s",
                                (token,)).fetchone()[0] == 0
        blocker.unlink()  # the archive comes back; the sender retries
        retry = httpx.post(f"{url}/webhooks/typeform/tenant-0001", content=raw,
                           headers=headers, timeout=30)
    assert retry.status_code == 200, retry.text
    assert retry.json()["outcome"] == "created" and retry.json()["event_id"]  # published
    assert pg_admin.execute("select count(*) from responses where typeform_token = %s",
                            (token,)).fetchone()[0] == 1
    archived = [json.loads(line) for p in blocker.rglob("*.jsonl")
                for line in p.read_text().splitlines()]
    assert [r["event_id"] for r in archived] == [payload["event_id"]]
