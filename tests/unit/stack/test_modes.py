"""Unit tests: stack mode selection and the compose file agreeing with the native stack.
(No Docker daemon runs on CI machines; these tests read files and ask `docker info` only.)"""

from __future__ import annotations

from pathlib import Path

import yaml

from pulse_local.config import Settings
from pulse_local.stack import stack_for
from pulse_local.stack.docker import (
    COMPOSE_DIR,
    CONTAINERS,
    DockerStack,
    compose_project_name,
    docker_daemon_answers,
)
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services


def test_auto_picks_native_without_a_daemon_and_docker_with_one(tmp_path: Path) -> None:
    stack = stack_for(Settings(stack="auto", state_dir=tmp_path))
    expected = DockerStack if docker_daemon_answers() else NativeStack
    assert isinstance(stack, expected)


def test_explicit_modes(tmp_path: Path) -> None:
    assert isinstance(stack_for(Settings(stack="native", state_dir=tmp_path)), NativeStack)
    assert isinstance(stack_for(Settings(stack="docker", state_dir=tmp_path)), DockerStack)


def test_compose_runs_the_infrastructure_services_on_the_same_ports() -> None:
    compose = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    defaults = Settings()
    assert set(CONTAINERS) == set(compose["services"])
    expected = {
        "postgres": ("PULSE_POSTGRES_PORT", defaults.postgres_port, 5432),
        "pubsub": ("PULSE_PUBSUB_PORT", defaults.pubsub_port, 8085),
        "bigtable": ("PULSE_BIGTABLE_PORT", defaults.bigtable_port, 8086),
        "prefect": ("PULSE_PREFECT_PORT", defaults.prefect_port, 4200),
    }
    for name, (variable, default, inside) in expected.items():
        assert compose["services"][name]["ports"] == [f"${{{variable}:-{default}}}:{inside}"]
    native_names = [s.name for s in native_services(defaults)]
    assert set(CONTAINERS) < set(native_names)


def test_compose_project_is_separate_for_other_state_dirs(tmp_path: Path) -> None:
    assert compose_project_name(Settings()) == "pulse-local"
    assert compose_project_name(Settings(state_dir=tmp_path)).startswith("pulse-")
    assert compose_project_name(Settings(state_dir=tmp_path)) != "pulse-local"
