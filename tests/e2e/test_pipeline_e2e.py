"""The whole pipeline, end to end, on a fresh stack of real services (`pulse-local run`).

Expected figures are computed here from the fixture files alone (Python, no SQL), so the
pipeline's answers are checked against an independent reading of the same data.
Then a fault run: the webhook processor dies mid-replay, the run fails with a clear cause, and
after `up` brings it back a rerun completes with nothing lost or doubled.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from rich.console import Console

from pulse_local.config import Settings
from pulse_local.pipeline import RunSummary, fixtures_dir, run_pipeline
from pulse_local.stack import process, stack_for
from pulse_local.stack.services import service_env
from pulse_local.testing.plugin import flush_prefect_logs, make_test_settings

pytestmark = pytest.mark.e2e

STAGES = ["check_stack", "fixtures", "replay_fixtures", "etl_pipeline", "stream_events",
          "monitor_pipeline"]


@dataclass(frozen=True)
class Expected:
    """What one tenant's data must look like after the pipeline."""

    responses: int
    score: Decimal


def expected_from_fixtures(directory: Path) -> dict[str, Expected]:
    """Per tenant id: the number of distinct responses (latest revision per token wins) and
    the sum of their reverse-keyed scores, read from the fixture files only."""
    orgs = {o["slug"]: o["id"] for o in json.loads((directory / "organizations.json").read_text())}
    scales: dict[tuple[str, str], tuple[int, int, bool]] = {}
    for form in json.loads((directory / "assessments.json").read_text()):
        for q in form["questions"]:
            if q.get("scale_min") is not None:
                scales[(form["typeform_form_id"], q["ref"])] = (
                    q["scale_min"], q["scale_max"], q["reverse_keyed"])
    result = {}
    for slug, tenant_id in orgs.items():
        latest: dict[str, dict[str, Any]] = {}
        for line in (directory / "webhooks" / f"{slug}.jsonl").read_text().splitlines():
            fr = json.loads(line)["form_response"]
            seen = latest.get(fr["token"])
            if seen is not None and seen != fr:
                assert seen["submitted_at"] != fr["submitted_at"], "ambiguous revision order"
            if seen is None or fr["submitted_at"] > seen["submitted_at"]:
                latest[fr["token"]] = fr
        score = Decimal(0)
        for fr in latest.values():
            for answer in fr["answers"]:
                scale = scales.get((fr["form_id"], answer["field"]["ref"]))
                if scale is None or answer.get("number") is None:
                    continue
                low, high, reverse = scale
                score += Decimal(low + high - answer["number"] if reverse else answer["number"])
        result[tenant_id] = Expected(len(latest), score)
    return result


@pytest.fixture(scope="module")
def e2e_stack() -> Iterator[tuple[Settings, Any]]:
    """A fresh stack of its own (not the session's, which other tests have written to)."""
    import shutil

    settings = make_test_settings()
    saved = dict(os.environ)
    os.environ.update(service_env(settings))
    stack = stack_for(settings)
    try:
        stack.up()
        yield settings, stack
    finally:
        flush_prefect_logs()  # flow-run logs reach this stack's Prefect before it stops
        stack.down()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def _run(settings: Settings) -> tuple[RunSummary, str]:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from pulse_local.endpoints import prefect_auth_string
    from pulse_local.stack.services import prefect_api_url

    console = Console(record=True, width=240)
    # Prefect read its settings when the session's stack was up: this stack's URL and auth
    # string (its own, generated) replace them for the run
    with temporary_settings(updates={PREFECT_API_URL: prefect_api_url(settings),
                                     PREFECT_API_AUTH_STRING: prefect_auth_string(settings)}):
        summary = run_pipeline(settings, console)
    return summary, console.export_text()


@pytest.fixture(scope="module")
def green_run(e2e_stack: tuple[Settings, Any]) -> tuple[Settings, RunSummary, str]:
    settings, _ = e2e_stack
    summary, text = _run(settings)
    return settings, summary, text


def _warehouse_by_tenant(settings: Settings) -> dict[str, tuple[int, Decimal, int]]:
    """(responses, score sum, distinct response ids) per tenant in dw.fact_response."""
    import duckdb

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        rows = conn.execute(
            "select tenant_id, count(*), sum(score), count(distinct response_id) "
            "from dw.fact_response group by tenant_id").fetchall()
    return {str(t): (int(n), Decimal(str(s)), int(d)) for t, n, s, d in rows}


def _assert_warehouse_matches(settings: Settings, expected: dict[str, Expected]) -> None:
    got = _warehouse_by_tenant(settings)
    assert set(got) == set(expected)
    for tenant, want in expected.items():
        responses, score, distinct = got[tenant]
        assert (responses, distinct) == (want.responses, want.responses), tenant
        assert score == want.score, tenant


