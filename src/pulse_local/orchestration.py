"""The project's Prefect flows (thin modules in `flows/`) and their deployments.

Deployments are defined once, here, for both profiles: ``<flow>-<profile>``. Locally the
`deployments` service of the stack serves them (a process running `prefect.serve`), so they
appear in the Prefect UI after `make up` and run from it.
"""

from __future__ import annotations

import importlib
import socket
import sys
import time
from typing import Any

import httpx

from pulse_local.config import PROJECT_ROOT, Settings

# The declarations (flows/deployments.yaml) are a module of their own, below this one and
# `gcp_jobs` (re-exported here for callers).
from pulse_local.deployments import (
    DEPLOYMENTS,
    DEPLOYMENTS_FILE,
    FLOWS_DIR,
    GCP_WORK_POOL,
    DeploymentSpec,
    WorkPoolSpec,
    _load_declarations,
)
from pulse_local.errors import ConfigError, PulseError

__all__ = ["DEPLOYMENTS", "DEPLOYMENTS_FILE", "FLOWS_DIR", "GCP_WORK_POOL", "DeploymentSpec",
           "WorkPoolSpec", "_load_declarations"]


def deployment_name(flow: str, profile: str) -> str:
    return f"{flow}-{profile}"


def load_flow(name: str) -> Any:
    """Import `flows/<name>.py` and return its flow object of the same name."""
    if not (FLOWS_DIR / f"{name}.py").is_file():
        raise PulseError(f"no flow {name!r} in {FLOWS_DIR}: run pulse-local from its repository")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    module = importlib.import_module(f"flows.{name}")
    return getattr(module, name)


def registered_deployments(api_url: str, timeout: float = 2.0,
                           headers: dict[str, str] | None = None) -> set[str]:
    """Names (``flow/deployment``) of the deployments the Prefect API knows."""
    response = httpx.post(f"{api_url}/deployments/filter", json={"limit": 200}, timeout=timeout,
                          headers=headers)
    response.raise_for_status()
    flows = httpx.post(f"{api_url}/flows/filter", json={"limit": 200}, timeout=timeout,
                       headers=headers)
    flows.raise_for_status()
    flow_names = {f["id"]: f["name"] for f in flows.json()}
    return {f"{flow_names.get(d['flow_id'], '?')}/{d['name']}" for d in response.json()}


def deployments_ready(settings: Settings, timeout: float = 2.0) -> None:
    """Probe: every deployment of this profile is registered (raises otherwise)."""
    from pulse_local.endpoints import prefect_api_url, prefect_auth_headers

    have = registered_deployments(prefect_api_url(settings), timeout,
                                  prefect_auth_headers(settings))
    want = {f"{d.flow}/{deployment_name(d.flow, settings.profile)}" for d in DEPLOYMENTS}
    missing = want - have
    if missing:
        raise PulseError(f"deployments not registered yet: {', '.join(sorted(missing))}")


