"""Prefect's API server for the native stack, started so its slow part overlaps PostgreSQL's.

`prefect server start` imports the server (about 6 s on a 2-core machine) only after it is
launched, and it needs its database at once. Here the import happens first, while PostgreSQL
initialises in parallel; then we wait for Prefect's database to accept connections and serve.
Settings come from the environment (`PREFECT_*`), as with `prefect server start`; the database
waited for is ``PREFECT_API_DATABASE_CONNECTION_URL``'s (never a command-line argument: the
command line of every process is readable by every local user, and the DSN holds a password).

    python -m pulse_local.stack.prefect_server --host 127.0.0.1 --port 4200
"""

from __future__ import annotations

import argparse
import os
import time


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
            time.sleep(0.1)


def database_dsn(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The libpq DSN of Prefect's PostgreSQL database (``PREFECT_API_DATABASE_CONNECTION_URL``
    without its SQLAlchemy driver), or None when Prefect uses SQLite."""
    url = environ.get("PREFECT_API_DATABASE_CONNECTION_URL", "")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        return None
    return f"postgresql://{rest}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    import uvicorn
    from prefect.server.api.server import create_app  # the slow import, overlapping Postgres

    dsn = database_dsn(os.environ)
    if dsn is not None:
        wait_for_database(dsn, args.timeout)
    uvicorn.run(
        app=create_app(final=True), host=args.host, port=args.port, log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
