"""The services of the native stack, each described the same way (name, command, probe, hooks).

Adding a service means adding one `ServiceSpec` to `native_services`.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulse_local.stack.postgres as pg
import pulse_local.stack.probes as probes  # noqa: PLR0402 (no package import: circle)
import pulse_local.stack.tools as tools  # noqa: PLR0402 (no package import: circle)
from pulse_local.config import Settings, port_setting

# Where the stack's services are is a leaf module (`endpoints`); re-exported for callers here.
from pulse_local.endpoints import prefect_api_url, service_env

__all__ = ["ServiceSpec", "native_services", "nothing_to_save", "prefect_api_url",
           "prefect_db_dsn", "prefect_db_url", "service_env"]


def nothing_to_save(settings: Settings, after_kill: bool) -> None:
    """The `before_stop` of a service that keeps no state of its own in memory."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service natively."""

    name: str
    #: The Settings field of its port (declared with `config.stack_port` for a service of the
    #: stack): `port` and `port_setting` derive from it.
    port_field: str
    argv: Callable[[Settings], list[str]]
    probe: Callable[[Settings], None]
    env: Callable[[Settings], dict[str, str]] = lambda s: {}
    prepare: Callable[[Settings], None] = lambda s: None
    after_ready: Callable[[Settings], None] = lambda s: None
    #: Runs on `down` just before the service is stopped, once everything that needs it has
    #: stopped (the emulators save their state there), told whether one of those had to be
    #: killed; returns a note for the user.
    before_stop: Callable[[Settings, bool], str | None] = nothing_to_save
    #: Runs as soon as `down` begins, while the services that need this one still stop (work
    #: that shortens its own stop later, like PostgreSQL's early checkpoint); returns a note.
    on_down: Callable[[Settings], str | None] = lambda s: None
    #: Saves its state while it keeps running (a snapshot's save stops only the writers),
    #: once everything that writes to it has stopped; told whether one had to be killed.
    #: None: nothing to save (a service a save may keep running only if that holds).
    save_running: Callable[[Settings, bool], str | None] | None = None
    #: Runs on `up` after `after_ready` when the service was (re)started, before anything that
    #: depends on it starts (the emulators restore their state); returns a note for the user.
    restore: Callable[[Settings], str | None] = lambda s: None
    #: Run `restore` on `up` when the service was already running too (a restore that is
    #: idempotent and may be due to another service's restart).
    restore_when_running: bool = False
    #: Extra `subprocess.Popen` keyword arguments (the account to run as).
    popen_kwargs: Callable[[Settings], dict[str, Any]] = lambda s: {}
    depends_on: tuple[str, ...] = ()
    #: Services that must keep running until this one has stopped (`down` order).
    stop_after: tuple[str, ...] = ()
    #: `stop_after` holds only while the service has work in progress (child processes: the
    #: deployments runner's flow runs, which report their end to Prefect); an idle one stops
    #: beside them.
    stop_after_only_if_busy: bool = False
    #: Runs code that may write to any other service (the deployments runner's flows): a
    #: service a snapshot's save keeps running is saved only once this one has stopped, as
    #: once its declared users have.
    writes_anywhere: bool = False
    #: False for a service that listens on no port of its own (its port is only for display).
    uses_port: bool = True
    stop_signal: int = signal.SIGTERM
    start_timeout: float = 60.0
    stop_timeout: float = 2.5
    url: Callable[[Settings], str] = field(default=lambda s: "")
    #: What `status` shows for a healthy service (e.g. CDC lag); empty by default.
    detail: Callable[[Settings], str] = field(default=lambda s: "")

    def port(self, settings: Settings) -> int:
        """The port it listens on (or, with ``uses_port`` false, shows)."""
        return int(getattr(settings, self.port_field))

    @property
    def port_setting(self) -> str:
        """The variable that sets its port: ``PULSE_<PORT_FIELD>``."""
        return port_setting(self.port_field)

    def address(self, settings: Settings) -> str:
        return self.url(settings) or f"{settings.host}:{self.port(settings)}"


def prefect_db_url(settings: Settings) -> str:
    """Prefect's own database: a database on the stack's PostgreSQL (faster start than SQLite)."""
    return (
        f"postgresql+asyncpg://{settings.db_admin_user}:{settings.admin_password()}"
        f"@{settings.host}:{settings.postgres_port}/prefect"
    )


def prefect_db_dsn(settings: Settings) -> str:
    """The same database as a libpq DSN (what the Prefect launcher waits for)."""
    return (
        f"postgresql://{settings.db_admin_user}:{settings.admin_password()}"
        f"@{settings.host}:{settings.postgres_port}/prefect"
    )


