"""The Docker stack (`PULSE_STACK=docker`): PostgreSQL, both emulators and Prefect from official
images (`compose/docker-compose.yml`, run through testcontainers' `DockerCompose`), with the same
ports, names, probes and set-up hooks as the native stack. The project's own processes (the
deployments server, and the pipeline's services) still run natively beside the containers: they
are this repository's code, so running them from the checkout keeps edits live."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pulse_local.config import PROJECT_ROOT, Settings
from pulse_local.errors import ServiceUnavailable
from pulse_local.stack.base import ServiceStatus, StartReport
from pulse_local.stack.credentials import prepare_stack_secrets
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import ServiceSpec, native_services, service_env

COMPOSE_DIR = PROJECT_ROOT / "compose"
#: Services the compose file runs; every other service of the stack runs natively.
CONTAINERS = ("postgres", "pubsub", "bigtable", "prefect")


def docker_daemon_answers(timeout: float = 3.0) -> bool:
    """True when a Docker engine answers (`docker info`), False when only the CLI exists."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def compose_project_name(settings: Settings) -> str:
    """`pulse-local` for the default state directory; another directory (a test session, a
    second checkout) gets its own compose project, so their containers never collide."""
    if settings.state_dir.resolve() == (PROJECT_ROOT / ".pulse").resolve():
        return "pulse-local"
    digest = hashlib.sha1(str(settings.state_dir.resolve()).encode()).hexdigest()[:8]
    return f"pulse-{digest}"


class DockerStack:
    """Containers for the infrastructure, native processes for the project's own services."""

    mode = "docker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.project_name = compose_project_name(settings)
        specs = native_services(settings)
        self.containers: list[ServiceSpec] = [s for s in specs if s.name in CONTAINERS]
        self.native = NativeStack(settings, [s for s in specs if s.name not in CONTAINERS])

    @contextmanager
    def _compose(self) -> Iterator[object]:
        """A testcontainers DockerCompose with our ports in its environment."""
        from testcontainers.compose import DockerCompose

        saved = dict(os.environ)
        # the compose file takes the stack's generated secrets from the environment, and
        # refuses every command (down, logs too) without them
        prepare_stack_secrets(self.settings, {"prefect"})
        os.environ.update(service_env(self.settings))
        os.environ["PULSE_DB_ADMIN_PASSWORD"] = self.settings.admin_password()
        os.environ["COMPOSE_PROJECT_NAME"] = self.project_name
        try:
            yield DockerCompose(context=COMPOSE_DIR, compose_file_name="docker-compose.yml",
                                wait=True)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def up(self) -> StartReport:
        began = time.perf_counter()
        before = {s.name for s in self._container_status() if s.health == "healthy"}
        prepare_stack_secrets(self.settings, set(CONTAINERS) - before)
        with self._compose() as compose:
            try:
                compose.start()  # type: ignore[attr-defined]
            except Exception as exc:  # compose's own error text says what failed
                raise ServiceUnavailable(
                    f"docker compose could not start the stack: {exc}. "
                    "Check `docker info`, or run natively with PULSE_STACK=native"
                ) from exc
        report = StartReport()
        for spec in self.containers:
            spec.after_ready(self.settings)
            (report.already_running if spec.name in before else report.started).append(spec.name)
        native = self.native.up()
        report.started += native.started
        report.already_running += native.already_running
        report.restarted += native.restarted
        report.seconds.update(native.seconds)
        report.total_seconds = round(time.perf_counter() - began, 2)
        return report

    def down(self) -> list[str]:
        stopped = self.native.down()
        running = [s.name for s in self._container_status() if s.health != "down"]
        with self._compose() as compose:
            compose.stop(down=False)  # type: ignore[attr-defined]
        return stopped + running

    def _container_status(self) -> list[ServiceStatus]:
        statuses = []
        for spec in self.containers:
            address = spec.address(self.settings)
            try:
                spec.probe(self.settings)
                statuses.append(ServiceStatus(spec.name, address, "healthy"))
            except Exception as exc:  # noqa: BLE001 - the probe's error is the status detail
                statuses.append(ServiceStatus(spec.name, address, "down", None, str(exc)[:120]))
        return statuses

    def status(self) -> list[ServiceStatus]:
        return self._container_status() + self.native.status()

    def logs(self, service: str, lines: int = 50) -> str:
        if service not in CONTAINERS:
            return self.native.logs(service, lines)
        with self._compose() as compose:
            out, err = compose.get_logs(service)  # type: ignore[attr-defined]
        return "\n".join((out + err).splitlines()[-lines:])
