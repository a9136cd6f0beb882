"""The processor's degraded mode with the stack's own PostgreSQL really stopped: verified
deliveries are archived as pending (202), anything it cannot verify (unknown slug, wrong
signature, even for a tenant whose secrets are cached) is refused alike and kept nowhere (503), and `pulse-local replay --pending` applies the pending ones once the database
is back, exactly once (a stack of its own: PostgreSQL, Pub/Sub and the processor, free ports)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from pulse_local.config import Settings
from pulse_local.ingest.signature import webhook_headers
from pulse_local.stack import process
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services, service_env
from pulse_local.testing.plugin import make_test_settings

pytestmark = pytest.mark.integration

SERVICES = {"postgres", "pubsub", "processor"}


@pytest.fixture()
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, NativeStack]]:
    settings = make_test_settings()
    monkeypatch.setenv("PULSE_PROCESSOR_POOL_TIMEOUT", "1")  # a down database answers fast
    for key, value in service_env(settings).items():
        monkeypatch.setenv(key, value)
    native = NativeStack(settings, [s for s in native_services(settings) if s.name in SERVICES])
    try:
        native.up()
        yield settings, native
    finally:
        native.down(save=False)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def _post(settings: Settings, slug: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"http://{settings.host}:{settings.processor_port}/webhooks/typeform/{slug}",
                      content=body, headers=headers, timeout=30)


def _archived(settings: Settings, prefix: str) -> list[dict[str, Any]]:
    root = settings.raw_bucket_dir / prefix
    return [json.loads(line) for p in sorted(root.rglob("*.jsonl"))
            for line in p.read_text().splitlines() if line.strip()]


def _rows(settings: Settings, tokens: list[str]) -> dict[str, int]:
    """Responses of these Typeform tokens, their revisions, and the delivery log's applied
    deliveries (created/revised) and duplicates of them."""
    with psycopg.connect(settings.admin_dsn()) as conn:
        row = conn.execute(
            "select (select count(*) from responses where typeform_token = any(%(t)s)), "
            "(select coalesce(sum(revision), 0) from responses where typeform_token = any(%(t)s)),"
            " (select count(*) from webhook_deliveries where typeform_token = any(%(t)s) "
            "  and outcome in ('created', 'revised')), "
            "(select count(*) from webhook_deliveries where typeform_token = any(%(t)s) "
            "  and outcome = 'duplicate')", {"t": tokens}).fetchone()
    assert row is not None
    return dict(zip(("responses", "revisions", "applied", "duplicates"), map(int, row),
                    strict=True))


def _replay_pending(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**service_env(settings), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": ":".join(sys.path)}
    return subprocess.run([sys.executable, "-m", "pulse_local.cli", "replay", "--pending"],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def _wait_healthy(settings: Settings, timeout: float = 60) -> None:
    url = f"http://{settings.host}:{settings.processor_port}/healthz"
    deadline = time.monotonic() + timeout
    while httpx.get(url, timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the processor did not see the database come back"
        time.sleep(0.3)


def test_outage_archives_verified_deliveries_and_replay_applies_them_once(
        stack: tuple[Settings, NativeStack], tmp_path: Path) -> None:
    from pulse_local.source.fixtures import generate
    from pulse_local.source.replay import load_deliveries
    from pulse_local.source.seed import seed_reference_data

    settings, native = stack
    generate(2, 5, tmp_path / "fixtures")
    seed_reference_data(settings, tmp_path / "fixtures")
    deliveries = load_deliveries(tmp_path / "fixtures")
    slug, secret, warm = deliveries[0]
    other_slug = next(s for s, _, _ in deliveries if s != slug)  # never resolved below
    assert _post(settings, slug, warm, webhook_headers(secret, warm)).status_code == 200

    # PostgreSQL stops (a clean, fast shutdown of the stack's own server)
    record = process.read_pid(native.pid_path("postgres"))
    assert record is not None
    process.stop(record, signal.SIGINT, 10.0)
    native.pid_path("postgres").unlink()

    mine = [(s, sec, b) for s, sec, b in deliveries[1:] if s == slug][:6]
    tokens = [json.loads(b)["form_response"]["token"] for _, _, b in mine]
    for _, _, body in mine:
        answer = _post(settings, slug, body, webhook_headers(secret, body))
        assert answer.status_code == 202, answer.text
        assert answer.json()["outcome"] == "pending"
    # No signature or a wrong one for the slug whose secrets are cached (resolved a moment
    # ago), a tenant this processor never resolved, a slug that does not exist: one answer,
    # 503 with the same body and Retry-After, so an outage does not tell which slugs exist
    # (a cached slug used to answer 401 here). Nothing of them is kept.
    unsigned = mine[0][2].replace(b'"form_response"', b'"form_response" ', 1)
    forged = webhook_headers("not-the-secret", unsigned)
    other = next(b for s, _, b in deliveries if s == other_slug)
    refused = [_post(settings, slug, unsigned, {"content-type": "application/json"}),
               _post(settings, slug, unsigned, forged),
               _post(settings, other_slug, other, webhook_headers("x", other)),
               _post(settings, "no-such-tenant-at-all", unsigned, forged)]
    assert [a.status_code for a in refused] == [503] * 4, [a.text for a in refused]
    assert len({(a.content, a.headers["Retry-After"]) for a in refused}) == 1, [
        a.text for a in refused]
    assert int(refused[0].headers["Retry-After"]) > 0
    assert refused[0].json()["error"] == "database_unavailable"
    pending = _archived(settings, "typeform/pending")
    assert len(pending) == len(mine) and all(r["verified"] is True for r in pending)
    assert not any(r["body"].encode() in (unsigned, other) for r in pending)

    # a replay while the database is still down applies nothing and keeps everything
    early = _replay_pending(settings)
    assert early.returncode != 0 and "not healthy" in early.stdout + early.stderr
    assert len(_archived(settings, "typeform/pending")) == len(mine)

    native.up()  # PostgreSQL back
    _wait_healthy(settings)
    before = _rows(settings, tokens)
    assert before["responses"] == 0
    first = _replay_pending(settings)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{len(mine)} applied" in first.stdout, first.stdout
    after = _rows(settings, tokens)
    assert after["responses"] == len(set(tokens))
    assert after["applied"] == len(mine) and after["duplicates"] == 0
    assert _archived(settings, "typeform/pending") == []
    applied = _archived(settings, "typeform/pending-applied")
    assert sorted(r["event_id"] for r in applied) == sorted(r["event_id"] for r in pending)

    # a second replay finds nothing to do and changes nothing
    second = _replay_pending(settings)
    assert second.returncode == 0 and "0 applied" in second.stdout, second.stdout
    assert _rows(settings, tokens) == after

    # applying the same deliveries again (a replay interrupted after the apply, before the
    # move) is a no-op: every one is a duplicate, no row changes
    day = next((settings.raw_bucket_dir / "typeform/pending-applied").iterdir())
    again = settings.raw_bucket_dir / "typeform/pending" / day.name
    again.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(sorted(day.glob("*.jsonl"))):
        path.rename(again / f"part-again-{i}.jsonl")
    third = _replay_pending(settings)
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"{len(mine)} applied (duplicate {len(mine)})" in third.stdout, third.stdout
    assert _rows(settings, tokens) == {**after, "duplicates": len(mine)}
