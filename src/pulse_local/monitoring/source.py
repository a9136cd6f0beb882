"""Reads of the source database (PostgreSQL) for the completeness and lag checks.

As the owner role (``settings.admin_dsn()``), in one ``REPEATABLE READ READ ONLY`` transaction
with ``row_security = off``: a role that row-level security would filter fails loudly instead of
counting zero rows (locally the owner is a superuser; on Cloud SQL grant it BYPASSRLS or use the
CDC's ``pulse_cdc`` setup, see migration 0003_cdc.sql).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pulse_local.errors import PulseError, ServiceUnavailable


class SourceQueryError(PulseError):
    """A monitoring query on the source database failed."""


@dataclass(frozen=True)
class SourceSnapshot:
    """Single values of several queries, read in one snapshot, and the WAL position after."""

    values: dict[str, Any]
    wal_lsn: str | None


class SourceDatabase(Protocol):
    """Capability: read the source database consistently."""

    def snapshot(self, queries: Mapping[str, str]) -> SourceSnapshot:
        """Run each query (one value each) in one snapshot; WAL position taken afterwards."""
        ...

    def primary_keys(self, tables: Sequence[str]) -> dict[str, list[str]]:
        """Primary-key columns of each table (the CDC merge key)."""
        ...

    def wait_for_slot(self, slot: str, lsn: str, timeout: float) -> str:
        """Wait until an *active* slot confirmed `lsn`; return "caught_up", "inactive" (nobody
        streams: nothing will change by waiting), "missing" or "timeout"."""
        ...


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresSource:
    """`SourceDatabase` over psycopg with short-lived connections."""

    def __init__(self, dsn: str, *, connect_timeout: int = 5) -> None:
        self.dsn = dsn
        self.connect_timeout = connect_timeout

    def _connect(self, autocommit: bool) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.dsn, connect_timeout=self.connect_timeout,
                                   autocommit=autocommit)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServiceUnavailable(
                f"the source database does not answer ({first}): start the stack "
                "(`pulse-local up`) or check PULSE_ADMIN_DATABASE_URL") from None

    def snapshot(self, queries: Mapping[str, str]) -> SourceSnapshot:
        import psycopg

        values: dict[str, Any] = {}
        with self._connect(autocommit=True) as conn:
            conn.execute("begin isolation level repeatable read read only")
            conn.execute("set local row_security = off")
            for name, sql in queries.items():
                try:
                    row = conn.execute(sql).fetchone()
                except psycopg.Error as exc:
                    first = str(exc).strip().splitlines()[0]
                    hint = (" (the monitor's role is subject to row-level security: use the "
                            "owner role, or grant it BYPASSRLS)"
                            if "row-level security" in first else "")
                    raise SourceQueryError(f"source query {name!r} failed: {first}{hint}") from None
                values[name] = row[0] if row else None
            lsn = conn.execute("select pg_current_wal_lsn()::text").fetchone()
            conn.execute("commit")
        return SourceSnapshot(values, lsn[0] if lsn else None)

    def primary_keys(self, tables: Sequence[str]) -> dict[str, list[str]]:
        with self._connect(autocommit=True) as conn:
            rows = conn.execute(
                "select c.relname, a.attname from pg_index i "
                "join pg_class c on c.oid = i.indrelid "
                "join pg_namespace n on n.oid = c.relnamespace and n.nspname = current_schema() "
                "join lateral unnest(i.indkey) with ordinality k(attnum, pos) on true "
                "join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum "
                "where i.indisprimary and c.relname = any(%s) order by c.relname, k.pos",
                (list(tables),)).fetchall()
        keys: dict[str, list[str]] = {}
        for table, column in rows:
            keys.setdefault(table, []).append(column)
        return keys

    def wait_for_slot(self, slot: str, lsn: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._connect(autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "select active, confirmed_flush_lsn >= %s::pg_lsn from pg_replication_slots "
                    "where slot_name = %s", (lsn, slot)).fetchone()
                if row is None:
                    return "missing"
                active, caught_up = row
                if caught_up:
                    return "caught_up"
                if not active:
                    return "inactive"
                if time.monotonic() >= deadline:
                    return "timeout"
                time.sleep(0.1)


def count_sql(table: str) -> str:
    """``select count(*) from "<table>"`` (the source's current rows)."""
    return f"select count(*) from {_ident(table)}"
