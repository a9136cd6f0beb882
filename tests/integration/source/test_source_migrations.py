"""Migrations against the real PostgreSQL: idempotent, checksummed, CDC-ready."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pulse_local.source.migrations import MIGRATIONS_DIR, MigrationError, discover, migrate

pytestmark = pytest.mark.integration

TENANT_TABLES = ["organizations", "webhook_secrets", "teams", "users", "assessments",
                 "questions", "assessment_runs", "run_participants", "responses", "answers",
                 "webhook_deliveries"]


@pytest.fixture()
def scratch_db(pulse_stack: Any, pulse_settings: Any) -> Any:
    """Settings pointing at a fresh empty database (dropped afterwards)."""
    name = f"mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pulse_settings.admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    settings = pulse_settings.model_copy(update={"db_name": name, "admin_database_url": None})
    yield settings
    with psycopg.connect(pulse_settings.admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def test_migrate_applies_all_then_nothing(scratch_db: Any) -> None:
    versions = [m.version for m in discover()]
    assert migrate(scratch_db) == versions
    assert migrate(scratch_db) == []
    with psycopg.connect(scratch_db.admin_dsn()) as conn:
        recorded = conn.execute("select version, checksum from schema_migrations "
                                "order by 1").fetchall()
    assert [(v, c) for v, c in recorded] == [(m.version, m.checksum) for m in discover()]


def test_changed_applied_file_is_refused(scratch_db: Any, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    migrate(scratch_db, folder)
    target = folder / "0001_schema.sql"
    target.write_text(target.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="0001_schema.sql was changed"):
        migrate(scratch_db, folder)


def test_failed_migration_rolls_back_and_says_so(scratch_db: Any, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (folder / "0099_broken.sql").write_text("create table half (id int);\nselect nope;\n")
    with pytest.raises(MigrationError, match="0099_broken.sql failed and was rolled back"):
        migrate(scratch_db, folder)
    with psycopg.connect(scratch_db.admin_dsn()) as conn:
        assert conn.execute("select to_regclass('half')").fetchone()[0] is None
        assert conn.execute("select count(*) from schema_migrations").fetchone()[0] == 3


def test_rls_forced_on_every_tenant_table(seeded: Any, pg_admin: Any) -> None:
    rows = pg_admin.execute(
        "select relname, relrowsecurity, relforcerowsecurity from pg_class "
        "where relname = any(%s) and relkind = 'r'", (TENANT_TABLES,)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(TENANT_TABLES)
    assert all(r[1] and r[2] for r in rows), rows


def test_publication_and_replica_identity(seeded: Any, pg_admin: Any) -> None:
    published = {r[0] for r in pg_admin.execute(
        "select tablename from pg_publication_tables where pubname = 'pulse_pipeline'")}
    assert published == set(TENANT_TABLES) - {"webhook_secrets", "webhook_deliveries"}
    identity = dict(pg_admin.execute(
        "select relname, relreplident from pg_class where relname = any(%s) and relkind = 'r'",
        (TENANT_TABLES,)).fetchall())
    assert identity["users"] == "f" and identity["answers"] == "f"
    assert identity["responses"] == "d"


def test_app_role_is_not_privileged(seeded: Any, pg_admin: Any, pulse_settings: Any) -> None:
    row = pg_admin.execute("select rolsuper, rolbypassrls from pg_roles where rolname = %s",
                           (pulse_settings.db_app_user,)).fetchone()
    assert row == (False, False)
    member = pg_admin.execute("select pg_has_role(%s, 'pulse_cdc', 'member')",
                              (pulse_settings.db_app_user,)).fetchone()[0]
    assert member is False