def _prepare_postgres(settings: Settings) -> None:
    """Create the cluster when new; set the roles' passwords when they are not the stack's."""
    from pulse_local.stack.credentials import sync_role_passwords

    sync_role_passwords(settings, new_cluster=pg.init_cluster(settings))


def _prefect_env(settings: Settings) -> dict[str, str]:
    from pulse_local.stack.credentials import prefect_auth_string

    auth = prefect_auth_string(settings)
    return {
        # basic authentication on its API (the stack's clients get PREFECT_API_AUTH_STRING)
        **({"PREFECT_SERVER_API_AUTH_STRING": auth} if auth else {}),
        "PREFECT_HOME": str(settings.state_dir / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db_url(settings),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": settings.host,
        "PREFECT_SERVER_API_PORT": str(settings.prefect_port),
        "PREFECT_UI_API_URL": prefect_api_url(settings),
    }


def _apply_pubsub(settings: Settings) -> None:
    """Apply `emulators/pubsub/resources.yaml` to the stack's emulator (it keeps nothing)."""
    from pulse_local import resources as r

    publisher, subscriber = r.pubsub_clients(f"{settings.host}:{settings.pubsub_port}")
    try:
        r.apply_pubsub(r.load_pubsub(), publisher, subscriber, settings.project, "local")
    finally:
        r.close_pubsub_clients(publisher, subscriber)


def _apply_bigtable(settings: Settings) -> None:
    """Apply `emulators/bigtable/resources.yaml` to the stack's emulator (in memory only)."""
    from pulse_local import resources as r

    admin = r.bigtable_admin_client(settings.project, f"{settings.host}:{settings.bigtable_port}")
    try:
        r.apply_bigtable(r.load_bigtable(), admin, settings.bigtable_instance)
    finally:
        r.close_bigtable_client(admin)


def _import_pubsub_client(settings: Settings) -> None:
    """`down` begins: import the client the save needs (0.6 s) while the consumer stops."""
    import google.cloud.pubsub_v1  # noqa: F401

    import pulse_local.resources
    import pulse_local.stack.emulator_state  # noqa: F401


def _import_bigtable_client(settings: Settings) -> None:
    """`down` begins: import the clients the save needs (1.2 s) while the consumer stops."""
    import google.cloud.bigtable.data  # noqa: F401

    import pulse_local.resources
    import pulse_local.streaming.store  # noqa: F401


def _save_pubsub(settings: Settings, after_kill: bool) -> str:
    from pulse_local.stack.emulator_state import save_pubsub

    return save_pubsub(settings, wait_for_leases=after_kill)


def _save_running_pubsub(settings: Settings, after_kill: bool) -> str:
    from pulse_local.stack.emulator_state import save_pubsub

    return save_pubsub(settings, wait_for_leases=after_kill, release=True)


def _restore_pubsub(settings: Settings) -> str | None:
    from pulse_local.stack.emulator_state import restore_pubsub

    return restore_pubsub(settings)


def _save_bigtable(settings: Settings, after_kill: bool) -> str:
    from pulse_local.stack.emulator_state import save_bigtable

    return save_bigtable(settings)


def _restore_bigtable(settings: Settings) -> str | None:
    from pulse_local.stack.emulator_state import restore_bigtable

    return restore_bigtable(settings)


def _republish_gap(settings: Settings) -> str | None:
    from pulse_local.stack.event_gap import republish_after_unclean_stop

    return republish_after_unclean_stop(settings)


def native_services(settings: Settings) -> list[ServiceSpec]:
    """Every service `up` starts, in dependency order."""
    sdk = Path(os.environ["PULSE_GCLOUD_SDK_ROOT"]) if os.environ.get("PULSE_GCLOUD_SDK_ROOT") else None
    return [
        ServiceSpec(
            name="postgres",
            port_field="postgres_port",
            argv=pg.server_argv,
            probe=probes.postgres,
            prepare=_prepare_postgres,
            after_ready=pg.bootstrap,
            on_down=pg.checkpoint_early,
            popen_kwargs=pg.run_as_postgres,
            stop_signal=signal.SIGINT,  # "fast" shutdown: rolls back, checkpoints, exits
            stop_timeout=10.0,
            start_timeout=30.0,
            url=lambda s: f"postgresql://{s.host}:{s.postgres_port}/{s.db_name}",
        ),
        ServiceSpec(
            name="pubsub",
            port_field="pubsub_port",
            argv=lambda s: [
                str(tools.pubsub_emulator(tools.gcloud_sdk_root(sdk))),
                f"--host={s.host}",
                f"--port={s.pubsub_port}",
            ],
            env=lambda s: {"JAVA_TOOL_OPTIONS": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"},
            probe=probes.pubsub,
            after_ready=_apply_pubsub,
            on_down=_import_pubsub_client,
            before_stop=_save_pubsub,
            save_running=_save_running_pubsub,
            restore=_restore_pubsub,
            # In memory only, saved before it stops: no need to wait for the JVM (2 s).
            stop_timeout=0.5,
        ),
        ServiceSpec(
            name="bigtable",
            port_field="bigtable_port",
            argv=lambda s: [
                str(tools.bigtable_emulator(tools.gcloud_sdk_root(sdk))),
                "-host", s.host, "-port", str(s.bigtable_port),
            ],
            probe=probes.bigtable,
            after_ready=_apply_bigtable,
            on_down=_import_bigtable_client,
            before_stop=_save_bigtable,
            save_running=_save_bigtable,
            restore=_restore_bigtable,
            stop_timeout=0.5,
        ),
        ServiceSpec(
            name="prefect",
            port_field="prefect_port",
            argv=lambda s: [
                sys.executable, "-m", "pulse_local.stack.prefect_server", "--host", s.host,
                "--port", str(s.prefect_port),
            ],  # its database's DSN (with the password) is in its environment, not in `ps`
            env=_prefect_env,
            probe=probes.prefect,
            # Starts with PostgreSQL (not after it): it imports while the cluster initialises
            # and waits for its database itself. `down` still stops it before PostgreSQL.
            stop_after=("postgres",),
            start_timeout=120.0,
            stop_timeout=2.0,
            url=lambda s: f"http://{s.host}:{s.prefect_port}",
        ),
        ServiceSpec(
            name="processor",
            port_field="processor_port",
            argv=lambda s: [sys.executable, "-m", "pulse_local.ingest"],
            probe=probes.processor,
            # due after Pub/Sub restarted from a kill, whether or not the processor did
            restore=_republish_gap,
            restore_when_running=True,
            depends_on=("postgres", "pubsub"),
            stop_timeout=5.0,
            url=lambda s: f"http://{s.host}:{s.processor_port}/webhooks/typeform/<tenant>",
        ),
        ServiceSpec(
            name="cdc",
            port_field="postgres_port",
            argv=lambda s: [sys.executable, "-m", "pulse_local.cdc", "serve"],
            probe=probes.cdc,
            detail=_cdc_lag,
            # The migrations (PostgreSQL's after_ready) create the publication it reads; it lands
            # its last complete batch before PostgreSQL stops.
            depends_on=("postgres",),
            stop_after=("postgres",),
            uses_port=False,
            stop_timeout=10.0,
            url=lambda s: f"slot on {s.host}:{s.postgres_port} -> {s.state_dir / 'warehouse' / 'raw'}",
        ),
        ServiceSpec(
            name="streaming",
            port_field="pubsub_port",
            argv=lambda s: [sys.executable, "-m", "pulse_local.streaming", "consume"],
            probe=probes.streaming,
            depends_on=("pubsub", "bigtable"),
            stop_after=("pubsub", "bigtable"),
            uses_port=False,
            stop_timeout=15.0,
            url=lambda s: f"response-events -> Bigtable {s.host}:{s.bigtable_port}",
        ),
        ServiceSpec(
            name="serving",
            port_field="serving_port",
            argv=lambda s: [sys.executable, "-m", "pulse_local.serving"],
            probe=probes.serving,
            depends_on=("bigtable",),
            stop_after=("bigtable",),
            stop_timeout=5.0,
            url=lambda s: f"http://{s.host}:{s.serving_port}/docs",
        ),
        ServiceSpec(
            name="deployments",
            port_field="prefect_port",
            argv=lambda s: [sys.executable, "-m", "pulse_local.orchestration"],
            probe=probes.deployments,
            # Starts beside Prefect (imports overlap) and waits for its API itself. Stops before
            # Prefect while a flow run is in progress (it reports its end to Prefect's API).
            stop_after=("prefect",),
            stop_after_only_if_busy=True,
            writes_anywhere=True,
            start_timeout=120.0,
            uses_port=False,
            url=lambda s: f"http://{s.host}:{s.prefect_port}/deployments",
        ),
    ]


def _cdc_lag(settings: Settings) -> str:
    from pulse_local.cdc import lag

    return lag(settings).summary()
