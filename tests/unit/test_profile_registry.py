"""Wiring: each profile is declared once (`pulse_local.profiles.PROFILES`) and everything that
differs by profile agrees with its entry: the config validator, the backend factory, endpoint
resolution, dbt/profiles.yml and dbt_project.yml, `pulse-local dbt check`, resource
declarations and `pulse-local deployments list`. Adding half a profile fails here saying what
is missing. Nothing starts (the factory makes no client until first use)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import get_args

import pytest
import yaml
from rich.console import Console

from pulse_local import cli
from pulse_local.backends import for_profile
from pulse_local.config import PROJECT_ROOT, ConfigError, Profile, Settings, load_settings
from pulse_local.endpoints import client_environment, emulator_endpoints
from pulse_local.orchestration import DEPLOYMENTS, deployment_name
from pulse_local.profiles import ALL_PROFILES, PROFILES, ProfileSpec
from pulse_local.resources.loader import load_pubsub
from pulse_local.warehouse.check import CHECKS

SPECS = list(PROFILES.values())


def _ids(spec: ProfileSpec) -> str:
    return spec.name


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PULSE_* or emulator variable of the caller's shell, and no .env file, leaks in."""
    for key in list(os.environ):
        if key.startswith(("PULSE_", "PUBSUB_", "BIGTABLE_", "BIGQUERY_", "STORAGE_",
                           "PREFECT_API")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _settings(spec: ProfileSpec) -> Settings:
    return load_settings(profile=spec.name, project="wiring-check",
                         state_dir=Path("/nonexistent"))


def test_every_profile_has_one_registry_entry() -> None:
    assert set(PROFILES) == set(get_args(Profile)) == set(ALL_PROFILES), (
        f"pulse_local.profiles: Profile {sorted(get_args(Profile))} and PROFILES "
        f"{sorted(PROFILES)} must name the same profiles")
    for name, spec in PROFILES.items():
        assert spec.name == name, f"PROFILES[{name!r}] is declared as {spec.name!r}"


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_config_accepts_the_profile_and_names_it_when_refusing_another(
        spec: ProfileSpec, clean_env: None) -> None:
    assert _settings(spec).profile == spec.name
    with pytest.raises(ConfigError) as refused:
        load_settings(profile="no-such-profile")
    assert f"PULSE_PROFILE={spec.name}" in str(refused.value)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_factory_builds_the_backends_the_registry_names(spec: ProfileSpec,
                                                        clean_env: None) -> None:
    backends = for_profile(_settings(spec))
    built = {field: type(getattr(backends, field)).__name__
             for field in ("archive", "bus", "warehouse", "raw_events", "change_streams")}
    named = vars(spec.backends)
    assert built == named, (f"profile {spec.name!r}: backends.for_profile builds {built}, "
                            f"its entry in pulse_local.profiles names {named}")
    assert backends.raw_table_prefix == spec.raw_table_prefix
    assert backends.run_files_here == spec.run_files_here


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_endpoints_and_client_environment_follow_the_registry(spec: ProfileSpec,
                                                             clean_env: None) -> None:
    settings = _settings(spec)
    endpoints = emulator_endpoints(settings)
    on_emulators = endpoints.pubsub is not None and endpoints.bigtable is not None
    assert on_emulators == spec.stack_emulators, (
        f"profile {spec.name!r}: Google clients go to {endpoints}, but stack_emulators is "
        f"{spec.stack_emulators}")
    assert bool(client_environment(settings)) == spec.stack_client_environment


def _dbt_outputs() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "dbt" / "profiles.yml").read_text())["pulse"]["outputs"]


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_dbt_target_adapter_and_raw_table_naming_match_the_registry(spec: ProfileSpec) -> None:
    outputs = _dbt_outputs()
    assert spec.dbt_target == spec.name, "dbt's target is PULSE_PROFILE itself"
    assert spec.dbt_target in outputs, (
        f"profile {spec.name!r}: dbt/profiles.yml has no output {spec.dbt_target!r}")
    assert outputs[spec.dbt_target]["type"] == spec.dbt_adapter, (
        f"profile {spec.name!r}: dbt output {spec.dbt_target!r} is of type "
        f"{outputs[spec.dbt_target]['type']!r}, the registry says {spec.dbt_adapter!r}")
    project = yaml.safe_load((PROJECT_ROOT / "dbt" / "dbt_project.yml").read_text())
    prefixes = project["vars"]["raw_table_prefixes"]
    assert prefixes.get(spec.dbt_adapter) == spec.raw_table_prefix, (
        f"profile {spec.name!r}: dbt_project.yml raw_table_prefixes[{spec.dbt_adapter!r}] is "
        f"{prefixes.get(spec.dbt_adapter)!r}, the registry says {spec.raw_table_prefix!r}")


def test_dbt_check_has_one_checker_per_profile_adapter() -> None:
    """`pulse-local dbt check --target <profile>` picks its checker by the output's adapter
    (pulse_local.warehouse.check.CHECKS): every profile's adapter has one."""
    adapters = {spec.dbt_adapter for spec in PROFILES.values()}
    assert set(CHECKS) == adapters, (
        f"warehouse.check.CHECKS checks adapters {sorted(CHECKS)}; profiles use {sorted(adapters)}")


def test_resource_declarations_name_only_registered_profiles() -> None:
    """emulators/pubsub/resources.yaml: each resource's ``profiles:`` (default: all of them)."""
    declarations = load_pubsub()
    used = {p for r in [*declarations.topics, *declarations.subscriptions] for p in r.profiles}
    assert used <= set(PROFILES), f"resources.yaml names profiles {sorted(used - set(PROFILES))}"


def test_deployments_list_shows_every_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=400))
    cli.deployments_list()
    text = out.getvalue()
    for spec in SPECS:
        for d in DEPLOYMENTS:
            assert deployment_name(d.flow, spec.name) in text, (
                f"`pulse-local deployments list` lacks {deployment_name(d.flow, spec.name)}")
