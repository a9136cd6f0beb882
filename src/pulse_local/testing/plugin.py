"""pytest plugin: the whole local stack once per test session, and clients for each service.

Installed with pulse-local (entry point ``pytest11``), so a user's repository gets it too::

    def test_roundtrip(pulse_settings, pg_app):
        pg_app.execute("select 1")

The stack runs in a fresh state directory on free ports, so it never collides with a stack
started by `make up`: natively when no Docker daemon answers, else through testcontainers and the
same compose file (``PULSE_TEST_STACK=native|docker|auto`` forces a mode; default auto).
Set ``PULSE_TEST_KEEP=1`` to leave the stack running after the session (for debugging).
Set ``PULSE_TEST_SNAPSHOT=NAME`` (a snapshot of ``pulse-local snapshot list``, or the path to
a ``.tar.zst``) to start the session's stack from that snapshot instead of an empty state
(native stack only): a known dataset in seconds instead of replaying fixtures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulse_local import secret_files
from pulse_local.config import Settings, load_settings, stack_port_fields
from pulse_local.stack.process import free_port


def _test_state_dir() -> Path:
    """A fresh state directory. As root, PostgreSQL runs as `postgres` and must traverse it,
    so it is made searchable (not readable) by others."""
    path = Path(tempfile.mkdtemp(prefix="pulse-test-"))
    path.chmod(0o711)
    return path


#: One Prefect API auth string for every stack a test session starts (each stack still
#: generates its own role passwords). Prefect reads its settings once per process, so a test
#: process talking to the session's stack and to stacks of its own must hold the one string
#: all of them accept: the one this process already has (a user's own Prefect setting is left
#: alone), else one generated for the session, put in the environment before Prefect loads.
_SESSION_PREFECT_AUTH = secret_files.random_auth_string()


def _session_prefect_auth() -> str:
    return os.environ.get("PREFECT_API_AUTH_STRING") or _SESSION_PREFECT_AUTH


def pytest_configure(config: pytest.Config) -> None:
    """Give this process the session's Prefect auth string before anything imports Prefect."""
    os.environ.setdefault("PREFECT_API_AUTH_STRING", _SESSION_PREFECT_AUTH)


def _worker_slot() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker (``gw0``, ``gw1`` ...); (0, 1) without xdist."""
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return index % count, count


def stack_ports(fields: tuple[str, ...]) -> dict[str, int]:
    """A different free port for each field. Under pytest-xdist worker gwN of M keeps only ports
    whose ``port // 2`` is N modulo M: two workers starting stacks at the same moment never pick
    the same port (a port is free when picked, taken only when its service starts). Not the
    port's own parity: Linux hands out odd ports to ``bind(port 0)`` and keeps even ones for
    ``connect``."""
    index, count = _worker_slot()
    ports: dict[str, int] = {}
    for field in fields:
        for _ in range(10_000):
            port = free_port()
            if port not in ports.values() and (port // 2) % count == index:
                ports[field] = port
                break
        else:
            raise RuntimeError(f"no free port for {field} in worker {index} of {count} after "
                               "10,000 tries: free some ports or run fewer test workers")
    return ports


def make_test_settings() -> Settings:
    """Settings for an isolated stack: own state directory, free ports.

    Addresses that the environment may carry from another stack (the session's, or a user's
    `eval "$(pulse-local env)"`) are cleared, so every client derives them from these ports.
    The stack's secrets are generated at once (as its `up` would), so `service_env` of these
    settings, taken before `up`, already carries its own passwords and Prefect auth string."""
    from pulse_local.stack.credentials import prepare_stack_secrets

    mode = os.environ.get("PULSE_TEST_STACK", "auto")
    settings = load_settings(
        database_url=None,
        admin_database_url=None,
        db_admin_password=None,
        db_app_password=None,
        pubsub_emulator_host=None,
        bigtable_emulator_host=None,
        prefect_api_url=None,
        profile="local",
        stack=mode,
        state_dir=_test_state_dir(),
        # a free port for every service port of the stack (`config.stack_port` fields)
        **stack_ports(stack_port_fields()),
    )
    secret_files.ensure_secret(settings.state_dir, secret_files.PREFECT_API_AUTH,
                               _session_prefect_auth)
    prepare_stack_secrets(settings, {"postgres", "prefect"})
    return settings


@pytest.fixture(scope="session")
def pulse_settings() -> Iterator[Settings]:
    """Settings of the session's stack; the environment points every client at it."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from pulse_local.stack.services import service_env

    settings = make_test_settings()
    saved = dict(os.environ)
    env = service_env(settings)
    os.environ.update(env)
    try:
        # Prefect reads its settings once, when a test first imports it (maybe before this
        # fixture): the session stack's API and auth string replace them for the session
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"],
                                         PREFECT_API_AUTH_STRING: env.get("PREFECT_API_AUTH_STRING")}):
            yield settings
    finally:
        os.environ.clear()
        os.environ.update(saved)


