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
        assert conn.execute("select count(*) from schema_migrations").fetchone()[0] == len(
            discover())


#: The key lookups of every webhook (the processor's statements and the foreign-key checks of
#: its inserts): table, the columns given, the column the chosen index must be searched by.
KEY_LOOKUPS = [
    ("responses", ("tenant_id", "id"), "id"),  # answers' and deliveries' foreign keys
    ("responses", ("tenant_id", "typeform_token"), "typeform_token"),  # prior revision
    ("answers", ("tenant_id", "response_id"), "response_id"),  # a revision's answers
    ("questions", ("tenant_id", "id"), "id"),  # answers' foreign key
    ("users", ("tenant_id", "external_id"), "external_id"),  # the respondent
    ("users", ("tenant_id", "id"), "id"),  # responses' foreign key
]


@pytest.mark.parametrize(("table", "given", "key"), KEY_LOOKUPS)
def test_key_lookups_are_planned_as_key_lookups_on_a_new_database(
        scratch_db: Any, table: str, given: tuple[str, ...], key: str) -> None:
    """On freshly migrated, never analyzed tables (every new stack, and the plans a
    connection caches from then on) the plan of a key lookup must search the index by the
    key, not scan the tenant's entries: measured before 0004_index_order, each answer's
    foreign-key check read all of its tenant's responses."""
    migrate(scratch_db)
    where = " and ".join(f"{c} = ${i}" for i, c in enumerate(given, 1))
    with psycopg.connect(scratch_db.admin_dsn(), autocommit=True) as conn:
        types = [conn.execute("select format_type(atttypid, atttypmod) from pg_attribute "
                              "where attrelid = %s::regclass and attname = %s",
                              (table, c)).fetchone()[0] for c in given]
        conn.execute(f"prepare lookup({', '.join(types)}) as "
                     f"select 1 from only {table} where {where}")
        conn.execute("set plan_cache_mode = force_generic_plan")
        nulls = ", ".join("null" for _ in given)
        plan = "\n".join(r[0] for r in conn.execute(f"explain execute lookup({nulls})"))
    conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert conditions and all(f"({key} = " in line for line in conditions), plan


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
