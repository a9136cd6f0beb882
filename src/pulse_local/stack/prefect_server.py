"""Prefect's API server for the native stack, started so its slow part overlaps PostgreSQL's.

`prefect server start` imports the server (about 6 s on a 2-core machine) only after it is
launched, and it needs its database at once. Here the import happens first, while PostgreSQL
initialises in parallel; then we wait for Prefect's database to accept connections and serve.
Settings come from the environment (`PREFECT_*`), as with `prefect server start`; the database
waited for is ``PREFECT_API_DATABASE_CONNECTION_URL``'s (never a command-line argument: the
command line of every process is readable by every local user, and the DSN holds a password).

A warm start skips Prefect's two idempotent start-up steps when nothing they depend on has
changed since a start that ran them (``start-memo.json`` in ``PREFECT_HOME``, which travels
with the database in a snapshot): the schema migrations (the database is still at the revision
this Prefect version migrated it to) and the block-type registration (same Prefect, same
installed collections). The registration's own memo imports every collection first (prefect-gcp
pulls google-cloud-aiplatform): about 5 of the server's 8 CPU-seconds of a warm start.

    python -m pulse_local.stack.prefect_server --host 127.0.0.1 --port 4200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

#: File in PREFECT_HOME recording what the last full start ran against.
MEMO = "start-memo.json"


def wait_for_database(dsn: str, timeout: float) -> None:
    """Poll until `dsn` accepts a connection (the stack creates the database at bootstrap)."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def database_dsn(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The libpq DSN of Prefect's PostgreSQL database (``PREFECT_API_DATABASE_CONNECTION_URL``
    without its SQLAlchemy driver), or None when Prefect uses SQLite."""
    url = environ.get("PREFECT_API_DATABASE_CONNECTION_URL", "")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        return None
    return f"postgresql://{rest}"


def start_facts(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    """What Prefect's start-up steps depend on, read without importing any collection: the
    Prefect version, the installed collections' versions and (a digest of) the database URL."""
    from importlib.metadata import entry_points, version

    collections = sorted({f"{ep.dist.name}=={ep.dist.version}"
                          for ep in entry_points(group="prefect.collections") if ep.dist})
    url = environ.get("PREFECT_API_DATABASE_CONNECTION_URL", "")
    return {"prefect": version("prefect"), "collections": collections,
            "database": hashlib.sha256(url.encode()).hexdigest()[:16]}


def alembic_revision(dsn: str) -> str | None:
    """The revision Prefect's database is migrated to (None: not migrated yet)."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=5) as conn:
        found = conn.execute("select to_regclass('alembic_version') is not null").fetchone()
        if not found or not found[0]:
            return None
        row = conn.execute("select version_num from alembic_version").fetchone()
        return str(row[0]) if row else None


def memo_path(environ: dict[str, str] | os._Environ[str]) -> Path | None:
    home = environ.get("PREFECT_HOME")
    return Path(home) / MEMO if home else None


def may_skip_start_steps(memo: Path | None, facts: dict[str, Any], revision: str | None) -> bool:
    """True when a full start recorded these very facts and this database revision."""
    if memo is None or revision is None or not memo.is_file():
        return False
    try:
        saved = json.loads(memo.read_text())
    except (OSError, ValueError):
        return False
    return bool(saved.get("facts") == facts and saved.get("revision") == revision)


def write_memo(memo: Path, facts: dict[str, Any], revision: str | None) -> None:
    """Record a full start's facts and the revision it left the database at."""
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_name(f".{memo.name}.tmp")
    tmp.write_text(json.dumps({"facts": facts, "revision": revision}, indent=1) + "\n")
    tmp.replace(memo)


def _skip_settings() -> dict[Any, Any]:
    from prefect.settings import (
        PREFECT_API_BLOCKS_REGISTER_ON_START,
        PREFECT_API_DATABASE_MIGRATE_ON_START,
        PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION,
    )

    return {PREFECT_API_DATABASE_MIGRATE_ON_START: False,
            PREFECT_API_BLOCKS_REGISTER_ON_START: False,
            PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION: False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    began = time.perf_counter()
    import uvicorn
    from prefect.server.api.server import create_app  # the slow import, overlapping Postgres
    from prefect.settings import temporary_settings

    imported = time.perf_counter()
    dsn = database_dsn(os.environ)
    facts, memo, revision = start_facts(os.environ), memo_path(os.environ), None
    if dsn is not None:
        wait_for_database(dsn, args.timeout)
        revision = alembic_revision(dsn)
    skip = dsn is not None and may_skip_start_steps(memo, facts, revision)
    print(f"prefect_server: imported in {imported - began:.1f} s, database ready "
          f"{time.perf_counter() - imported:.1f} s later; "
          + ("migrations and block registration skipped (unchanged since the last full start)"
             if skip else "full start (migrations, block registration)"), flush=True)
    with temporary_settings(updates=_skip_settings() if skip else None):
        server = uvicorn.Server(uvicorn.Config(
            app=create_app(final=True), host=args.host, port=args.port, log_level="warning",
            timeout_graceful_shutdown=1))
        if not skip and dsn is not None and memo is not None:
            threading.Thread(target=_memo_when_started, args=(server, dsn, memo, facts),
                             daemon=True).start()
        server.run()


def _memo_when_started(server: Any, dsn: str, memo: Path, facts: dict[str, Any]) -> None:
    """Once the full start's steps have run (uvicorn's start-up is complete), record it."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.1)
    write_memo(memo, facts, alembic_revision(dsn))
    print(f"prefect_server: full start recorded in {memo}", flush=True)


if __name__ == "__main__":
    main()
