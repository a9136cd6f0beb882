"""No service of the native stack gets a password on its command line (every local user can
read command lines with `ps`); Prefect's launcher finds its database in its environment."""

from __future__ import annotations

from pathlib import Path

from pulse_local.config import Settings
from pulse_local.errors import ToolMissing
from pulse_local.stack.prefect_server import database_dsn
from pulse_local.stack.services import native_services, prefect_db_url

ADMIN, APP = "admin-Pw-4b1f9", "app-Pw-77c2e"


def test_no_command_line_holds_a_password(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, db_admin_password=ADMIN, db_app_password=APP)
    checked = 0
    for spec in native_services(settings):
        try:
            argv = " ".join(spec.argv(settings))
        except ToolMissing:  # an emulator not installed here: its command line is not built
            continue
        assert ADMIN not in argv and APP not in argv, (spec.name, argv)
        checked += 1
    assert checked >= 6


def test_the_prefect_launcher_reads_its_dsn_from_the_environment(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, db_admin_password=ADMIN)
    dsn = database_dsn({"PREFECT_API_DATABASE_CONNECTION_URL": prefect_db_url(settings)})
    assert dsn is not None and dsn.startswith("postgresql://") and ADMIN in dsn
    assert "+asyncpg" not in dsn and dsn.endswith("/prefect")
    assert database_dsn({}) is None
    assert database_dsn({"PREFECT_API_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///x.db"}) \
        is None
