"""The rehearsal stack: the native stack plus the BigQuery and Cloud Storage emulators.

They run from their own virtual environment (``.venv-emulators``, built by ``make install``:
bqemulator's pins clash with the main one) and start only for a rehearsal, so ``make run`` and
``make test`` do not pay for them. Readiness is a real call through the official client.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pulse_local.config import PROJECT_ROOT, Settings
from pulse_local.errors import ToolMissing
from pulse_local.stack.services import ServiceSpec, native_services

if TYPE_CHECKING:
    from google.cloud import bigquery


def emulators_venv() -> Path:
    """The emulators' virtual environment (``PULSE_EMULATORS_VENV`` overrides it)."""
    return Path(os.environ.get("PULSE_EMULATORS_VENV") or PROJECT_ROOT / ".venv-emulators")


def emulator_program(name: str) -> Path:
    """A program of the emulators' venv, or `ToolMissing` saying how `make install` provides it."""
    path = emulators_venv() / "bin" / name
    if not path.is_file():
        raise ToolMissing(
            f"{name} is not installed at {path}: `make install` builds the emulators' virtual "
            "environment (.venv-emulators, pins in emulators/constraints.txt); or point "
            "PULSE_EMULATORS_VENV at one that has bqemulator and gcp-storage-emulator")
    return path


def bigquery_client(settings: Settings) -> bigquery.Client:
    """The official BigQuery client on the rehearsal's emulator (anonymous credentials)."""
    from pulse_local.rehearsal.endpoints import rehearsal_endpoints
    from pulse_local.resources.clients import bigquery_client as make_client

    return make_client(settings.project, settings.location,
                       rehearsal_endpoints(settings).bigquery)


def bigquery_ready(settings: Settings, timeout: float = 2.0) -> None:
    """``datasets.list`` through the official client (no retries: a probe is polled)."""
    from google.api_core.retry import Retry

    client = bigquery_client(settings)
    try:
        list(client.list_datasets(timeout=timeout, retry=Retry(timeout=timeout)))
    finally:
        client.close()


def storage_ready(settings: Settings, timeout: float = 2.0) -> None:
    """``buckets.list`` through the official Cloud Storage client."""
    import google.cloud.storage
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    from pulse_local.rehearsal.endpoints import rehearsal_endpoints

    client = google.cloud.storage.Client(
        project=settings.project, credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=rehearsal_endpoints(settings).storage))
    list(client.list_buckets(timeout=timeout, retry=None))


def emulator_services() -> list[ServiceSpec]:
    """The two emulators only a rehearsal runs."""
    return [
        ServiceSpec(
            name="bigquery",
            port_field="bigquery_port",
            argv=lambda s: [
                str(emulator_program("bqemulator")), "start",
                "--rest-host", s.host, "--rest-port", str(s.bigquery_port),
                "--grpc-host", s.host, "--grpc-port", str(s.bigquery_grpc_port),
                "--project", s.project, "--ephemeral",
                "--log-format", "console", "--log-level", "warning",
            ],
            # Avro is optional and would be downloaded (no network): off. No OTLP export.
            env=lambda s: {"BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
                           "BQEMU_TRACING_ENABLED": "false"},
            probe=bigquery_ready,
            start_timeout=90.0,
            stop_timeout=5.0,
            url=lambda s: f"http://{s.host}:{s.bigquery_port} (gRPC {s.bigquery_grpc_port})",
        ),
        ServiceSpec(
            name="storage",
            port_field="storage_port",
            argv=lambda s: [
                str(emulator_program("gcp-storage-emulator")), "start",
                "--host", s.host, "--port", str(s.storage_port),
                "--default-bucket", s.raw_bucket, "--in-memory", "--quiet",
            ],
            probe=storage_ready,
            start_timeout=30.0,
            url=lambda s: f"http://{s.host}:{s.storage_port}",
        ),
    ]


def _with_env(own: Callable[[Settings], dict[str, str]],
              extra: Mapping[str, str]) -> Callable[[Settings], dict[str, str]]:
    """A service's environment function with ``extra`` laid over what ``own`` returns."""

    def env(settings: Settings) -> dict[str, str]:
        return {**own(settings), **extra}

    return env


#: Services that run the gcp code in the cloud (Cloud Run): on profile gcp in a rehearsal. The
#: others are the stack's own (PostgreSQL plays Cloud SQL, the cdc service plays Datastream).
GCP_SERVICES = ("processor", "streaming", "serving")


def rehearsal_services(gcp_settings: Settings) -> list[ServiceSpec]:
    """Every service of the rehearsal stack: the emulators first (the processor writes raw
    payloads to the bucket), then the native stack's, the Cloud Run ones on profile gcp with the
    emulators' endpoints (`gcp_settings`: `endpoints.with_emulators`)."""
    from dataclasses import replace

    from pulse_local.rehearsal.endpoints import rehearsal_environment

    gcp_env = rehearsal_environment(gcp_settings)
    emulators = emulator_services()
    names = tuple(e.name for e in emulators)
    services = []
    for spec in native_services(gcp_settings):
        if spec.name in GCP_SERVICES:
            spec = replace(spec, env=_with_env(spec.env, gcp_env))
        if spec.name == "processor":
            spec = replace(spec, depends_on=(*spec.depends_on, *names))
        services.append(spec)
    return [*emulators, *services]
