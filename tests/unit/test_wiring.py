"""Wiring: every service and profile is declared everywhere it must be (testcontainers' style).

Adding half a service (a `ServiceSpec` without its port setting in `pulse-local env`, its
test-stack port, its compose entry...) or half a profile (a `Profile` value without its dbt
target, backends or endpoints) fails here with what is missing. Nothing starts: these read the
declarations (the compose file and dbt/profiles.yml as YAML) and call the pure functions; the
test stack's free ports are replaced by numbered stand-ins (a fake, said here).
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path
from typing import get_args

import pytest
import yaml

from pulse_local.backends import for_profile
from pulse_local.capabilities import Backends
from pulse_local.config import PROJECT_ROOT, Profile, Settings
from pulse_local.endpoints import client_environment, emulator_endpoints, service_env
from pulse_local.monitoring.checks import _GROUP_FUNCTIONS, GROUPS
from pulse_local.stack import probes
from pulse_local.stack.docker import CONTAINERS
from pulse_local.stack.services import ServiceSpec, native_services
from pulse_local.testing import plugin

PROFILES: tuple[str, ...] = get_args(Profile)
SERVICES = native_services(Settings())


def _service_ids(spec: ServiceSpec) -> str:
    return spec.name


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PULSE_* or emulator variable of the caller's shell, and no .env file, leaks in."""
    import os

    for key in list(os.environ):
        if key.startswith(("PULSE_", "PUBSUB_", "BIGTABLE_", "PREFECT_API")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("spec", SERVICES, ids=_service_ids)
def test_service_port_setting_is_what_the_service_reads(spec: ServiceSpec, clean_env: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spec.port_setting, "23456")
    assert spec.port(Settings()) == 23456, (
        f"service {spec.name!r}: its port_setting {spec.port_setting} does not set the port it "
        "reads; name the Settings field (PULSE_<FIELD>) that `port` returns")


@pytest.mark.parametrize("spec", SERVICES, ids=_service_ids)
def test_service_port_is_in_the_environment_of_clients(spec: ServiceSpec,
                                                       clean_env: None) -> None:
    settings = Settings(state_dir=Path("/nonexistent"))
    env = service_env(settings)
    assert env.get(spec.port_setting) == str(spec.port(settings)), (
        f"service {spec.name!r}: {spec.port_setting} is missing from "
        "pulse_local.endpoints.service_env (what `pulse-local env` prints and children inherit)")


def test_test_stack_gives_every_service_port_a_free_port(clean_env: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytest plugin's stack must not use a default port (it would collide with
    `make up`): every port setting gets its own value from `free_port` (numbered stand-ins
    here, 30001, 30002, ...)."""
    counter = itertools.count(30001)
    monkeypatch.setattr(plugin, "free_port", lambda: next(counter))
    settings = plugin.make_test_settings()
    try:
        by_setting = {spec.port_setting: spec.port(settings) for spec in SERVICES}
    finally:
        shutil.rmtree(settings.state_dir, ignore_errors=True)
    missing = sorted(name for name, port in by_setting.items() if port < 30001)
    assert not missing, (f"pulse_local.testing.plugin.make_test_settings gives no free port to "
                         f"{missing}: add `<field>=free_port()` there")
    assert len(set(by_setting.values())) == len(by_setting)


def test_every_service_has_its_own_probe() -> None:
    by_probe: dict[object, list[str]] = {}
    for spec in SERVICES:
        assert callable(spec.probe), f"service {spec.name!r} has no readiness probe"
        by_probe.setdefault(spec.probe, []).append(spec.name)
    shared = [names for names in by_probe.values() if len(names) > 1]
    assert not shared, f"services share one probe (each needs its own real call): {shared}"


def test_probes_by_name_are_the_services_probes() -> None:
    """Readiness probes live in one home: every service's probe is `stack.probes.PROBES[name]`,
    so ``python -m pulse_local.stack.probes <service>`` probes what `up` waits for."""
    specs = {spec.name: spec for spec in SERVICES}
    missing = sorted(set(specs) - set(probes.PROBES))
    assert not missing, f"services {missing} have no probe in stack.probes.PROBES"
    for name, probe in probes.PROBES.items():
        assert name in specs, f"stack.probes.PROBES names {name!r}, which is no service"
        assert specs[name].probe is probe, (
            f"service {name!r}: `up` waits on another probe than stack.probes.PROBES[{name!r}]")


def _compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "compose" / "docker-compose.yml").read_text())


def test_compose_runs_exactly_the_container_services() -> None:
    declared = set(_compose()["services"])
    assert declared == set(CONTAINERS), (
        f"compose/docker-compose.yml runs {sorted(declared)} but stack.docker.CONTAINERS says "
        f"{sorted(CONTAINERS)}: keep them the same")
    names = {spec.name for spec in SERVICES}
    assert set(CONTAINERS) <= names, f"containers without a ServiceSpec: {set(CONTAINERS) - names}"


@pytest.mark.parametrize("name", CONTAINERS)
def test_compose_service_publishes_its_port_setting_and_has_a_healthcheck(
        name: str, clean_env: None) -> None:
    service = _compose()["services"][name]
    spec = next(s for s in SERVICES if s.name == name)
    default = spec.port(Settings())
    wanted = f"${{{spec.port_setting}:-{default}}}:"
    ports = [str(p) for p in service.get("ports", [])]
    assert any(p.startswith(wanted) for p in ports), (
        f"compose service {name!r} must publish its port as \"{wanted}<container port>\" "
        f"(its setting and the Settings default), has {ports}")
    assert "healthcheck" in service, f"compose service {name!r} has no healthcheck"


def _dbt_targets() -> dict:
    profiles = yaml.safe_load((PROJECT_ROOT / "dbt" / "profiles.yml").read_text())
    return profiles["pulse"]["outputs"]


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_has_a_dbt_target_of_its_name(profile: str) -> None:
    """dbt's target is PULSE_PROFILE itself (dbt/profiles.yml: ``target: env_var('PULSE_PROFILE')``)."""
    targets = _dbt_targets()
    assert profile in targets, (f"profile {profile!r} has no output in dbt/profiles.yml "
                                f"(outputs: {sorted(targets)})")
    profiles_text = (PROJECT_ROOT / "dbt" / "profiles.yml").read_text()
    assert re.search(r"target:\s*\"\{\{\s*env_var\('PULSE_PROFILE'", profiles_text)


def test_dbt_has_no_target_without_a_profile() -> None:
    extra = sorted(set(_dbt_targets()) - set(PROFILES))
    assert not extra, f"dbt/profiles.yml outputs {extra} match no pulse_local.config.Profile"


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_has_backends_endpoints_and_client_environment(profile: str,
                                                               clean_env: None) -> None:
    """Each profile is a branch of the factory and of the endpoint resolution (building the
    backends touches nothing: clients are made on first use)."""
    settings = Settings(profile=profile, project="wiring-check", state_dir=Path("/nonexistent"))  # type: ignore[arg-type]
    backends = for_profile(settings)
    assert isinstance(backends, Backends)
    endpoints = emulator_endpoints(settings)
    if profile == "local":
        # local never reaches Google: both clients go to an emulator
        assert endpoints.pubsub and endpoints.bigtable
    assert isinstance(client_environment(settings), dict)


def test_every_check_group_runs_and_is_documented() -> None:
    """A group in `GROUPS` (what the monitor_pipeline flow runs) has a function in
    `run_group`'s table and a row in docs/monitoring.md's "What is checked" table."""
    assert set(_GROUP_FUNCTIONS) == set(GROUPS), (
        f"check groups {sorted(set(GROUPS) ^ set(_GROUP_FUNCTIONS))} are in only one of "
        "monitoring.checks.GROUPS and its group functions")
    doc = (PROJECT_ROOT / "docs" / "monitoring.md").read_text()
    for group in GROUPS:
        assert f"| `{group}` |" in doc, f"check group {group!r} has no row in docs/monitoring.md"
