"""PostgreSQL for the native stack: its own cluster under the state directory.

`wal_level=logical` for change data capture; an owner role (``pulse_admin``) for migrations and
replication and an application role (``pulse_app``) that is neither superuser nor BYPASSRLS, so
row-level security applies to the application. PostgreSQL refuses to run as root: when we are
root the cluster is owned by, and the server runs as, the ``postgres`` account.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pulse_local.stack.tools as tools  # noqa: PLR0402 (no package import: circle)
from pulse_local.config import Settings
from pulse_local.errors import StackStateError


def cluster_dir(settings: Settings) -> Path:
    return settings.state_dir / "postgres"


def data_dir(settings: Settings) -> Path:
    return cluster_dir(settings) / "data"


def _binaries() -> tools.PostgresBinaries:
    override = os.environ.get("PULSE_PG_BINDIR")
    return tools.find_postgres(Path(override) if override else None)


def run_as_postgres(settings: Settings) -> dict[str, Any]:
    """`subprocess` keyword arguments that run a child as the `postgres` account when we are
    root (the server refuses to run as root); none otherwise.

    The child switches by itself between fork and exec (``user``/``group``/``extra_groups``,
    looked up here, in the parent): no Python code runs there, which in a parent with threads
    (the stack starts services in parallel) could deadlock on a lock held at the fork.
    """
    account = tools.postgres_os_user()
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid,
            "extra_groups": os.getgrouplist(account.pw_name, account.pw_gid)}


def _check_traversable(path: Path, state_dir: Path) -> None:
    """As root, the `postgres` account must reach the cluster: open our own directories to
    traversal (x for others, never read/write), and refuse to touch anything outside the state
    directory, naming the directory that blocks and the setting that avoids it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & stat.S_IXOTH:
            continue
        if parent == state_dir or state_dir in parent.parents:
            parent.chmod(mode | stat.S_IXOTH)
            continue
        raise StackStateError(
            f"PostgreSQL runs as the 'postgres' account (we are root) and cannot enter {parent} "
            f"(mode {stat.filemode(mode)}). Choose a state directory it can reach, e.g. "
            f"export PULSE_STATE_DIR=/var/tmp/pulse, or `chmod o+x {parent}`"
        )


def init_cluster(settings: Settings) -> bool:
    """Create the cluster once (`initdb`), owned by the account the server runs as; True when
    it was created now."""
    data = data_dir(settings)
    if (data / "PG_VERSION").exists():
        return False
    binaries = _binaries()
    root = cluster_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    account = tools.postgres_os_user()
    pwfile = root / "initdb.pw"
    pwfile.touch(mode=0o600)
    pwfile.chmod(0o600)
    pwfile.write_text(settings.admin_password() + "\n")
    if account is not None:
        _check_traversable(root, settings.state_dir)
        os.chown(root, account.pw_uid, account.pw_gid)
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    pwfile.chmod(0o600)
    try:
        result = subprocess.run(
            [
                str(binaries.initdb), "-D", str(data), "-U", settings.db_admin_user,
                f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
                "-E", "UTF8", "--no-locale", "--no-sync",
            ],
            capture_output=True, text=True, check=False, **run_as_postgres(settings),
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise StackStateError(
            f"initdb failed ({binaries.initdb}, from {binaries.source}):\n{result.stderr.strip()}"
        )
    return True


def server_argv(settings: Settings) -> list[str]:
    """The `postgres` command line: all settings on it, so the cluster's files stay stock."""
    options = {
        "listen_addresses": settings.host,
        "port": str(settings.postgres_port),
        "unix_socket_directories": "",
        "wal_level": "logical",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
        "max_connections": "200",
        "shared_buffers": "256MB",
        "logging_collector": "off",
    }
    argv = [str(_binaries().postgres), "-D", str(data_dir(settings))]
    for key, value in options.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def bootstrap(settings: Settings) -> None:
    """Create roles and databases if missing (idempotent), then apply the schema migrations."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.admin_dsn("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_roles where rolname = %s", (settings.db_app_user,)
        ).fetchone()
        if not exists:
            conn.execute(
                sql.SQL(
                    "create role {} login password {} nosuperuser nocreatedb nocreaterole "
                    "nobypassrls noreplication"
                ).format(sql.Identifier(settings.db_app_user), sql.Literal(settings.app_password()))
            )
        for database in (settings.db_name, "prefect"):
            found = conn.execute("select 1 from pg_database where datname = %s", (database,))
            if not found.fetchone():
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
        conn.execute(
            sql.SQL("grant connect on database {} to {}").format(
                sql.Identifier(settings.db_name), sql.Identifier(settings.db_app_user)
            )
        )
    from pulse_local.source.migrations import migrate

    migrate(settings)


def checkpoint_early(settings: Settings) -> str | None:
    """Write the dirty buffers out now (`CHECKPOINT`), while the services that use PostgreSQL
    are still stopping, so the shutdown checkpoint that follows has little left to write (it
    was 1-1.7 s of `down` right after a bulk load or a cold start). Nothing depends on it: a
    failure is a note, and the shutdown checkpoint does the whole work as before."""
    import psycopg

    try:
        with psycopg.connect(settings.admin_dsn(), connect_timeout=2, autocommit=True) as conn:
            conn.execute("checkpoint")
    except psycopg.Error as exc:
        return f"postgres: the early checkpoint failed ({str(exc).strip()[:120]}); its shutdown did it"
    return None
