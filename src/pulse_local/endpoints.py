"""Where this profile's clients and processes go: emulator hosts, the stack's addresses, Prefect.

A leaf module (it depends on `config`, `profiles` and `errors` only), so every layer can ask where a
service is without importing the backend factory or the stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pulse_local import secret_files
from pulse_local.config import PROJECT_ROOT, Profile, Settings, port_setting, stack_port_fields
from pulse_local.errors import EmulatorEndpointMissing
from pulse_local.profiles import profile_spec


@dataclass(frozen=True)
class EmulatorEndpoints:
    """Where Google's clients go: ``host:port`` of an emulator, or None for Google itself."""

    pubsub: str | None
    bigtable: str | None


def emulator_endpoints(settings: Settings, profile: Profile | None = None) -> EmulatorEndpoints:
    """Google's emulator variables win on every profile (that is how CI runs the gcp code on
    the emulators); without them a profile with ``stack_emulators`` (``local``) means the
    stack's own emulators, so local work can never reach a real project by accident, and the
    others (``gcp``) mean Google."""
    if profile_spec(profile or settings.profile).stack_emulators:
        return EmulatorEndpoints(
            settings.pubsub_emulator_host or f"{settings.host}:{settings.pubsub_port}",
            settings.bigtable_emulator_host or f"{settings.host}:{settings.bigtable_port}",
        )
    return EmulatorEndpoints(settings.pubsub_emulator_host, settings.bigtable_emulator_host)


def require_emulator_endpoints(settings: Settings, command: str, *, pubsub: bool = False,
                               bigtable: bool = False) -> None:
    """On ``local``, refuse to start a service whose Google clients have no emulator endpoint.

    A service process (processor, consumer, serving) must be told where the emulators are,
    by `pulse-local up` or ``eval "$(pulse-local env)"``; without that, Google's clients would
    fall back to the production endpoints. Raises `EmulatorEndpointMissing` naming the missing
    variables and the commands that set them. On ``gcp`` nothing is required."""
    if settings.profile != "local":
        return
    missing = [name for name, wanted, value in (
        ("PUBSUB_EMULATOR_HOST", pubsub, settings.pubsub_emulator_host),
        ("BIGTABLE_EMULATOR_HOST", bigtable, settings.bigtable_emulator_host)) if wanted and not value]
    if missing:
        raise EmulatorEndpointMissing(
            f"PULSE_PROFILE=local but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
            f" not set: `{command}` refuses to start rather than reach Google's production "
            "endpoints. Start it with the stack (`pulse-local up`), or first run "
            '`eval "$(pulse-local env)"`')


def prefect_api_url(settings: Settings) -> str:
    """The API of the stack's Prefect server."""
    return f"http://{settings.host}:{settings.prefect_port}/api"


def prefect_auth_string(settings: Settings) -> str | None:
    """The basic-auth ``user:password`` of the stack's Prefect API (generated when its server
    first starts, `pulse_local.stack.credentials`), None before that."""
    return secret_files.read_secret(settings.state_dir, secret_files.PREFECT_API_AUTH)


def prefect_auth_headers(settings: Settings) -> dict[str, str]:
    """The ``Authorization`` header for raw HTTP calls to the stack's Prefect API."""
    import base64

    auth = prefect_auth_string(settings)
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}


def service_env(settings: Settings) -> dict[str, str]:
    """What a shell, IDE or child process needs to reach the stack (`pulse-local env`): its
    addresses, its DSNs and the Prefect API's auth string (secrets for the user's own shell
    and the stack's children, never for a command line or a log)."""
    auth = prefect_auth_string(settings)
    return {
        **({"PREFECT_API_AUTH_STRING": auth} if auth else {}),
        "PULSE_PROFILE": settings.profile,
        "PULSE_STATE_DIR": str(settings.state_dir),
        "PULSE_PROJECT": settings.project,
        "PULSE_HOST": settings.host,
        # PULSE_POSTGRES_PORT, PULSE_PUBSUB_PORT, ...: every service port of the stack
        **{port_setting(field): str(getattr(settings, field)) for field in stack_port_fields()},
        "PULSE_DATABASE_URL": settings.app_dsn(),
        "PULSE_ADMIN_DATABASE_URL": settings.admin_dsn(),
        "PUBSUB_EMULATOR_HOST": f"{settings.host}:{settings.pubsub_port}",
        "PUBSUB_PROJECT_ID": settings.project,
        "BIGTABLE_EMULATOR_HOST": f"{settings.host}:{settings.bigtable_port}",
        "PREFECT_API_URL": prefect_api_url(settings),
        "PROJECT_ROOT": str(PROJECT_ROOT),
    }


def client_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that point Google's clients and Prefect at this profile's services.

    ``local`` (``stack_client_environment`` in its registry entry): the stack's emulators and
    Prefect server. ``gcp``: nothing; the clients use Application Default Credentials and
    whatever ``PREFECT_API_URL`` the user configured. Variables already set in the environment
    win (an IDE or CI can override any of them).
    """
    return service_env(settings) if profile_spec(settings.profile).stack_client_environment else {}


def use_profile(settings: Settings) -> None:
    """Apply `client_environment` to this process (call once when a command or flow starts)."""
    for key, value in client_environment(settings).items():
        os.environ.setdefault(key, value)
