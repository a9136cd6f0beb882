"""What the gcp deployments run with on Cloud Run, built from the settings in one place.

Every ``<flow>-gcp`` deployment's job variables (prefect-gcp's ``cloud-run-v2`` worker) and the
streaming consumer's Cloud Run worker pool come from `gcp_job_variables`: the image, project,
region, Bigtable instance, raw bucket, service account, Cloud SQL instance, memory and CPU, and
the secrets as Secret Manager references. A secret's value never enters a job variable: the
DSNs, the alert webhook URL and Prefect's credentials are ``env_from_secrets`` entries, which
Cloud Run resolves when the container starts (``valueSource.secretKeyRef``).

A gcp setting a job needs and that is unset raises `GcpSettingMissing` naming the variable,
before any call to Prefect or Google.
"""

from __future__ import annotations

import re
from typing import Any

from pulse_local.config import Settings
from pulse_local.errors import ConfigError, GcpSettingMissing

#: Environment variables whose values are secrets: a job gets them from Secret Manager only.
SECRET_ENV = frozenset({
    "PULSE_DATABASE_URL", "PULSE_ADMIN_DATABASE_URL", "PULSE_DB_APP_PASSWORD",
    "PULSE_DB_ADMIN_PASSWORD", "PULSE_ALERT_WEBHOOK_URL", "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
})
#: The secrets every job needs (the Cloud SQL DSNs of both roles).
REQUIRED_SECRETS = ("PULSE_DATABASE_URL", "PULSE_ADMIN_DATABASE_URL")
#: Prefect's client credentials: a job that reports to an authenticated API needs the same.
PREFECT_CREDENTIALS = ("PREFECT_API_AUTH_STRING", "PREFECT_API_KEY")

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_CLOUDSQL = re.compile(r"^[a-z][a-z0-9:.-]*:[a-z0-9-]+:[a-z][a-z0-9-]*$")
_SERVICE_ACCOUNT = re.compile(r"^[^@\s]+@[^@\s]+\.iam\.gserviceaccount\.com$")
_SECRET = re.compile(r"^(projects/[^/]+/secrets/)?[A-Za-z0-9_-]{1,255}$")


def _required(settings: Settings, field: str, variable: str, purpose: str) -> Any:
    """The value of `field`, or `GcpSettingMissing` naming `variable` when it is unset."""
    value = getattr(settings, field)
    if value in (None, "") or (field in {"project", "raw_bucket"}
                               and field not in settings.model_fields_set):
        raise GcpSettingMissing(
            f"{variable} is not set: the gcp deployments' Cloud Run jobs need {purpose}. Set "
            f"{variable} (environment or .env), then run `pulse-local deployments register` (or "
            "`consumer-pool`) again")
    return value


def secret_reference(variable: str, reference: str) -> dict[str, str]:
    """A prefect-gcp ``SecretKeySelector`` (``{"secret", "version"}``) from ``secret`` or
    ``secret:version`` as written in ``PULSE_RUN_SECRETS``; a malformed one is a `ConfigError`."""
    secret, _, version = reference.partition(":")
    version = version or "latest"
    if not _SECRET.match(secret) or not re.match(r"^(latest|[0-9]+)$", version):
        raise ConfigError(
            f"PULSE_RUN_SECRETS: {variable} -> {reference!r} is not a Secret Manager reference: "
            "use the secret's id (or projects/P/secrets/ID), optionally ':version' (default latest)")
    return {"secret": secret, "version": version}


