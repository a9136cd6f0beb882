"""`pulse-local replay --pending` on profile gcp: the processor runs on gcp and archives the
deliveries it verified while its database was down to Cloud Storage; the same replay code
reads them back through the gcp archive (`GcsArchive`) and applies them once.

A stack of its own: PostgreSQL (plays Cloud SQL, really stopped), the Pub/Sub emulator, the
Cloud Storage emulator the rehearsal uses (``gcp-storage-emulator``, offline) and the processor
on profile gcp; the objects are read with the official google-cloud-storage client. Nothing
is faked."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from pulse_local.config import Settings
from pulse_local.ingest.signature import webhook_headers
from pulse_local.rehearsal.endpoints import rehearsal_environment, with_emulators
from pulse_local.rehearsal.services import rehearsal_services
from pulse_local.resources.clients import storage_client
from pulse_local.stack import process
from pulse_local.stack.native import NativeStack
from pulse_local.stack.process import free_port
from pulse_local.testing.plugin import make_test_settings

pytestmark = pytest.mark.integration

SERVICES = {"storage", "postgres", "pubsub", "processor"}


@pytest.fixture()
def gcp_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Settings, NativeStack]]:
    """(stack settings on local, the processor's settings on gcp, the stack) once up."""
    base = make_test_settings().model_copy(update={
        "stack": "native", "raw_bucket": "pending-raw", "project": "pending-test",
        "bigquery_port": free_port(), "bigquery_grpc_port": free_port(),
        "storage_port": free_port()})
    gcp = with_emulators(base)
    monkeypatch.setenv("PULSE_PROCESSOR_POOL_TIMEOUT", "1")  # a down database answers fast
    for key, value in rehearsal_environment(gcp).items():
        monkeypatch.setenv(key, value)
    services = [replace(s, depends_on=tuple(d for d in s.depends_on if d in SERVICES))
                for s in rehearsal_services(gcp) if s.name in SERVICES]
    assert {s.name for s in services} == SERVICES
    native = NativeStack(base, services)
    try:
        native.up()
        yield base, gcp, native
    finally:
        native.down(save=False)
        shutil.rmtree(base.state_dir, ignore_errors=True)


def _post(settings: Settings, slug: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"http://{settings.host}:{settings.processor_port}/webhooks/typeform/{slug}",
                      content=body, headers=headers, timeout=30)


def _objects(gcp: Settings, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """The records of every object under ``prefix/``, by object name (official client)."""
    client = storage_client(gcp)
    try:
        return {blob.name: [json.loads(x) for x in blob.download_as_text().splitlines() if x]
                for blob in client.list_blobs(gcp.raw_bucket, prefix=f"{prefix}/")}
    finally:
        client.close()


def _responses(settings: Settings, tokens: list[str]) -> tuple[int, int]:
    """Responses of these Typeform tokens and the delivery log's applied deliveries."""
    with psycopg.connect(settings.admin_dsn()) as conn:
        row = conn.execute(
            "select (select count(*) from responses where typeform_token = any(%(t)s)), "
            "(select count(*) from webhook_deliveries where typeform_token = any(%(t)s) "
            "  and outcome in ('created', 'revised'))", {"t": tokens}).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _replay_pending(gcp: Settings) -> subprocess.CompletedProcess[str]:
    """The CLI on profile gcp, with only what a gcp run has: the rehearsal's environment."""
    env = {**rehearsal_environment(gcp), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": ":".join(sys.path)}
    return subprocess.run([sys.executable, "-m", "pulse_local.cli", "replay", "--pending"],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def test_gcp_pending_deliveries_are_read_from_gcs_and_applied_once(
        gcp_stack: tuple[Settings, Settings, NativeStack], tmp_path: Path) -> None:
    from pulse_local.source.fixtures import generate
    from pulse_local.source.replay import load_deliveries
    from pulse_local.source.seed import seed_reference_data

    settings, gcp, native = gcp_stack
    generate(2, 5, tmp_path / "fixtures")
    seed_reference_data(settings, tmp_path / "fixtures")
    deliveries = load_deliveries(tmp_path / "fixtures")
    slug, secret, warm = deliveries[0]
    answer = _post(settings, slug, warm, webhook_headers(secret, warm))
    assert answer.status_code == 200, answer.text
    # the processor archived that delivery on gcp's archive: the bucket, not a directory
    assert len(_objects(gcp, "typeform/webhooks")) == 1
    assert not (settings.raw_bucket_dir / "typeform").exists()

    record = process.read_pid(native.pid_path("postgres"))
    assert record is not None
    process.stop(record, signal.SIGINT, 10.0)  # PostgreSQL stops
    native.pid_path("postgres").unlink()

    mine = [(s, sec, b) for s, sec, b in deliveries[1:] if s == slug][:4]
    tokens = [json.loads(b)["form_response"]["token"] for _, _, b in mine]
    for _, _, body in mine:
        answer = _post(settings, slug, body, webhook_headers(secret, body))
        assert answer.status_code == 202, answer.text
    forged = _post(settings, slug, mine[0][2], webhook_headers("not-the-secret", mine[0][2]))
    unknown = _post(settings, "no-such-tenant-at-all", mine[0][2],
                    webhook_headers("not-the-secret", mine[0][2]))
    assert forged.status_code == unknown.status_code == 503
    assert forged.content == unknown.content
    pending = _objects(gcp, "typeform/pending")
    assert sorted(r["event_id"] for rs in pending.values() for r in rs) == sorted(
        json.loads(b)["event_id"] for _, _, b in mine)
    assert all(r["verified"] is True for rs in pending.values() for r in rs)

    early = _replay_pending(gcp)  # the database is still down: nothing is touched
    assert early.returncode != 0 and "not healthy" in early.stdout + early.stderr
    assert _objects(gcp, "typeform/pending") == pending

    native.up()  # PostgreSQL back
    url = f"http://{settings.host}:{settings.processor_port}/healthz"
    deadline = time.monotonic() + 60
    while httpx.get(url, timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the processor did not see the database come back"
        time.sleep(0.3)
    assert _responses(settings, tokens) == (0, 0)

    first = _replay_pending(gcp)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{len(mine)} applied (created {len(mine)})" in first.stdout, first.stdout
    assert _responses(settings, tokens) == (len(set(tokens)), len(mine))
    assert _objects(gcp, "typeform/pending") == {}
    applied = [r for rs in _objects(gcp, "typeform/pending-applied").values() for r in rs]
    assert sorted(r["event_id"] for r in applied) == sorted(
        r["event_id"] for rs in pending.values() for r in rs)
    assert {r["applied"]["outcome"] for r in applied} == {"created"}

    second = _replay_pending(gcp)  # nothing left: nothing applied, nothing changed
    assert second.returncode == 0 and "0 applied" in second.stdout, second.stdout
    assert _responses(settings, tokens) == (len(set(tokens)), len(mine))
