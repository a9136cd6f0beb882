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
    "region": "PULSE_REGION / PULSE_LOCATION, not prefect-gcp's default us-central1",
    "bigtable instance": "PULSE_BIGTABLE_INSTANCE",
    "bucket": "PULSE_RAW_BUCKET",
    "service account": "PULSE_RUN_SERVICE_ACCOUNT (else the Compute default one)",
    "cloud sql": "PULSE_CLOUDSQL_INSTANCE mounted at /cloudsql (the DSNs' socket)",
    "memory": "a memory limit for the flow run's container",
    "secrets by reference": "PULSE_DATABASE_URL and PULSE_ADMIN_DATABASE_URL from Secret "
                            "Manager, and no secret as a plain environment value",
}
SECRET_SETTINGS = ("PULSE_DATABASE_URL", "PULSE_ADMIN_DATABASE_URL")


class _NoApi:
    """Stands in for a Prefect client: the declared variables reference no block or variable,
    so rendering needs none (an attribute access here would be a bug, and raises)."""


def render_job(job_variables: dict[str, Any], flow: str | None = None) -> Any:
    """prefect-gcp's ``CloudRunWorkerJobV2Configuration`` for `job_variables`, from the
    ``cloud-run-v2`` worker's default base job template; with `flow`, prepared for a run of it
    as the worker prepares it before creating the Cloud Run job (offline: nothing is sent)."""
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
    config = asyncio.run(CloudRunWorkerJobV2Configuration.from_template_and_values(
        template, values, client=_NoApi()))
    if flow is not None:
        # What the worker does next for a run of `flow`: env (plain and by secret reference),
        # the Cloud SQL volume, command, timeout, labels, all into the job body.
        from prefect.client.schemas.objects import Flow, FlowRun

        prefect_flow = Flow(name=flow, labels={})
        config.prepare_for_flow_run(flow_run=FlowRun(flow_id=prefect_flow.id, name=f"{flow}-run"),
                                    flow=prefect_flow)
    return config


def _image_ok(image: str, settings: Settings) -> bool:
    """`PULSE_IMAGE` when set, else an image of the project's registry, placeholders filled."""
    if settings.image:
        return image == settings.image
    return bool(image) and "{" not in image and "PROJECT" not in image \
        and f"/{settings.project}/" in image


def missing(config: Any, settings: Settings) -> list[str]:
    """The `REQUIREMENTS` a rendered job does not meet (read from the rendered Cloud Run job
    body, the thing Cloud Run receives)."""
    from pulse_local.gcp_jobs import SECRET_ENV, run_region

    template = config.job_body["template"]["template"]
    container = template["containers"][0]
    entries = container.get("env") or []
    env = {e["name"]: e.get("value") for e in entries if "value" in e}
    by_reference = {e["name"] for e in entries
                    if e.get("valueSource", {}).get("secretKeyRef", {}).get("secret")}
    gaps = []
    if not _image_ok(str(container.get("image") or ""), settings):
        gaps.append("image")
    if env.get("PULSE_PROJECT") != settings.project:
        gaps.append("project")
    if config.region != run_region(settings):
        gaps.append("region")
    if env.get("PULSE_BIGTABLE_INSTANCE") != settings.bigtable_instance:
        gaps.append("bigtable instance")
    if env.get("PULSE_RAW_BUCKET") != settings.raw_bucket:
        gaps.append("bucket")
    if not template.get("serviceAccount"):
        gaps.append("service account")
    mounts = {m.get("name") for m in container.get("volumeMounts") or []}
    instances = [i for v in template.get("volumes") or []
                 for i in (v.get("cloudSqlInstance") or {}).get("instances") or []]
    if not instances or "cloudsql" not in mounts:
        gaps.append("cloud sql")
    if not container.get("resources", {}).get("limits", {}).get("memory"):
        gaps.append("memory")
    if not set(SECRET_SETTINGS) <= by_reference or set(env) & SECRET_ENV:
        gaps.append("secrets by reference")
    return gaps


def check_gcp_jobs(settings: Settings) -> dict[str, list[str]]:
    """Render every ``<flow>-gcp`` deployment's job; return its unmet requirements by flow."""
    from pulse_local.orchestration import DEPLOYMENTS, gcp_job_variables

    variables = gcp_job_variables(settings)
    return {d.flow: missing(render_job(variables, d.flow), settings) for d in DEPLOYMENTS}


def check_consumer_pool(settings: Settings) -> list[str]:
    """The streaming consumer's Cloud Run worker pool (`gcp_jobs.consumer_worker_pool_request`,
    parsed into google-cloud-run's own message): the `REQUIREMENTS` it does not meet. It holds
    no database secret and no Cloud SQL mount, so those two are not asked of it."""
    from pulse_local.gcp_jobs import SECRET_ENV, consumer_worker_pool_request

    pool = consumer_worker_pool_request(settings).worker_pool
    container = pool.template.containers[0]
    env = {e.name: e.value for e in container.env if e.value}
    gaps = []
    if not _image_ok(container.image, settings):
        gaps.append("image")
    if env.get("PULSE_PROJECT") != settings.project:
        gaps.append("project")
    if env.get("PULSE_BIGTABLE_INSTANCE") != settings.bigtable_instance:
        gaps.append("bigtable instance")
    if env.get("PULSE_RAW_BUCKET") != settings.raw_bucket:
        gaps.append("bucket")
    if not pool.template.service_account:
        gaps.append("service account")
    if not container.resources.limits.get("memory"):
        gaps.append("memory")
    if set(env) & SECRET_ENV:
        gaps.append("secrets by reference")
    return gaps
