"""Deployments against the session's real Prefect server: the stack's `<flow>-local` ones are
served with their schedules, and the `<flow>-gcp` ones register on the Cloud Run work pool
declared in flows/deployments.yaml without any code change (offline: no image is built)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pulse_local.config import Settings
from pulse_local.endpoints import prefect_auth_headers
from pulse_local.orchestration import (
    DEPLOYMENTS,
    GCP_WORK_POOL,
    ensure_work_pool,
    register_gcp_deployments,
)
from pulse_local.stack.services import prefect_api_url

pytestmark = pytest.mark.integration


def _deployments(api: str) -> dict[str, dict[str, Any]]:
    found = httpx.post(f"{api}/deployments/filter", json={"limit": 200}, timeout=10,
                       headers=_HEADERS)
    found.raise_for_status()
    return {d["name"]: d for d in found.json()}


#: The Prefect API's basic authentication (set by the `auth` fixture).
_HEADERS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def auth(pulse_settings: Settings) -> None:
    _HEADERS.update(prefect_auth_headers(pulse_settings))


def test_local_deployments_are_served_with_the_declared_schedules(
        pulse_stack: Any, pulse_settings: Settings) -> None:
    have = _deployments(prefect_api_url(pulse_settings))
    for spec in DEPLOYMENTS:
        deployment = have[f"{spec.flow}-local"]
        crons = [s["schedule"].get("cron") for s in deployment["schedules"]]
        assert crons == ([spec.cron] if spec.cron else []), spec.flow


@pytest.fixture()
def gcp_registration_cleanup(pulse_settings: Settings) -> Any:
    """Remove what the gcp registration put on the session's server (its UI lists the first ten
    deployments only, and the UI test expects the stack's own there)."""
    api = prefect_api_url(pulse_settings)
    yield api
    for name, deployment in _deployments(api).items():
        if name.endswith("-gcp"):
            httpx.delete(f"{api}/deployments/{deployment['id']}", timeout=10,
                         headers=_HEADERS).raise_for_status()
    httpx.delete(f"{api}/work_pools/{GCP_WORK_POOL.name}", timeout=10, headers=_HEADERS)


def test_gcp_deployments_register_on_the_cloud_run_work_pool(
        pulse_stack: Any, pulse_settings: Settings, gcp_registration_cleanup: str) -> None:
    api = gcp_registration_cleanup
    gcp = pulse_settings.model_copy(update={
        "project": pulse_settings.project, "raw_bucket": "acme-raw",
        "run_service_account": "pulse-flows@acme.iam.gserviceaccount.com",
        "cloudsql_instance": "acme:europe-west1:pulse",
        # this Prefect API asks for basic auth: the Cloud Run jobs get it from Secret Manager
        "run_secrets": {**pulse_settings.run_secrets,
                        "PREFECT_API_AUTH_STRING": "pulse-prefect-auth"}})
    names = register_gcp_deployments(gcp, api)
    assert len(names) == len(DEPLOYMENTS)
    pool = httpx.get(f"{api}/work_pools/{GCP_WORK_POOL.name}", timeout=10,
                     headers=_HEADERS).json()
    assert pool["type"] == "cloud-run-v2"
    assert "region" in pool["base_job_template"]["variables"]["properties"]
    assert ensure_work_pool(api) is False  # a second registration creates no second pool

    have = _deployments(api)
    for spec in DEPLOYMENTS:
        deployment = have[f"{spec.flow}-gcp"]
        assert deployment["work_pool_name"] == GCP_WORK_POOL.name
        assert deployment["entrypoint"] == f"flows/{spec.flow}.py:{spec.flow}"
        assert deployment["job_variables"]["image"].startswith("europe-west1-docker.pkg.dev/"
                                                               f"{pulse_settings.project}/")
        assert deployment["job_variables"]["service_account_name"] == \
            "pulse-flows@acme.iam.gserviceaccount.com"
        assert deployment["job_variables"]["env_from_secrets"]["PULSE_DATABASE_URL"] == {
            "secret": "pulse-database-url", "version": "latest"}
        crons = [s["schedule"].get("cron") for s in deployment["schedules"]]
        assert crons == ([spec.cron] if spec.cron else []), spec.flow
    # registering again updates in place: still one deployment per name
    register_gcp_deployments(gcp, api)
    names_after = [d for d in _deployments(api) if d.endswith("-gcp")]
    assert len(names_after) == len(DEPLOYMENTS)
