"""The `<flow>-gcp` registration against a real Prefect server that requires auth
(``PREFECT_SERVER_API_AUTH_STRING``: basic auth on every API route but health): the work pool
and the deployments are created only with the client's ``PREFECT_API_AUTH_STRING``, and each
deployment's job variables carry that credential by Secret Manager reference, never its value.
The server is a `prefect server start` of its own (SQLite in a temp dir, free port)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pulse_local.config import Settings
from pulse_local.errors import ConfigError
from pulse_local.orchestration import (
    DEPLOYMENTS,
    GCP_WORK_POOL,
    ensure_work_pool,
    register_gcp_deployments,
)

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(API URL, auth string) of a Prefect server that refuses unauthenticated calls."""
    home: Path = tmp_path_factory.mktemp("prefect-auth")
    port, auth = _free_port(), f"admin:{secrets.token_urlsafe(12)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_API_AUTH_STRING": auth,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
                "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port)})
    log = (home / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--no-services"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start: "
                                   + (home / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield api, auth
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _gcp_settings(**changes: object) -> Settings:
    return Settings(project="acme-data", raw_bucket="acme-data-raw",
                    run_service_account="pulse-flows@acme-data.iam.gserviceaccount.com",
                    cloudsql_instance="acme-data:europe-west1:pulse", **changes)


def test_the_server_refuses_a_client_without_credentials(auth_server: tuple[str, str]) -> None:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, temporary_settings

    api, _ = auth_server
    assert httpx.get(f"{api}/work_pools/{GCP_WORK_POOL.name}", timeout=10).status_code == 401
    with temporary_settings(restore_defaults={PREFECT_API_AUTH_STRING, PREFECT_API_KEY}), \
            pytest.raises(ConfigError, match="answered 401.*PREFECT_API_AUTH_STRING"):
        ensure_work_pool(api)


def test_gcp_deployments_register_with_auth_and_pass_it_by_reference(
        auth_server: tuple[str, str]) -> None:
    from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

    api, auth = auth_server
    run_secrets = {**Settings().run_secrets, "PREFECT_API_AUTH_STRING": "prefect-auth-string"}
    with temporary_settings(updates={PREFECT_API_AUTH_STRING: auth}):
        names = register_gcp_deployments(_gcp_settings(run_secrets=run_secrets), api)
        assert ensure_work_pool(api) is False  # the pool exists now: found with auth
    assert len(names) == len(DEPLOYMENTS)

    client = httpx.Client(base_url=api, timeout=10, auth=tuple(auth.split(":", 1)))
    pool = client.get(f"/work_pools/{GCP_WORK_POOL.name}").json()
    assert pool["type"] == "cloud-run-v2"
    deployments = {d["name"]: d for d in client.post("/deployments/filter",
                                                     json={"limit": 200}).json()}
    for spec in DEPLOYMENTS:
        variables = deployments[f"{spec.flow}-gcp"]["job_variables"]
        assert variables["service_account_name"] == "pulse-flows@acme-data.iam.gserviceaccount.com"
        assert variables["cloudsql_instances"] == ["acme-data:europe-west1:pulse"]
        assert variables["env_from_secrets"]["PREFECT_API_AUTH_STRING"] == {
            "secret": "prefect-auth-string", "version": "latest"}
        assert variables["env"]["PULSE_PROJECT"] == "acme-data"
        assert auth.split(":", 1)[1] not in str(variables)


def test_registration_with_auth_but_no_secret_for_the_jobs_is_refused_before_any_call(
        auth_server: tuple[str, str]) -> None:
    from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

    from pulse_local.errors import GcpSettingMissing

    api, auth = auth_server
    with temporary_settings(updates={PREFECT_API_AUTH_STRING: auth}), \
            pytest.raises(GcpSettingMissing, match="PREFECT_API_AUTH_STRING is set"):
        register_gcp_deployments(_gcp_settings(), api)
