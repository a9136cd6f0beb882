"""Per-stack generated credentials (no sockets, no PostgreSQL: single-user mode is proven by
tests/integration/stack/test_role_passwords.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse_local import secret_files
from pulse_local.config import LEGACY_PASSWORDS, Settings
from pulse_local.endpoints import prefect_auth_headers, service_env
from pulse_local.errors import ConfigError
from pulse_local.stack.credentials import (
    passwords_digest,
    prepare_stack_secrets,
    role_password_statements,
)
from pulse_local.stack.services import native_services


def test_each_stack_generates_its_own_private_secrets(tmp_path: Path) -> None:
    one, two = Settings(state_dir=tmp_path / "one"), Settings(state_dir=tmp_path / "two")
    for settings in (one, two):
        prepare_stack_secrets(settings, {"postgres", "prefect"})
    assert one.admin_password() != two.admin_password()
    assert one.app_password() != two.app_password() != one.admin_password()
    for name in (secret_files.DB_ADMIN_PASSWORD, secret_files.DB_APP_PASSWORD,
                 secret_files.PREFECT_API_AUTH):
        path = secret_files.secret_path(one.state_dir, name)
        assert path.stat().st_mode & 0o777 == 0o600, name
    assert secret_files.secrets_dir(one.state_dir).stat().st_mode & 0o777 == 0o700
    assert len(one.admin_password()) == 48 and int(one.admin_password(), 16)
    assert one.app_dsn() == (f"postgresql://pulse_app:{one.app_password()}@127.0.0.1:54329/pulse")
    assert f":{one.admin_password()}@" in one.admin_dsn()


def test_generation_is_stable_and_only_for_starting_services(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    prepare_stack_secrets(settings, {"prefect"})
    assert secret_files.read_secret(tmp_path, secret_files.DB_ADMIN_PASSWORD) is None
    auth = secret_files.read_secret(tmp_path, secret_files.PREFECT_API_AUTH)
    assert auth is not None and auth.startswith("pulse:")
    prepare_stack_secrets(settings, {"postgres"})
    first = settings.admin_password()
    prepare_stack_secrets(settings, {"postgres", "prefect"})
    assert settings.admin_password() == first
    assert secret_files.read_secret(tmp_path, secret_files.PREFECT_API_AUTH) == auth


def test_an_explicit_password_wins_and_an_old_stack_keeps_its_fixed_ones(tmp_path: Path) -> None:
    old = Settings(state_dir=tmp_path)  # nothing generated yet: a stack made before this
    assert old.admin_password() == LEGACY_PASSWORDS[secret_files.DB_ADMIN_PASSWORD]
    prepare_stack_secrets(old, {"postgres"})
    assert old.admin_password() != "pulse_admin"
    explicit = Settings(state_dir=tmp_path, db_admin_password="mine-1", db_app_password="mine-2")
    assert explicit.admin_password() == "mine-1" and ":mine-2@" in explicit.app_dsn()
    assert Settings(state_dir=tmp_path, database_url="postgresql://x/y").app_dsn() \
        == "postgresql://x/y"


def test_a_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    prepare_stack_secrets(settings, {"postgres"})
    path = secret_files.secret_path(tmp_path, secret_files.DB_APP_PASSWORD)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {path}"):
        settings.app_dsn()


def test_the_prefect_server_and_its_clients_get_the_auth_string(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert "PREFECT_API_AUTH_STRING" not in service_env(settings)  # before the first start
    assert prefect_auth_headers(settings) == {}
    prepare_stack_secrets(settings, {"postgres", "prefect"})
    auth = secret_files.read_secret(tmp_path, secret_files.PREFECT_API_AUTH)
    assert service_env(settings)["PREFECT_API_AUTH_STRING"] == auth
    assert prefect_auth_headers(settings)["Authorization"].startswith("Basic ")
    prefect = next(s for s in native_services(settings) if s.name == "prefect")
    env = prefect.env(settings)
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == auth
    assert settings.admin_password() in env["PREFECT_API_DATABASE_CONNECTION_URL"]


def test_role_statements_and_digest(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, db_admin_password="a'b", db_app_password="c")
    admin, app = role_password_statements(settings)
    assert admin == "ALTER ROLE \"pulse_admin\" PASSWORD 'a''b';"
    assert "rolname = 'pulse_app'" in app and "PASSWORD 'c'" in app
    assert all("\n" not in s for s in (admin, app))  # single-user mode: one line each
    digest = passwords_digest(settings)
    assert "a'b" not in digest and digest != passwords_digest(
        Settings(state_dir=tmp_path, db_admin_password="a'b", db_app_password="d"))


def test_an_old_stack_restarting_postgres_alone_keeps_its_passwords(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    note = prepare_stack_secrets(settings, {"postgres"}, {"processor", "cdc"})
    assert note is not None and "pulse-local down && pulse-local up" in note
    assert settings.admin_password() == "pulse_admin"  # the running services' password
    assert prepare_stack_secrets(settings, {"postgres", "processor"}, set()) is None
    assert settings.admin_password() != "pulse_admin"
    # generated once: a later restart of PostgreSQL alone changes nothing
    first = settings.admin_password()
    assert prepare_stack_secrets(settings, {"postgres"}, {"processor"}) is None
    assert settings.admin_password() == first
