"""The Docker Compose stack (`PULSE_STACK=docker`): the same services, ports, names and probes
as the native stack, from official images (`compose/docker-compose.yml`)."""

from __future__ import annotations

import json
import os
import subprocess
import time

from pulse_local.config import PROJECT_ROOT, Settings
from pulse_local.errors import ServiceUnavailable, ToolMissing
from pulse_local.stack.base import ServiceStatus, StartReport
from pulse_local.stack.services import ServiceSpec, native_services, service_env

COMPOSE_FILE = PROJECT_ROOT / "compose" / "docker-compose.yml"


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


class DockerStack:
    """`docker compose` runs the services; readiness and set-up hooks are the native ones."""

    mode = "docker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The same specs as native: probes and after-ready hooks are shared, commands are not.
        self.services: list[ServiceSpec] = native_services(settings)

    def _compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **service_env(self.settings)}
        try:
            result = subprocess.run(
                ["docker", "compose", "-p", "pulse", "-f", str(COMPOSE_FILE), *args],
                capture_output=True, text=True, env=env, check=False,
            )
        except FileNotFoundError:
            raise ToolMissing("docker is not installed: use PULSE_STACK=native") from None
        if check and result.returncode != 0:
            raise ServiceUnavailable(
                f"docker compose {' '.join(args)} failed:\n{result.stderr.strip()[-2000:]}\n"
                "Check `docker info`, or run natively with PULSE_STACK=native"
            )
        return result

    def up(self) -> StartReport:
        began = time.perf_counter()
        before = {s.name for s in self.status() if s.health == "healthy"}
        self._compose("up", "-d", "--wait")
        report = StartReport()
        for spec in self.services:
            spec.after_ready(self.settings)
            (report.already_running if spec.name in before else report.started).append(spec.name)
        report.total_seconds = round(time.perf_counter() - began, 2)
        return report

    def down(self) -> list[str]:
        running = [s.name for s in self.status() if s.health != "down"]
        self._compose("stop")
        return running

    def status(self) -> list[ServiceStatus]:
        result = self._compose("ps", "--format", "json", check=False)
        running = set()
        for line in result.stdout.splitlines():
            try:
                running.add(json.loads(line).get("Service"))
            except json.JSONDecodeError:
                continue
        statuses = []
        for spec in self.services:
            address = spec.address(self.settings)
            if spec.name not in running:
                statuses.append(ServiceStatus(spec.name, address, "down", None, "container not running"))
                continue
            try:
                spec.probe(self.settings)
                statuses.append(ServiceStatus(spec.name, address, "healthy"))
            except Exception as exc:  # the probe's error is the status detail
                statuses.append(ServiceStatus(spec.name, address, "unhealthy", None, str(exc)[:120]))
        return statuses

    def logs(self, service: str, lines: int = 50) -> str:
        return self._compose("logs", "--no-color", "--tail", str(lines), service).stdout