def _port_open(url: httpx.URL) -> bool:
    """Whether something accepts TCP connections at the URL's host and port (a bare connect:
    far cheaper than an HTTP request while the server is still importing)."""
    try:
        with socket.create_connection((url.host, url.port or 80), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_for_prefect_api(api_url: str, api_wait: float) -> None:
    """Block until Prefect's `/health` answers true, or raise naming the URL and the last error.

    The stack starts the deployments server beside Prefect, not after it, so this waits while
    Prefect imports (seconds): a connect attempt every 50 ms, one reused HTTP client for the
    health request once the port is open (a fresh `httpx.get` cost ~24 ms of CPU each)."""
    url = httpx.URL(api_url)
    deadline = time.monotonic() + api_wait
    last_error = "its port did not accept connections"
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if _port_open(url):
                try:
                    if client.get(f"{api_url}/health").json() is True:
                        return
                    last_error = "/health did not answer true"
                except (httpx.HTTPError, ValueError) as err:
                    last_error = f"/health: {err}"
            time.sleep(0.05)
    raise PulseError(f"Prefect API at {api_url} did not answer within {api_wait:.0f} s "
                     f"({last_error}); see `pulse-local logs prefect`")


def serve_deployments(settings: Settings, api_wait: float = 120.0) -> None:
    """Register this profile's deployments and run their flows when triggered (blocks)."""
    from prefect import serve

    from pulse_local.endpoints import prefect_api_url

    _wait_for_prefect_api(prefect_api_url(settings), api_wait)
    deployments = [
        load_flow(d.flow).to_deployment(
            name=deployment_name(d.flow, settings.profile),
            cron=d.cron,
            description=d.description,
            tags=[settings.profile],
        )
        for d in DEPLOYMENTS
    ]
    # No pausing of the schedules on the way out (Prefect's default): `down` stops the Prefect
    # server right after, and every start registers the deployments again. Pausing them cost
    # one API call each while `down` waited (the process was killed at its 2.5 s grace).
    serve(*deployments, print_starting_message=False, pause_on_shutdown=False)


def gcp_job_variables(settings: Settings, pool: WorkPoolSpec = GCP_WORK_POOL) -> dict[str, Any]:
    """The job variables of every ``<flow>-gcp`` deployment, built from `settings` and the
    pool's declared ones (`pulse_local.gcp_jobs.gcp_job_variables`; `GcpSettingMissing` when a
    setting a job needs is unset)."""
    from pulse_local.gcp_jobs import gcp_job_variables as build

    return build(settings, pool.job_variables)


def prefect_auth_headers() -> dict[str, str]:
    """The Authorization header Prefect's own client sends, from the same settings:
    ``PREFECT_API_AUTH_STRING`` (basic auth of a self-hosted server) first, else
    ``PREFECT_API_KEY`` (Prefect Cloud, bearer); none when neither is set."""
    import base64

    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

    auth_string = PREFECT_API_AUTH_STRING.value()
    if auth_string:
        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    api_key = PREFECT_API_KEY.value()
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    return {}


def _checked(response: httpx.Response, api_url: str) -> httpx.Response:
    """`response`, or a `ConfigError` when the Prefect API refused our credentials."""
    if response.status_code in (401, 403):
        raise ConfigError(
            f"the Prefect API at {api_url} answered {response.status_code}: set "
            "PREFECT_API_AUTH_STRING (a server with PREFECT_SERVER_API_AUTH_STRING) or "
            "PREFECT_API_KEY (Prefect Cloud) to valid credentials")
    return response


def ensure_work_pool(api_url: str, pool: WorkPoolSpec = GCP_WORK_POOL) -> bool:
    """Create the gcp work pool with Prefect's default job template for its type when it does
    not exist; return True when it was created. The template comes from the Prefect server's
    bundled worker metadata, so this works offline. Authenticates as Prefect's client does
    (`prefect_auth_headers`); refused credentials are a `ConfigError`."""
    with httpx.Client(base_url=api_url, headers=prefect_auth_headers(), timeout=30) as api:
        found = _checked(api.get(f"/work_pools/{pool.name}"), api_url)
        if found.status_code == 200:
            return False
        metadata = _checked(api.get("/collections/views/aggregate-worker-metadata"), api_url)
        metadata.raise_for_status()
        template = next((worker.get("default_base_job_configuration")
                         for package in metadata.json().values()
                         for worker in package.values() if worker.get("type") == pool.type), None)
        if template is None:
            raise ConfigError(f"Prefect does not know the work pool type {pool.type!r}: fix "
                              f"gcp_work_pool.type in {DEPLOYMENTS_FILE}")
        created = _checked(api.post("/work_pools/", json={
            "name": pool.name, "type": pool.type, "base_job_template": template,
            "description": "Cloud Run jobs for the pulse-local gcp deployments"}), api_url)
        created.raise_for_status()
    return True


def register_gcp_deployments(settings: Settings, api_url: str) -> list[str]:
    """Register every ``<flow>-gcp`` deployment on the GCP work pool at the Prefect API
    `api_url` (Prefect Cloud or a self-hosted server); no code change, no image build here:
    the image named in the job variables is built by CI from compose/Dockerfile."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.settings import PREFECT_API_URL, temporary_settings

    variables = gcp_job_variables(settings)  # a missing setting fails before any call
    ensure_work_pool(api_url)
    names = []
    with temporary_settings(updates={PREFECT_API_URL: api_url}), \
            get_client(sync_client=True) as client:
        for spec in DEPLOYMENTS:
            flow = load_flow(spec.flow)
            name = deployment_name(spec.flow, "gcp")
            schedules = [DeploymentScheduleCreate(schedule=CronSchedule(cron=spec.cron, timezone="UTC"))
                         ] if spec.cron else []
            client.create_deployment(
                flow_id=client.create_flow_from_name(flow.name),
                name=name,
                work_pool_name=GCP_WORK_POOL.name,
                entrypoint=f"flows/{spec.flow}.py:{spec.flow}",
                # The image holds the repository at /app (compose/Dockerfile).
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}],
                job_variables=variables,
                schedules=schedules,
                parameter_openapi_schema=flow.parameters.model_dump(),
                description=spec.description,
                tags=["gcp"],
            )
            names.append(f"{flow.name}/{name}")
    return names


def main() -> None:
    """``python -m pulse_local.orchestration``: serve this profile's deployments (the flows'
    runs inherit this process's environment, so it must point at the emulators on local)."""
    import sys

    from pulse_local.config import load_settings
    from pulse_local.endpoints import require_emulator_endpoints

    try:
        settings = load_settings()
        require_emulator_endpoints(settings, "python -m pulse_local.orchestration",
                                   pubsub=True, bigtable=True)
        serve_deployments(settings)
    except PulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
