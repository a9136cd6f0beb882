"""The Cloud Run jobs of the ``<flow>-gcp`` deployments, rendered offline.

Cloud Run has no emulator. What a flow run would get on GCP is the job prefect-gcp's
``cloud-run-v2`` worker builds from its base job template and the deployment's job variables;
this module renders exactly that (prefect-gcp's own template and configuration class, nothing
sent anywhere) and checks the job carries what the gcp code needs to run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pulse_local.config import Settings

#: What a flow-run job must carry, and why.
REQUIREMENTS = {
    "image": "the container image of this repository",
    "project": "PULSE_PROJECT (the project every Google client works in)",
    "region": "the declared region, not prefect-gcp's default us-central1",
    "bigtable instance": "PULSE_BIGTABLE_INSTANCE",
    "bucket": "PULSE_RAW_BUCKET",
    "service account": "a service account of its own (else the Compute default one)",
    "memory": "a memory limit for the flow run's container",
    "secrets by reference": "PULSE_DATABASE_URL and PULSE_ADMIN_DATABASE_URL from Secret "
                            "Manager, never as plain environment values",
}
SECRET_SETTINGS = ("PULSE_DATABASE_URL", "PULSE_ADMIN_DATABASE_URL")


class _NoApi:
    """Stands in for a Prefect client: the declared variables reference no block or variable,
    so rendering needs none (an attribute access here would be a bug, and raises)."""


def render_job(job_variables: dict[str, Any]) -> Any:
    """prefect-gcp's ``CloudRunWorkerJobV2Configuration`` for `job_variables`, from the
    ``cloud-run-v2`` worker's default base job template."""
    from prefect_gcp.credentials import GcpCredentials
    from prefect_gcp.workers.cloud_run_v2 import (
        CloudRunWorkerJobV2Configuration,
        CloudRunWorkerV2,
    )

    template = CloudRunWorkerV2.get_default_base_job_template()
    # The worker's credentials block (its project, its token) lives in the work pool on GCP;
    # building one here would look up Application Default Credentials, so the render gets an
    # empty one without that lookup. The job's project is checked in its environment.
    values = {"credentials": GcpCredentials.model_construct(project=None), **job_variables}
    return asyncio.run(CloudRunWorkerJobV2Configuration.from_template_and_values(
        template, values, client=_NoApi()))


def missing(config: Any, settings: Settings) -> list[str]:
    """The `REQUIREMENTS` a rendered job does not meet."""
    container = config.job_body["template"]["template"]["containers"][0]
    env = {**(config.env or {})}
    secrets = set(config.env_from_secrets or {})
    gaps = []
    if not container.get("image") or "PROJECT" in str(container.get("image")):
        gaps.append("image")
    if env.get("PULSE_PROJECT") != settings.project:
        gaps.append("project")
    if config.region != settings.location:
        gaps.append("region")
    if "PULSE_BIGTABLE_INSTANCE" not in env:
        gaps.append("bigtable instance")
    if "PULSE_RAW_BUCKET" not in env:
        gaps.append("bucket")
    if not config.job_body["template"]["template"].get("serviceAccount"):
        gaps.append("service account")
    if not container.get("resources", {}).get("limits", {}).get("memory"):
        gaps.append("memory")
    if not set(SECRET_SETTINGS) <= secrets or set(SECRET_SETTINGS) & set(env):
        gaps.append("secrets by reference")
    return gaps


def check_gcp_jobs(settings: Settings) -> dict[str, list[str]]:
    """Render every ``<flow>-gcp`` deployment's job; return its unmet requirements by flow."""
    from pulse_local.orchestration import DEPLOYMENTS, gcp_job_variables

    variables = gcp_job_variables(settings)
    return {d.flow: missing(render_job(variables), settings) for d in DEPLOYMENTS}
