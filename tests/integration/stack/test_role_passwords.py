"""Integration: the database roles get the stack's generated passwords, also on a cluster made
with the old fixed ones (real PostgreSQL of a stack of its own, on a free port)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import psycopg
import pytest

from pulse_local import secret_files
from pulse_local.config import Settings
from pulse_local.stack.credentials import applied_marker
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services
from pulse_local.testing.plugin import make_test_settings

pytestmark = pytest.mark.integration


def _postgres_only(settings: Settings) -> NativeStack:
    return NativeStack(settings, [s for s in native_services(settings) if s.name == "postgres"])


@pytest.fixture()
def settings() -> Iterator[Settings]:
    s = make_test_settings()
    yield s
    _postgres_only(s).down(save=False)
    shutil.rmtree(s.state_dir, ignore_errors=True)


def _who(dsn: str) -> str:
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        return conn.execute("select current_user").fetchone()[0]  # type: ignore[index]


def test_a_stack_made_with_the_fixed_passwords_gets_generated_ones_at_up(
        settings: Settings) -> None:
    # a stack as an older pulse-local made it: roles pulse_admin/pulse_admin, pulse_app/pulse_app
    old = settings.model_copy(update={"db_admin_password": "pulse_admin",
                                      "db_app_password": "pulse_app"})
    stack = _postgres_only(old)
    stack.up()
    assert _who(old.app_dsn()) == "pulse_app"
    stack.down()
    shutil.rmtree(secret_files.secrets_dir(settings.state_dir))
    applied_marker(settings).unlink()

    assert settings.admin_password() == "pulse_admin"  # until `up`: the old ones still work
    stack = _postgres_only(settings)
    stack.up()
    admin, app = settings.admin_password(), settings.app_password()
    assert admin != "pulse_admin" and app != "pulse_app" and len(admin) == 48
    assert _who(settings.admin_dsn()) == "pulse_admin"
    assert _who(settings.app_dsn()) == "pulse_app"
    for fixed in (old.admin_dsn(), old.app_dsn()):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _who(fixed)
    log = (settings.state_dir / "logs" / "postgres.log").read_text(errors="replace")
    assert admin not in log and app not in log

    # a second `up` on a cluster that has them already: nothing to do, still the same
    stack.down()
    marker = applied_marker(settings).read_text()
    stack.up()
    assert applied_marker(settings).read_text() == marker
    assert _who(settings.app_dsn()) == "pulse_app"
