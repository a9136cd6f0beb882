"""Wiring: a service port is named once. A `config.stack_port` field is the whole declaration of a
port: its variable, its `pulse-local env` entry and the test stack's free port come from it,
and a `ServiceSpec` names it by ``port_field``. Half a service (a port no service listens on,
a service whose port is not a stack port) fails here. Nothing starts; the test stack's free
ports are numbered stand-ins (a fake, said here)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from pulse_local.config import Settings, port_setting, stack_port_fields
from pulse_local.endpoints import service_env
from pulse_local.stack.services import ServiceSpec, native_services
from pulse_local.testing import plugin

SERVICES = native_services(Settings())


def test_every_stack_port_belongs_to_a_service_that_listens_on_it() -> None:
    listening = {spec.port_field for spec in SERVICES if spec.uses_port}
    orphans = sorted(set(stack_port_fields()) - listening)
    assert not orphans, (f"config.stack_port fields {orphans} are no service's port: add the "
                         "ServiceSpec (stack/services.py) with port_field naming it")


@pytest.mark.parametrize("spec", SERVICES, ids=lambda spec: spec.name)
def test_every_service_port_is_a_stack_port(spec: ServiceSpec) -> None:
    assert spec.port_field in stack_port_fields(), (
        f"service {spec.name!r}: port_field {spec.port_field!r} is not declared with "
        "config.stack_port (its variable, env entry and test port would be missing)")
    assert spec.port_setting == port_setting(spec.port_field)


def test_env_and_test_stack_are_generated_from_the_declarations(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fields = stack_port_fields()
    assert fields[:2] == ("postgres_port", "pubsub_port") and len(fields) == 6
    env = service_env(Settings(state_dir=Path("/nonexistent")))
    assert [key for key in env if key.endswith("_PORT")] == [port_setting(f) for f in fields]
    counter = itertools.count(30001)
    monkeypatch.setattr(plugin, "free_port", lambda: next(counter))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # one process: every port
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    settings = plugin.make_test_settings()
    try:
        assert [getattr(settings, f) for f in fields] == list(range(30001, 30001 + len(fields)))
    finally:
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def test_parallel_test_workers_pick_different_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under pytest-xdist, worker gwN of M keeps the free ports whose half is N modulo M, a
    stack never gets one port twice, and a kernel that offers odd ports only (Linux, for
    ``bind`` to port 0) still serves every worker. The fake `free_port` repeats on purpose."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    for worker, rest in (("gw0", 0), ("gw1", 1)):
        offered = iter([30001, 30001, *range(30003, 30100, 2)])
        monkeypatch.setattr(plugin, "free_port", offered.__next__)
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        ports = plugin.stack_ports(("a", "b", "c"))
        assert len(set(ports.values())) == 3
        assert all((port // 2) % 2 == rest for port in ports.values()), (worker, ports)