def prefect_credentials() -> dict[str, str]:
    """The Prefect credentials this process's Prefect client uses (environment or Prefect
    profile), by variable name; unset ones left out."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

    values = {"PREFECT_API_AUTH_STRING": PREFECT_API_AUTH_STRING.value(),
              "PREFECT_API_KEY": PREFECT_API_KEY.value()}
    return {k: v for k, v in values.items() if v}


def run_secrets(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """``env_from_secrets`` of every job: ``PULSE_RUN_SECRETS`` checked. The DSNs are required;
    when this process authenticates to Prefect (``PREFECT_API_AUTH_STRING`` or
    ``PREFECT_API_KEY``, from `environ` or else Prefect's settings) the job must get the same
    credential from Secret Manager too."""
    environ = prefect_credentials() if environ is None else environ
    secrets = dict(settings.run_secrets)
    for variable in secrets:
        if not _ENV_NAME.match(variable):
            raise ConfigError(f"PULSE_RUN_SECRETS: {variable!r} is not an environment variable "
                              "name (upper case, digits, underscores)")
    for variable in REQUIRED_SECRETS:
        if not secrets.get(variable):
            raise GcpSettingMissing(
                f"PULSE_RUN_SECRETS has no Secret Manager secret for {variable}: the gcp jobs "
                "read their Cloud SQL DSN from it. Set PULSE_RUN_SECRETS='{\"" + variable
                + "\": \"<secret id>\", ...}'")
    for credential in PREFECT_CREDENTIALS:
        if environ.get(credential) and credential not in secrets:
            raise GcpSettingMissing(
                f"{credential} is set, so the Prefect API requires auth, but PULSE_RUN_SECRETS "
                f"names no Secret Manager secret for it: the flow runs could not report back. "
                "Store it in Secret Manager and add '\"" + credential + "\": \"<secret id>\"' to "
                "PULSE_RUN_SECRETS")
    return {variable: secret_reference(variable, ref) for variable, ref in secrets.items()}


def run_region(settings: Settings) -> str:
    """Cloud Run's region: ``PULSE_REGION``, else ``PULSE_LOCATION`` when it names a region
    (a multi-region BigQuery location such as ``EU`` is not one: `GcpSettingMissing`)."""
    region = settings.region or settings.location
    if not re.match(r"^[a-z]+-[a-z]+[0-9]+$", region):
        raise GcpSettingMissing(
            f"PULSE_REGION is not set and PULSE_LOCATION={region!r} is not a Cloud Run region: "
            "set PULSE_REGION (e.g. europe-west1) for the jobs and their image")
    return region


def job_environment(settings: Settings, region: str) -> dict[str, str]:
    """The plain (non-secret) environment of a gcp job: the settings the gcp code reads."""
    env = {
        "PULSE_PROFILE": "gcp",
        "PULSE_PROJECT": settings.project,
        "GOOGLE_CLOUD_PROJECT": settings.project,
        "PULSE_LOCATION": settings.location,
        "PULSE_REGION": region,
        "PULSE_BIGTABLE_INSTANCE": settings.bigtable_instance,
        "PULSE_RAW_BUCKET": settings.raw_bucket,
    }
    optional = {"PULSE_PROJECT_NUMBER": settings.project_number,
                "PULSE_SERVING_URL": settings.serving_url,
                "PULSE_SERVING_AUDIENCE": settings.serving_audience}
    env.update({k: v for k, v in optional.items() if v})
    return env


def gcp_job_variables(settings: Settings, declared: dict[str, Any] | None = None,
                      environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The job variables of every ``<flow>-gcp`` deployment (prefect-gcp ``cloud-run-v2``):
    the pool's `declared` ones (flows/deployments.yaml: timeout, retries, extra plain env)
    with everything environment-specific from `settings`. Raises `GcpSettingMissing` naming
    the first unset variable, `ConfigError` for a malformed one; calls nothing."""
    if declared is None:
        from pulse_local.deployments import GCP_WORK_POOL

        declared = GCP_WORK_POOL.job_variables
    project = _required(settings, "project", "PULSE_PROJECT", "the GCP project id")
    _required(settings, "raw_bucket", "PULSE_RAW_BUCKET", "the raw payloads' bucket")
    account = _required(settings, "run_service_account", "PULSE_RUN_SERVICE_ACCOUNT",
                        "the service account they run as (else Compute's default one)")
    if not _SERVICE_ACCOUNT.match(account):
        raise ConfigError(f"PULSE_RUN_SERVICE_ACCOUNT={account!r} is not a service account "
                          "e-mail (NAME@PROJECT.iam.gserviceaccount.com)")
    cloudsql = _required(settings, "cloudsql_instance", "PULSE_CLOUDSQL_INSTANCE",
                         "the Cloud SQL instance connection name (PROJECT:REGION:INSTANCE)")
    if not _CLOUDSQL.match(cloudsql):
        raise ConfigError(f"PULSE_CLOUDSQL_INSTANCE={cloudsql!r} is not an instance connection "
                          "name: use PROJECT:REGION:INSTANCE (`gcloud sql instances describe "
                          "INSTANCE --format='value(connectionName)'`)")
    region = run_region(settings)
    secrets = run_secrets(settings, environ)
    variables = {k: v for k, v in declared.items() if k != "env"}
    plain = {**dict(declared.get("env") or {}), **job_environment(settings, region)}
    leaked = sorted((set(plain) & SECRET_ENV) | (set(plain) & set(secrets)))
    if leaked:
        raise ConfigError(f"{', '.join(leaked)} would be a plain job environment value: secrets "
                          "go through PULSE_RUN_SECRETS (Secret Manager) only; remove them from "
                          "gcp_work_pool.job_variables.env in flows/deployments.yaml")
    image = settings.image or str(declared.get("image", "")).format(project=project, region=region)
    if not image:
        raise GcpSettingMissing("PULSE_IMAGE is not set and flows/deployments.yaml declares no "
                                "gcp_work_pool.job_variables.image: set either")
    variables.update({
        "image": image,
        "region": region,
        "service_account_name": account,
        "cloudsql_instances": [cloudsql],
        "memory": settings.job_memory,
        "cpu": settings.job_cpu,
        "env": plain,
        "env_from_secrets": secrets,
    })
    return variables


#: What the streaming consumer does not get: it reads Pub/Sub and writes Bigtable and the raw
#: dataset, never Cloud SQL nor the Prefect API (least privilege).
CONSUMER_WITHHELD = frozenset(REQUIRED_SECRETS) | frozenset(PREFECT_CREDENTIALS)


#: The consumer's worker pool id (Cloud Run resource names: lower case, digits, hyphens).
CONSUMER_POOL_ID = "pulse-streaming"


def consumer_worker_pool(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The streaming consumer's deployment target on GCP: a Cloud Run worker pool (always-on
    instances without an HTTP port, which a Pub/Sub pull consumer is), as the JSON body of
    Cloud Run Admin API v2's ``projects.locations.workerPools.create``, from the same job
    variables (image, service account, plain env, secrets by reference, memory and CPU), minus
    the database and Prefect credentials the consumer has no use for (`CONSUMER_WITHHELD`)."""
    v = gcp_job_variables(settings, environ=environ)
    env = [{"name": k, "value": val} for k, val in v["env"].items()]
    env += [{"name": k, "valueSource": {"secretKeyRef": ref}}
            for k, ref in v["env_from_secrets"].items() if k not in CONSUMER_WITHHELD]
    return {
        "scaling": {"manualInstanceCount": 1},
        "template": {
            "serviceAccount": v["service_account_name"],
            "containers": [{
                "name": "streaming",
                "image": v["image"],
                "command": ["python", "-m", "pulse_local.streaming", "consume"],
                "env": env,
                "resources": {"limits": {"memory": v["memory"], "cpu": v["cpu"]}},
            }],
        },
    }


def consumer_worker_pool_request(settings: Settings, environ: dict[str, str] | None = None) -> Any:
    """`consumer_worker_pool` as google-cloud-run's ``CreateWorkerPoolRequest`` (parent
    ``projects/P/locations/REGION``, id `CONSUMER_POOL_ID`). Parsing the body into the API's
    own message checks every field name and type offline; nothing is sent."""
    import json

    from google.cloud import run_v2

    body = consumer_worker_pool(settings, environ)
    return run_v2.CreateWorkerPoolRequest(
        parent=f"projects/{settings.project}/locations/{run_region(settings)}",
        worker_pool_id=CONSUMER_POOL_ID,
        worker_pool=run_v2.WorkerPool.from_json(json.dumps(body)))