def _published_events(settings: Settings) -> dict[str, int]:
    """Response events the processor published per tenant: one per stored revision."""
    with psycopg.connect(settings.admin_dsn()) as conn:
        rows = conn.execute("select tenant_id::text, sum(revision) from responses "
                            "group by tenant_id").fetchall()
    return {t: int(n) for t, n in rows}


def _auth(settings: Settings, tenant: str) -> dict[str, str]:
    """The bearer header of ``tenant`` (a token signed with the stack's key)."""
    from pulse_local.serving.auth import issue_local_token, signing_key

    token = issue_local_token(signing_key(settings), tenant_id=uuid.UUID(tenant))
    return {"Authorization": f"Bearer {token}"}


def _serving_counters(settings: Settings, tenant: str) -> dict[str, Any]:
    url = f"http://{settings.host}:{settings.serving_port}/v1/tenants/{tenant}/counters"
    response = httpx.get(url, timeout=10, headers=_auth(settings, tenant))
    response.raise_for_status()
    return response.json()


def test_run_prints_a_green_summary_of_every_stage(green_run: Any) -> None:
    _, summary, text = green_run
    assert [s.name for s in summary.stages] == STAGES, text
    assert summary.ok, text
    assert "pipeline ok" in text


def test_warehouse_facts_equal_what_the_fixtures_say(green_run: Any) -> None:
    settings, summary, text = green_run
    assert summary.ok, text
    _assert_warehouse_matches(settings, expected_from_fixtures(fixtures_dir(settings)))


def test_serving_api_returns_every_published_event_once(green_run: Any) -> None:
    settings, summary, text = green_run
    assert summary.ok, text
    published = _published_events(settings)
    assert published
    for tenant, events in published.items():
        counters = _serving_counters(settings, tenant)
        assert counters["total"]["events"] == events, tenant
    # a user's recent events come back newest first and belong to that tenant and user
    with psycopg.connect(settings.admin_dsn()) as conn:
        tenant, user = conn.execute(
            "select tenant_id::text, user_id::text from responses where user_id is not null "
            "group by 1, 2 order by count(*) desc limit 1").fetchone()  # type: ignore[misc]
    page = httpx.get(f"http://{settings.host}:{settings.serving_port}/v1/tenants/{tenant}/users/"
                     f"{user}/events", params={"limit": 10}, timeout=10,
                     headers=_auth(settings, tenant)).json()
    assert page["events"], page
    times = [e["submitted_at"] for e in page["events"]]
    assert times == sorted(times, reverse=True)
    # another tenant's token, or no token, is refused
    other = next(t for t in published if t != tenant)
    url = f"http://{settings.host}:{settings.serving_port}/v1/tenants/{tenant}/counters"
    assert httpx.get(url, headers=_auth(settings, other), timeout=10).status_code == 403
    assert httpx.get(url, timeout=10).status_code == 401


def test_monitoring_is_green_after_the_run(green_run: Any) -> None:
    _, summary, text = green_run
    monitor = next(s for s in summary.stages if s.name == "monitor_pipeline")
    assert monitor.ok, text


def test_processor_killed_mid_replay_fails_clearly_then_rerun_loses_and_doubles_nothing(
        green_run: Any, e2e_stack: tuple[Settings, Any]) -> None:
    settings, first, text = green_run
    assert first.ok, text
    _, stack = e2e_stack
    bigger = settings.model_copy(update={"fixture_scale": 3})  # scale 2 plus a third tenant
    killer = threading.Thread(target=_kill_processor_once_busy, args=(settings, stack),
                              daemon=True)
    killer.start()
    failed, failed_text = _run(bigger)
    killer.join(timeout=60)
    assert not failed.ok, failed_text
    broken = failed.stages[-1]
    assert broken.name == "replay_fixtures", failed_text
    assert "processor" in broken.detail and "pulse-local up" in broken.detail, broken.detail

    report = stack.up()
    assert "processor" in report.restarted
    rerun, rerun_text = _run(bigger)
    assert rerun.ok, rerun_text
    _assert_warehouse_matches(bigger, expected_from_fixtures(fixtures_dir(bigger)))
    for tenant, events in _published_events(settings).items():
        assert _serving_counters(settings, tenant)["total"]["events"] == events, tenant


