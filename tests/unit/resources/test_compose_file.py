"""compose/docker-compose.yml parses and agrees with the Settings defaults."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import yaml

from pulse_local.config import PROJECT_ROOT, Settings

COMPOSE_FILE = PROJECT_ROOT / "compose" / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture()
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings' own defaults: a stack's PULSE_* exports (a session stack's, a user's) removed."""
    for name in [n for n in os.environ if n.startswith("PULSE_")]:
        monkeypatch.delenv(name)
    return Settings(_env_file=None, PUBSUB_EMULATOR_HOST=None, BIGTABLE_EMULATOR_HOST=None)  # type: ignore[call-arg]


#: ``${PULSE_X:-default}``: compose's variable substitution with a default.
_VARIABLE = re.compile(r"\$\{(?P<name>\w+):-(?P<default>[^}]*)\}")


def _resolve(text: str, settings: Settings) -> str:
    """Substitute ``${PULSE_<FIELD>:-default}``, checking the name is a Settings field whose
    default equals the one in the compose file."""

    def default(match: re.Match[str]) -> str:
        name, value = match["name"], match["default"]
        assert name.startswith("PULSE_"), f"{name} is not a pulse-local variable"
        field = name.removeprefix("PULSE_").lower()
        assert field in Settings.model_fields, f"{name} is not a Settings field"
        assert str(getattr(settings, field)) == value, f"{name} default differs from Settings"
        return value

    return _VARIABLE.sub(default, text)


def _host_ports(service: dict[str, Any], settings: Settings) -> set[int]:
    return {int(_resolve(str(mapping), settings).split(":")[0]) for mapping in service["ports"]}


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "pubsub", "bigtable", "prefect"}
    for name, service in compose["services"].items():
        assert "healthcheck" in service, f"{name} needs a healthcheck"


def test_ports_match_settings(compose: dict[str, Any], defaults: Settings) -> None:
    services = compose["services"]
    assert _host_ports(services["postgres"], defaults) == {defaults.postgres_port}
    assert _host_ports(services["pubsub"], defaults) == {defaults.pubsub_port}
    assert _host_ports(services["bigtable"], defaults) == {defaults.bigtable_port}
    assert _host_ports(services["prefect"], defaults) == {defaults.prefect_port}
    # Inside the containers the emulators listen on the default ports the mappings target.
    assert "--host-port=0.0.0.0:8085" in services["pubsub"]["command"]
    assert "--host-port=0.0.0.0:8086" in services["bigtable"]["command"]
    assert {str(p).rsplit(":", 1)[1] for p in services["pubsub"]["ports"]} == {"8085"}
    assert {str(p).rsplit(":", 1)[1] for p in services["bigtable"]["ports"]} == {"8086"}


def test_postgres_is_ready_for_cdc(compose: dict[str, Any], defaults: Settings) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    command = " ".join(postgres["command"])
    for flag in ("wal_level=logical", "max_replication_slots=10", "max_wal_senders=10"):
        assert flag in command
    env = postgres["environment"]
    assert env["POSTGRES_USER"] == defaults.db_admin_user
    # the stack's generated password, from the environment `pulse-local up` gives compose;
    # never a fixed one (compose refuses to start without it)
    assert env["POSTGRES_PASSWORD"].startswith("${PULSE_DB_ADMIN_PASSWORD:?")
    prefect = compose["services"]["prefect"]["environment"]
    assert "${PULSE_DB_ADMIN_PASSWORD:?" in prefect["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert prefect["PREFECT_SERVER_API_AUTH_STRING"].startswith("${PREFECT_API_AUTH_STRING:?")
    assert env["POSTGRES_DB"] == defaults.db_name
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["volumes"]


def test_emulators_use_the_project_and_instance(
    compose: dict[str, Any], defaults: Settings
) -> None:
    services = compose["services"]
    command = _resolve(services["pubsub"]["command"], defaults)
    assert f"--project={defaults.project}" in command
    pubsub_check = " ".join(services["pubsub"]["healthcheck"]["test"])
    assert f"/v1/projects/{defaults.project}/topics" in pubsub_check
    bigtable_check = " ".join(services["bigtable"]["healthcheck"]["test"])
    assert (
        f"-project {defaults.project} -instance {defaults.bigtable_instance} ls" in bigtable_check
    )


def test_prefect_uses_postgres(compose: dict[str, Any]) -> None:
    prefect = compose["services"]["prefect"]
    image = prefect["image"]
    assert image.startswith("prefecthq/prefect:3") and image.endswith("-python3.11")
    url = prefect["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert url.startswith("postgresql+asyncpg://") and url.endswith("@postgres:5432/prefect")
    assert "http://localhost:4200/api/health" in " ".join(prefect["healthcheck"]["test"])
    assert "CREATE DATABASE prefect" in compose["configs"]["prefect-db"]["content"]
