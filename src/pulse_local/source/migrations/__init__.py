"""Versioned SQL migrations of the Pulse OLTP schema.

Files are ``NNNN_name.sql`` next to this module, applied in version order by :func:`migrate`
with the owner role (``settings.admin_dsn()``). Each file runs in its own transaction and is
recorded in ``schema_migrations`` with the SHA-256 of its text. Re-running applies only what is
new; a file whose text changed after it was applied stops the run (write a new migration
instead of editing an applied one).

The only placeholder is ``{{app_role}}``: the quoted application role (``settings.db_app_user``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pulse_local.config import Settings
from pulse_local.errors import PulseError

MIGRATIONS_DIR = Path(__file__).resolve().parent
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: Arbitrary constant for pg_advisory_xact_lock: one migrator at a time per database.
_LOCK_KEY = 0x5055_4C53


class MigrationError(PulseError):
    """A migration cannot be applied (changed checksum, bad file name, SQL error)."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: str
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file text as written (before placeholders are filled in)."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    def render(self, app_role: str) -> str:
        """The SQL with ``{{app_role}}`` replaced by the quoted role name."""
        quoted = '"' + app_role.replace('"', '""') + '"'
        return self.sql.replace("{{app_role}}", quoted)


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file of `directory`, ordered by version; refuses odd names and gaps."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(
                f"migration file {path.name} does not match NNNN_name.sql: rename it "
                "(e.g. 0004_add_index.sql)"
            )
        found.append(Migration(match[1], match[2], path, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}: {versions}")
    return found


_BOOKKEEPING = """
create table if not exists schema_migrations (
    version    text primary key,
    name       text not null,
    checksum   text not null,
    applied_at timestamptz not null default now(),
    applied_by text not null default current_user
)
"""


def migrate(settings: Settings, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations to ``settings.admin_dsn()``; return the versions applied now.

    Safe to re-run (returns ``[]`` when up to date) and safe to run concurrently (an advisory
    lock serialises migrators). Raises `MigrationError` when an applied file changed.
    """
    import psycopg

    migrations = discover(directory)
    applied_now: list[str] = []
    try:
        conn = psycopg.connect(settings.admin_dsn(), connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise MigrationError(
            f"cannot connect to the database as {settings.db_admin_user} to migrate: {exc}. "
            "Start the stack (`pulse-local up`) or set PULSE_ADMIN_DATABASE_URL"
        ) from exc
    with conn:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(_BOOKKEEPING)
            rows = conn.execute("select version, name, checksum from schema_migrations").fetchall()
        recorded = {version: (name, checksum) for version, name, checksum in rows}
        for migration in migrations:
            if migration.version in recorded:
                name, checksum = recorded[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.path.name} was changed after it was applied "
                        f"(recorded as {migration.version}_{name}, checksum {checksum[:12]}, "
                        f"file now {migration.checksum[:12]}): restore the file and put the "
                        "change in a new migration"
                    )
                continue
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                again = conn.execute(
                    "select 1 from schema_migrations where version = %s", (migration.version,)
                ).fetchone()
                if again:  # a concurrent migrator applied it while we waited for the lock
                    continue
                try:
                    conn.execute(migration.render(settings.db_app_user).encode("utf-8"))
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.path.name} failed and was rolled back: "
                        f"{exc.diag.message_primary or exc}. Fix the file (it was not applied) "
                        "and run `pulse-local migrate` again"
                    ) from exc
                conn.execute(
                    "insert into schema_migrations (version, name, checksum) values (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied_now.append(migration.version)
    return applied_now


def applied_versions(settings: Settings) -> list[str]:
    """Versions recorded in ``schema_migrations`` (empty when the table does not exist)."""
    import psycopg

    with psycopg.connect(settings.admin_dsn()) as conn:
        exists = conn.execute("select to_regclass('schema_migrations')").fetchone()
        if not exists or exists[0] is None:
            return []
        return [r[0] for r in conn.execute("select version from schema_migrations order by 1")]
