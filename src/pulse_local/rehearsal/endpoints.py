"""Where the gcp profile's clients go during a rehearsal: the one place that says it.

Every Google API the gcp code calls is answered by an emulator on the rehearsal stack; the code
receives the endpoints through Google's own variables (``BIGQUERY_EMULATOR_HOST``,
``STORAGE_EMULATOR_HOST``, ``PUBSUB_EMULATOR_HOST``, ``BIGTABLE_EMULATOR_HOST``) and dbt-bigquery
through its ``api_endpoint`` (``PULSE_BIGQUERY_ENDPOINT`` in dbt/profiles.yml). A rehearsal
refuses to start when any of them would reach a real Google host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from pulse_local.config import Settings
from pulse_local.endpoints import prefect_auth_string, service_env
from pulse_local.errors import ConfigError

#: A fixed bearer token for dbt-bigquery's ``oauth-secrets`` method: the emulator ignores it,
#: and with it no credential lookup (gcloud, metadata server) happens.
REHEARSAL_TOKEN = "offline-rehearsal"


class RealGoogleEndpoint(ConfigError):
    """A rehearsal would have called a real Google API."""


class NoEmulator(ConfigError):
    """A rehearsal reached an API that has no emulator (it would have called Google)."""


@dataclass(frozen=True)
class RehearsalEndpoints:
    """The emulators' addresses, as each client library wants them."""

    bigquery: str  # http://host:port
    storage: str  # http://host:port
    pubsub: str  # host:port
    bigtable: str  # host:port

    def environment(self) -> dict[str, str]:
        """The variables that point every client (and dbt-bigquery) at the emulators."""
        return {
            "BIGQUERY_EMULATOR_HOST": self.bigquery,
            "STORAGE_EMULATOR_HOST": self.storage,
            "PUBSUB_EMULATOR_HOST": self.pubsub,
            "BIGTABLE_EMULATOR_HOST": self.bigtable,
            "PULSE_BIGQUERY_ENDPOINT": self.bigquery,
            "PULSE_BQ_METHOD": "oauth-secrets",
            "PULSE_BQ_TOKEN": REHEARSAL_TOKEN,
        }


def rehearsal_endpoints(settings: Settings) -> RehearsalEndpoints:
    """The rehearsal stack's emulators on `settings.host` and its ports."""
    h = settings.host
    endpoints = RehearsalEndpoints(
        bigquery=f"http://{h}:{settings.bigquery_port}",
        storage=f"http://{h}:{settings.storage_port}",
        pubsub=f"{h}:{settings.pubsub_port}",
        bigtable=f"{h}:{settings.bigtable_port}",
    )
    refuse_real_google(endpoints.environment())
    return endpoints


def _host(value: str) -> str:
    """The host name of ``http://host:port`` or ``host:port``."""
    return urlsplit(value if "://" in value else f"//{value}").hostname or ""


def is_offline_host(host: str) -> bool:
    """True for a loopback address or ``localhost``: nothing a rehearsal sends leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_real_google(environment: dict[str, str]) -> None:
    """Raise `RealGoogleEndpoint` unless every endpoint variable names a loopback host."""
    for name in ("BIGQUERY_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
                 "BIGTABLE_EMULATOR_HOST", "PULSE_BIGQUERY_ENDPOINT"):
        value = environment.get(name)
        if not value:
            raise RealGoogleEndpoint(
                f"{name} is unset: the client would call Google itself. A rehearsal sets it from "
                "PULSE_HOST and the emulator ports; run it with `pulse-local rehearse`")
        if not is_offline_host(_host(value)):
            raise RealGoogleEndpoint(
                f"{name}={value} is not a loopback address: a rehearsal only talks to emulators "
                "on this machine. Set PULSE_HOST=127.0.0.1 (the default)")


def with_emulators(settings: Settings) -> Settings:
    """The rehearsal's gcp settings, from the rehearsal stack's own (`settings`): profile gcp,
    every Google endpoint set to the stack's emulators (what `backends` and `resources` read),
    and the gcp settings that have no default on GCP set explicitly to the stack's: the
    PostgreSQL DSNs (the stack plays Cloud SQL), a project number (no Resource Manager), and the
    Cloud Run jobs' service account and Cloud SQL instance (rendered, never created)."""
    e = rehearsal_endpoints(settings)
    local = settings.model_copy(update={"profile": "local"})
    run_secrets = dict(settings.run_secrets)
    if prefect_auth_string(local):  # the stack's Prefect API asks for it: so do the jobs
        run_secrets.setdefault("PREFECT_API_AUTH_STRING", "pulse-prefect-auth")
    return settings.model_copy(update={
        "run_secrets": run_secrets,
        "profile": "gcp", "pubsub_emulator_host": e.pubsub, "bigtable_emulator_host": e.bigtable,
        "bigquery_emulator_host": e.bigquery, "storage_emulator_host": e.storage,
        "database_url": local.app_dsn(), "admin_database_url": local.admin_dsn(),
        "project_number": settings.project_number or "000000000000", "rehearsal": True,
        "project": settings.project, "raw_bucket": settings.raw_bucket,
        # what a deployment's jobs run as and connect to (rendered only: Cloud Run has no
        # emulator); a real registration must set both (`gcp_jobs`, GcpSettingMissing)
        "run_service_account": settings.run_service_account
        or f"pulse-run@{settings.project}.iam.gserviceaccount.com",
        "cloudsql_instance": settings.cloudsql_instance
        or f"{settings.project}:{settings.region or settings.location}:pulse"})


def stack_settings(settings: Settings) -> Settings:
    """The settings the rehearsal stack itself runs with (profile local: PostgreSQL, Prefect
    and the emulators are the stack's own, reached through its ports)."""
    return settings.model_copy(update={"profile": "local"})


def rehearsal_environment(settings: Settings) -> dict[str, str]:
    """Everything a rehearsal's processes need: the stack's addresses (as `pulse-local env`),
    profile gcp, and the emulator endpoints (checked to be loopback)."""
    env = {**service_env(settings), "PULSE_PROFILE": "gcp",
           # the gcp settings every service process reads (the processor archives to the bucket)
           "PULSE_RAW_BUCKET": settings.raw_bucket, "PULSE_LOCATION": settings.location,
           "PULSE_BIGTABLE_INSTANCE": settings.bigtable_instance,
           "PULSE_BIGQUERY_PORT": str(settings.bigquery_port),
           "PULSE_BIGQUERY_GRPC_PORT": str(settings.bigquery_grpc_port),
           "PULSE_STORAGE_PORT": str(settings.storage_port),
           "PULSE_PROJECT_NUMBER": settings.project_number or "", "PULSE_REHEARSAL": "true",
           # the serving API on gcp requires the audience of its ID tokens (its Cloud Run URL);
           # in a rehearsal that is the stack's own serving address
           "PULSE_SERVING_AUDIENCE": settings.serving_audience
           or f"http://{settings.host}:{settings.serving_port}",
           **rehearsal_endpoints(settings).environment(), "GOOGLE_CLOUD_PROJECT": settings.project}
    refuse_real_google(env)
    return env
