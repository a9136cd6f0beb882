"""Unit tests (no sockets, no services): settings, tool discovery errors, CLI help.

Some tests fake the environment (PATH, JAVA_HOME, a fake SDK root) with monkeypatch: that is
the point of them, they check the error a user without Java or an emulator gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pulse_local.cli import app
from pulse_local.config import Settings, load_settings
from pulse_local.errors import ConfigError, ToolMissing
from pulse_local.stack import tools
from pulse_local.stack.services import service_env


def test_unknown_profile_is_a_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_PROFILE", "staging")
    with pytest.raises(ConfigError, match="PULSE_PROFILE=local.*PULSE_PROFILE=gcp"):
        load_settings()


def test_profile_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_PROFILE", "GCP")
    assert load_settings().profile == "gcp"


def test_bad_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_POSTGRES_PORT", "99999")
    with pytest.raises(ConfigError, match="PULSE_POSTGRES_PORT"):
        load_settings()


def test_env_exports_point_at_the_configured_ports(tmp_path: Path) -> None:
    env = service_env(Settings(state_dir=tmp_path, pubsub_port=9001, bigtable_port=9002,
                               prefect_port=9003))
    assert env["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:9001"
    assert env["BIGTABLE_EMULATOR_HOST"] == "127.0.0.1:9002"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:9003/api"
    assert env["PULSE_STATE_DIR"] == str(tmp_path)


def test_missing_emulator_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="gcloud components install pubsub-emulator"):
        tools.pubsub_emulator(tmp_path)
    with pytest.raises(ToolMissing, match="gcloud components install bigtable"):
        tools.bigtable_emulator(tmp_path)


def test_missing_java_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = tmp_path / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
    launcher.parent.mkdir(parents=True)
    launcher.write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # fake: a PATH without java
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ToolMissing, match="openjdk"):
        tools.pubsub_emulator(tmp_path)


def test_missing_gcloud_names_the_install_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # fake: a PATH without gcloud
    with pytest.raises(ToolMissing, match="cloud.google.com/sdk"):
        tools.gcloud_sdk_root()


def test_bad_pg_bindir_is_named(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="PULSE_PG_BINDIR"):
        tools.find_postgres(tmp_path)


def test_postgres_is_found_on_this_machine() -> None:
    found = tools.find_postgres()
    assert found.initdb.is_file() and found.postgres.is_file()


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Example:" in result.output, f"`pulse-local {name} --help` has no Example:"
