"""Settings: the one object that reads the environment (prefix ``PULSE_``).

Read when a command or flow starts, never at import time::

    settings = Settings()             # environment + .env
    settings = Settings(profile="gcp") # explicit
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pulse_local import secret_files
from pulse_local.errors import ConfigError, GcpSettingMissing
from pulse_local.profiles import PROFILES, Profile, profile_choices

OptionsT = TypeVar("OptionsT", bound=BaseSettings)

StackMode = Literal["native", "docker", "auto"]


def stack_port(default: int) -> Any:
    """A Settings field holding the port of a service of the stack. Declaring one (with the
    service's `ServiceSpec.port_field` naming it) is all a new port needs: its variable
    ``PULSE_<FIELD>``, its `pulse-local env` entry (`endpoints.service_env`) and the test
    stack's free port (`testing.plugin.make_test_settings`) are generated from these fields."""
    return Field(default, ge=1, le=65535, json_schema_extra={"stack_port": True})


def port_setting(field: str) -> str:
    """The environment variable of a Settings field: ``pubsub_port`` -> ``PULSE_PUBSUB_PORT``."""
    return f"PULSE_{field.upper()}"

#: The project root: the directory holding pyproject.toml, dbt/, emulators/ ...
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: The passwords every stack had before they were generated per stack: a state directory
#: without ``secrets/`` (made by an older pulse-local, not started since) still has them, until
#: its next `up` generates and applies new ones (`pulse_local.stack.credentials`).
LEGACY_PASSWORDS = {secret_files.DB_ADMIN_PASSWORD: "pulse_admin",
                    secret_files.DB_APP_PASSWORD: "pulse_app"}

#: Settings the gcp profile needs set explicitly: field -> (variable, what it is for). Their
#: local defaults would point at the wrong thing on GCP (``pulse-raw`` is someone else's global
#: bucket name; the DSNs would go to 127.0.0.1).
GCP_REQUIRED: dict[str, tuple[str, str]] = {
    "project": ("PULSE_PROJECT", "the GCP project id every Google client works in"),
    "raw_bucket": (
        "PULSE_RAW_BUCKET",
        ("the Cloud Storage bucket raw webhook payloads are archived to (bucket names are "
        "global: pick one your project owns)")),
    "database_url": (
        "PULSE_DATABASE_URL",
        ("the Cloud SQL DSN of the application role (row-level security applies to it), e.g. "
        "through the Cloud SQL proxy")),
    "admin_database_url": (
        "PULSE_ADMIN_DATABASE_URL",
        ("the Cloud SQL DSN of the owner role (migrations, the publication and replication "
        "slot)")),
}


class Settings(BaseSettings):
    """Every knob of pulse-local. Environment variables are ``PULSE_<FIELD>`` in upper case."""

    model_config = SettingsConfigDict(env_prefix="PULSE_", env_file=".env", extra="ignore")

    profile: Profile = Field("local", description="Backends to use: local stand-ins or real GCP.")
    stack: StackMode = Field("auto", description="How `up` runs services: native processes or docker.")
    state_dir: Path = Field(PROJECT_ROOT / ".pulse", description="Data, logs and pids of the stack.")
    snapshot_dir: Path | None = Field(None, description="Where `pulse-local snapshot` keeps its "
                                      "files (default: .pulse-snapshots/ beside the state directory).")

    project: str = Field("pulse-local", description="GCP project id (any id works on emulators).")
    location: str = Field("europe-west1", description="BigQuery / Datastream location.")
    bigtable_instance: str = Field("pulse", description="Bigtable instance id.")
    raw_bucket: str = Field("pulse-raw", description="GCS bucket for raw payloads (gcp profile).")
    project_number: str | None = Field(
        None, description="GCP project number (gcp provisioning: the Pub/Sub service agent's "
        "name); looked up through Resource Manager when unset.")

    # What the gcp deployments run with on Cloud Run (`pulse_local.gcp_jobs`).
    region: str | None = Field(
        None, description="gcp: Cloud Run and Artifact Registry region (default: PULSE_LOCATION "
        "when it names a region, not a multi-region such as EU).")
    image: str | None = Field(
        None, description="gcp: the jobs' container image (default: REGION-docker.pkg.dev/"
        "PROJECT/pulse/pulse-local:latest, built by CI from compose/Dockerfile).")
    run_service_account: str | None = Field(
        None, description="gcp: service account e-mail the Cloud Run jobs and the streaming "
        "consumer run as. Required by `deployments register`.")
    cloudsql_instance: str | None = Field(
        None, description="gcp: Cloud SQL instance connection name PROJECT:REGION:INSTANCE, "
        "mounted at /cloudsql in every job. Required by `deployments register`.")
    job_memory: str = Field("2Gi", pattern=r"^\d+(?:G|Gi|M|Mi)$",
                            description="gcp: memory limit of a Cloud Run job's container.")
    job_cpu: str = Field("1", pattern=r"^\d+(?:m)?$",
                         description="gcp: CPU limit of a Cloud Run job's container (1, 2000m).")
    run_secrets: dict[str, str] = Field(
        default_factory=lambda: {"PULSE_DATABASE_URL": "pulse-database-url",
                                 "PULSE_ADMIN_DATABASE_URL": "pulse-admin-database-url"},
        description="gcp: environment variable -> Secret Manager secret (id or id:version) of "
        "the jobs, as JSON. The two DSNs are required; add PULSE_ALERT_WEBHOOK_URL and "
        "PREFECT_API_AUTH_STRING / PREFECT_API_KEY when used.")

    host: str = Field("127.0.0.1", description="Address the native services listen on.")
    postgres_port: int = stack_port(54329)
    pubsub_port: int = stack_port(8085)
    bigtable_port: int = stack_port(8086)
    prefect_port: int = stack_port(4200)
    processor_port: int = stack_port(8092)
    serving_port: int = stack_port(8093)

    fixture_scale: int = Field(2, ge=1, description="Tenants of the fixtures `pulse-local run` generates.")
    fixture_seed: int = Field(42, description="Seed of those fixtures (same seed, same bytes).")
    replay_mode: Literal["http", "bulk"] = Field(
        "http", description="How `pulse-local run` loads the fixture webhooks: through the "
        "processor over HTTP, or `bulk` (same checks and rows, written with COPY: for big sets).")

    serving_token_key_file: Path | None = Field(
        None, description="Key that signs local serving tokens (default: "
        "<state_dir>/secrets/serving-token.key, made on first need, mode 0600).")
    serving_token_ttl: int = Field(900, ge=1, le=86_400,
                                   description="Default lifetime of `pulse-local token`, seconds.")
    serving_audience: str | None = Field(
        None, description="gcp: audience of the Google ID tokens the serving API accepts (its "
        "Cloud Run URL, or the IAP client id). Required on gcp.")
    serving_url: str | None = Field(
        None, description="gcp: the serving API's URL, for this repository's own reads of it.")
    serving_tenant_claim: str = Field(
        "pulse_tenant", description="gcp: the ID-token claim that names the caller's tenant.")
    serving_operators: list[str] = Field(
        default_factory=list, description="gcp: verified e-mails with the operator role "
        "(every tenant), as JSON, e.g. '[\"ops@example.com\"]'.")
    serving_docs: bool | None = Field(
        None, description="Serve /docs and /openapi.json (default: on locally, off on gcp).")

    db_name: str = Field("pulse", description="Application database.")
    db_app_user: str = Field("pulse_app", description="Application role: no superuser, no BYPASSRLS.")
    db_app_password: str | None = Field(
        None, description="Password of the application role (default: generated per stack at "
        "its first `up`, in <state_dir>/secrets/db-app.password).")
    db_admin_user: str = Field("pulse_admin", description="Owner role: migrations, replication.")
    db_admin_password: str | None = Field(
        None, description="Password of the owner role (default: generated per stack, in "
        "<state_dir>/secrets/db-admin.password).")
    database_url: str | None = Field(
        None, description="Application DSN; on gcp point it at Cloud SQL (e.g. through the proxy)."
    )
    admin_database_url: str | None = Field(None, description="Owner DSN used by migrations and CDC.")

    pubsub_emulator_host: str | None = Field(
        None, validation_alias="PUBSUB_EMULATOR_HOST", description="Google's variable, unchanged."
    )
    bigtable_emulator_host: str | None = Field(
        None, validation_alias="BIGTABLE_EMULATOR_HOST", description="Google's variable, unchanged."
    )
    prefect_api_url: str | None = Field(None, validation_alias="PREFECT_API_URL")

    # The gcp profile rehearsed offline (`pulse-local rehearse`): the BigQuery and Cloud
    # Storage emulators the rehearsal stack adds, and Google's variables that point clients there.
    rehearsal: bool = Field(
        False, description="Set by `pulse-local rehearse`: APIs without an emulator (Datastream) "
        "refuse to be called instead of reaching Google.")
    bigquery_port: int = Field(9050, ge=1, le=65535, description="BigQuery emulator (REST).")
    bigquery_grpc_port: int = Field(9060, ge=1, le=65535, description="BigQuery emulator (gRPC).")
    storage_port: int = Field(9023, ge=1, le=65535, description="Cloud Storage emulator.")
    bigquery_emulator_host: str | None = Field(
        None, validation_alias="BIGQUERY_EMULATOR_HOST",
        description="http://host:port of a BigQuery emulator (google-cloud-bigquery's variable).")
    storage_emulator_host: str | None = Field(
        None, validation_alias="STORAGE_EMULATOR_HOST",
        description="http://host:port of a Cloud Storage emulator (google-cloud-storage's variable).")

    @field_validator("profile", mode="before")
    @classmethod
    def _known_profile(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() not in PROFILES:
            raise ValueError(f"unknown profile {value!r}: use {profile_choices()}")
        return value.strip().lower() if isinstance(value, str) else value

    def require_gcp(self, *fields: str) -> None:
        """On the gcp profile, raise `GcpSettingMissing` for the first of `fields` (names in
        `GCP_REQUIRED`) that was not set explicitly (environment, .env or argument). No-op on
        the local profile, where the defaults are the stack's own."""
        if self.profile != "gcp":
            return
        for name in fields:
            variable, purpose = GCP_REQUIRED[name]
            if name not in self.model_fields_set or getattr(self, name) in (None, ""):
                raise GcpSettingMissing(
                    f"{variable} is not set: on PULSE_PROFILE=gcp it is {purpose}, and the "
                    f"local default would silently point elsewhere. Set {variable} (environment "
                    "or .env), or work offline with PULSE_PROFILE=local")

    # Derived addresses -------------------------------------------------------------------
    @property
    def duckdb_path(self) -> Path:
        """The local warehouse file (BigQuery stand-in)."""
        return self.state_dir / "warehouse" / "pulse.duckdb"

    @property
    def raw_bucket_dir(self) -> Path:
        """The local raw bucket (GCS stand-in)."""
        return self.state_dir / "bucket"

    def _stack_password(self, explicit: str | None, name: str) -> str:
        """An explicit password (environment, .env, argument) wins; else the stack's generated
        one; else, before the stack's first `up` generated one, the old fixed one. On gcp
        there is no default: the DSNs come from Secret Manager (`GcpSettingMissing`)."""
        if explicit:
            return explicit
        if self.profile == "gcp":
            raise GcpSettingMissing(
                f"no database password on PULSE_PROFILE=gcp ({name.split('.')[0]}): on gcp the "
                "database credentials are in PULSE_DATABASE_URL / PULSE_ADMIN_DATABASE_URL, from "
                "Secret Manager (Cloud Run secret references, PULSE_RUN_SECRETS), never a local "
                "default. Set them, or work offline with PULSE_PROFILE=local")
        return secret_files.read_secret(self.state_dir, name) or LEGACY_PASSWORDS[name]

    def app_password(self) -> str:
        """Password of the application role (local stack)."""
        return self._stack_password(self.db_app_password, secret_files.DB_APP_PASSWORD)

    def admin_password(self) -> str:
        """Password of the owner role (local stack)."""
        return self._stack_password(self.db_admin_password, secret_files.DB_ADMIN_PASSWORD)

    def app_dsn(self) -> str:
        """DSN of the application role (row-level security applies to it); on gcp
        ``PULSE_DATABASE_URL`` is required (`GcpSettingMissing`)."""
        self.require_gcp("database_url")
        return self.database_url or (
            f"postgresql://{self.db_app_user}:{self.app_password()}"
            f"@{self.host}:{self.postgres_port}/{self.db_name}"
        )

    def admin_dsn(self, database: str | None = None) -> str:
        """DSN of the owner role (migrations, publication, replication slot); on gcp
        ``PULSE_ADMIN_DATABASE_URL`` is required (`GcpSettingMissing`), and another
        `database` than its own cannot be derived from it."""
        self.require_gcp("admin_database_url")
        if self.admin_database_url and database is None:
            return self.admin_database_url
        if self.profile == "gcp":
            raise GcpSettingMissing(
                f"no DSN for database {database!r} on PULSE_PROFILE=gcp: only "
                "PULSE_ADMIN_DATABASE_URL's own database is reachable; connect to it instead")
        return (
            f"postgresql://{self.db_admin_user}:{self.admin_password()}"
            f"@{self.host}:{self.postgres_port}/{database or self.db_name}"
        )


def _problems(exc: ValidationError, prefix: str) -> str:
    """One line naming each environment variable a validation error is about."""
    return "; ".join(
        f"{prefix}{'_'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
        for e in exc.errors())


def stack_port_fields() -> tuple[str, ...]:
    """The Settings fields declared with `stack_port`, in declaration order."""
    return tuple(name for name, info in Settings.model_fields.items()
                 if isinstance(info.json_schema_extra, dict)
                 and info.json_schema_extra.get("stack_port"))


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning validation errors into one readable `ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {_problems(exc, 'PULSE_')}") from None


def load_options(cls: type[OptionsT]) -> OptionsT:
    """Build a component's options (``StreamingOptions``, ``ProcessorOptions``, ...) from the
    environment, turning validation errors into a `ConfigError` that names the variables."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix") or "")
        raise ConfigError(f"invalid {cls.__name__}: {_problems(exc, prefix)} "
                          "(fix or unset these environment variables, or .env)") from None
