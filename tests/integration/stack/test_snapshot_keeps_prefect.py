"""Integration: `snapshot save` leaves Prefect's API server running across PostgreSQL's stop
and start (it reconnects to its database), stops and restarts the deployments runner, and
`restore` restarts both on the restored database (real PostgreSQL, Prefect server and
deployments runner on their own stack and free ports)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulse_local.config import Settings
from pulse_local.endpoints import prefect_api_url, prefect_auth_headers
from pulse_local.orchestration import deployments_ready
from pulse_local.stack import process, snapshot
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services
from pulse_local.testing.plugin import make_test_settings

pytestmark = pytest.mark.integration

SERVICES = {"postgres", "prefect", "deployments"}


@pytest.fixture()
def settings(tmp_path: Path) -> Iterator[Settings]:
    s = make_test_settings().model_copy(update={"snapshot_dir": tmp_path / "snapshots"})
    yield s
    NativeStack(s).down(save=False)
    shutil.rmtree(s.state_dir, ignore_errors=True)


def _pid(stack: NativeStack, name: str) -> int:
    record = process.read_pid(stack.pid_path(name))
    assert record is not None and record.alive(), f"{name} is not running"
    return record.pid


def _work_pools(settings: Settings) -> set[str]:
    """A Prefect API call that reads its database."""
    import httpx

    response = httpx.post(f"{prefect_api_url(settings)}/work_pools/filter", json={}, timeout=10,
                          headers=prefect_auth_headers(settings))
    response.raise_for_status()
    return {p["name"] for p in response.json()}


def test_save_keeps_prefect_running_and_restore_restarts_it(settings: Settings) -> None:
    stack = NativeStack(settings, [s for s in native_services(settings) if s.name in SERVICES])
    stack.up()
    prefect, runner, postgres = (_pid(stack, n) for n in ("prefect", "deployments", "postgres"))
    pools = _work_pools(settings)

    saved = snapshot.save(settings, "orchestration", stack=stack)
    assert "up" in saved.phases
    assert _pid(stack, "prefect") == prefect  # never stopped
    assert _pid(stack, "postgres") != postgres  # stopped for the copy and started again
    assert _pid(stack, "deployments") != runner  # a writer: stopped like the others
    assert _work_pools(settings) == pools  # the API reaches its database again
    deployments_ready(settings)
    assert {s.name for s in stack.status() if s.health == "healthy"} == SERVICES

    snapshot.restore(settings, "orchestration", stack=stack)
    assert _pid(stack, "prefect") != prefect  # its database was swapped: restarted
    deployments_ready(settings)
    assert _work_pools(settings) == pools
    assert {s.name for s in stack.status() if s.health == "healthy"} == SERVICES