def flush_prefect_logs() -> None:
    """Send buffered flow-run logs while the Prefect API still runs (if Prefect was used)."""
    import sys

    if "prefect.logging.handlers" in sys.modules:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)


@pytest.fixture(scope="session")
def pulse_stack(pulse_settings: Settings) -> Iterator[Any]:
    """The running stack (native processes here; containers when asked and Docker answers)."""
    from pulse_local.stack import stack_for
    from pulse_local.stack.native import NativeStack

    stack = stack_for(pulse_settings)
    try:
        if name := os.environ.get("PULSE_TEST_SNAPSHOT"):
            start_from_snapshot(pulse_settings, stack, name)
        else:
            stack.up()
        yield stack
    finally:
        if os.environ.get("PULSE_TEST_KEEP") != "1":
            flush_prefect_logs()
            # the state directory is deleted next: nothing to save
            if isinstance(stack, NativeStack):  # mode "native"
                stack.down(save=False)
            else:
                stack.down()
            shutil.rmtree(pulse_settings.state_dir, ignore_errors=True)


def start_from_snapshot(settings: Settings, stack: Any, ref: str) -> None:
    """Restore snapshot `ref` into the session's (empty) state directory and start the stack
    on it. A name is looked up in the user's snapshot directory (PULSE_SNAPSHOT_DIR, else
    ``.pulse-snapshots/`` beside their state directory), not the session's temporary one."""
    from pulse_local.config import load_settings
    from pulse_local.errors import SnapshotError
    from pulse_local.stack import snapshot

    if stack.mode != "native":
        raise SnapshotError("PULSE_TEST_SNAPSHOT needs the native stack: set "
                            "PULSE_TEST_STACK=native")
    path = snapshot.resolve(load_settings(), ref)
    snapshot.restore(settings, str(path), stack=stack)


@pytest.fixture()
def pg_app(pulse_stack: Any, pulse_settings: Settings) -> Iterator[Any]:
    """A psycopg connection as the application role (row-level security applies)."""
    import psycopg

    with psycopg.connect(pulse_settings.app_dsn()) as conn:
        yield conn


@pytest.fixture()
def pg_admin(pulse_stack: Any, pulse_settings: Settings) -> Iterator[Any]:
    """A psycopg connection as the owner role (autocommit)."""
    import psycopg

    with psycopg.connect(pulse_settings.admin_dsn(), autocommit=True) as conn:
        yield conn


@pytest.fixture()
def pubsub_publisher(pulse_stack: Any) -> Iterator[Any]:
    """An official Pub/Sub PublisherClient pointed at the session's emulator."""
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    yield client
    client.transport.close()


@pytest.fixture()
def pubsub_subscriber(pulse_stack: Any) -> Iterator[Any]:
    """An official Pub/Sub SubscriberClient pointed at the session's emulator."""
    from google.cloud import pubsub_v1

    client = pubsub_v1.SubscriberClient()
    yield client
    client.close()


@pytest.fixture()
def bigtable_instance(pulse_stack: Any, pulse_settings: Settings) -> Iterator[Any]:
    """An official Bigtable Instance (admin enabled) on the session's emulator."""
    from google.cloud import bigtable

    client = bigtable.Client(project=pulse_settings.project, admin=True)
    yield client.instance(pulse_settings.bigtable_instance)
    client.close()


@pytest.fixture(scope="session")
def serving_token(pulse_settings: Settings) -> Any:
    """``serving_token(tenant_id)`` or ``serving_token(operator=True)``: a bearer token the
    session's serving API accepts (signed with the stack's key, as `pulse-local token`)."""
    from pulse_local.serving.auth import issue_local_token, signing_key

    def issue(tenant_id: Any = None, *, operator: bool = False, ttl_seconds: int = 900) -> str:
        return issue_local_token(signing_key(pulse_settings), tenant_id=tenant_id,
                                 operator=operator, ttl_seconds=ttl_seconds)

    return issue


@pytest.fixture(scope="session")
def serving_headers(serving_token: Any) -> Any:
    """``serving_headers(tenant_id)``: the ``Authorization`` header for that tenant's reads."""

    def headers(tenant_id: Any = None, *, operator: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {serving_token(tenant_id, operator=operator)}"}

    return headers


@pytest.fixture()
def duckdb_conn(tmp_path: Path) -> Iterator[Any]:
    """A DuckDB connection on a fresh database file."""
    import duckdb

    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield conn
    conn.close()


@pytest.fixture()
def prefect_client(pulse_stack: Any) -> Iterator[Any]:
    """A synchronous Prefect client on the session's Prefect API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client