def _kill_processor_once_busy(settings: Settings, stack: Any) -> None:
    """SIGKILL the processor after the third tenant's first responses were stored."""
    record = process.read_pid(stack.pid_path("processor"))
    assert record is not None
    deadline = time.monotonic() + 120
    with psycopg.connect(settings.admin_dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("select count(*) from responses r join organizations o on "
                               "o.id = r.tenant_id where o.slug = 'tenant-0003'").fetchone()
            if row is not None and row[0] >= 50:
                os.kill(record.pid, signal.SIGKILL)
                return
            time.sleep(0.05)


def test_no_secret_in_logs_status_or_alerts_after_the_runs(
        green_run: Any, e2e_stack: tuple[Settings, Any], tmp_path: Path) -> None:
    """After the runs above (green, broken, rerun): no password, auth string, key, webhook
    secret or issued token in any log of the state directory, in `status --json` or in what
    the alert sinks wrote."""
    import subprocess
    import sys

    from pulse_local.monitoring.alerts import notify_success
    from pulse_local.serving.auth import issue_local_token, signing_key
    from pulse_local.testing.secret_scan import leaks, stack_secrets, state_logs

    settings, _, _ = green_run
    tenant = next(iter(_published_events(settings)))
    token = issue_local_token(signing_key(settings), tenant_id=uuid.UUID(tenant))
    answer = httpx.get(f"http://{settings.host}:{settings.serving_port}/v1/tenants/{tenant}/"
                       "counters", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code in (200, 404), answer.text  # the token went through the service
    # a notification through the stack's own sinks (log and file), as a flow sends one
    assert notify_success(settings, "etl_pipeline", {"steps": {"dbt": 1.0}}).ok
    secrets = stack_secrets(settings, tokens=[token])
    assert {"db admin password", "prefect auth string", "serving token key"} <= set(secrets)
    assert sum(name.startswith("webhook secret") for name in secrets) >= 2

    env = {**os.environ, **service_env(settings), "PYTHONPATH": os.pathsep.join(sys.path)}
    status = subprocess.run([sys.executable, "-m", "pulse_local.cli", "status", "--json"],
                            env=env, capture_output=True, text=True, timeout=180, check=False)
    assert json.loads(status.stdout), status.stderr
    # the monitor's checks and alerts (whatever fails after the runs above is alerted)
    monitor = subprocess.run([sys.executable, "-m", "pulse_local.monitoring", "--json"],
                             env=env, capture_output=True, text=True, timeout=300, check=False)
    assert json.loads(monitor.stdout)["alerts"], monitor.stderr
    texts = {**state_logs(settings), "status --json": status.stdout + status.stderr,
             "monitoring": monitor.stdout + monitor.stderr}
    assert any(where.endswith("processor.log") for where in texts)
    assert any("/alerts/" in where for where in texts), sorted(texts)
    assert leaks(texts, secrets) == []


def test_no_secret_in_any_file_of_the_state_directory(
        green_run: Any, e2e_stack: tuple[Settings, Any]) -> None:
    """After the runs: no secret in any file the stack keeps (raw bucket, warehouse, Prefect's
    data, run files, status files...), read as bytes, but where secrets belong: ``secrets/``
    (the stack's own, mode 0600), PostgreSQL's data directory (the OLTP database holds the
    webhook secrets, as Cloud SQL does on gcp) and the fixture sets' ``organizations.json``
    (the simulated Typeform side: it signs the deliveries, so it holds each tenant's secret,
    as Typeform does)."""
    from pulse_local.serving.auth import issue_local_token, signing_key
    from pulse_local.testing.secret_scan import stack_secrets

    settings, _, _ = green_run
    tenant = next(iter(_published_events(settings)))
    token = issue_local_token(signing_key(settings), tenant_id=uuid.UUID(tenant))
    answer = httpx.get(f"http://{settings.host}:{settings.serving_port}/v1/tenants/{tenant}/"
                       "counters", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code in (200, 404), answer.text
    secrets = {name: value.encode() for name, value in
               stack_secrets(settings, tokens=[token]).items() if value}
    assert sum(name.startswith("webhook secret") for name in secrets) >= 2
    state = settings.state_dir
    allowed = (state / "secrets", state / "postgres" / "data")
    files = [p for p in state.rglob("*") if p.is_file() and not p.is_symlink()
             and not any(p.is_relative_to(a) for a in allowed)
             and not (p.is_relative_to(state / "fixtures") and p.name == "organizations.json")]
    assert any(p.is_relative_to(settings.raw_bucket_dir) for p in files), (
        "the raw bucket's archive is among the files scanned")
    found = [f"{p.relative_to(state)}: {name}" for p in files
             for name, value in secrets.items() if value in _content(p)]
    assert found == []


def _content(path: Path) -> bytes:
    """A file's bytes; empty when a running service removed it meanwhile (a temporary file)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
