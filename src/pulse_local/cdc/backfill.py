"""The initial copy of a published table into the raw layer (the backfill's rows).

`pulse_local.cdc.engine.Capture` creates the slot exporting a snapshot, opens a connection in
that snapshot and calls `copy_table` for each published table; what it lands is the state of
the table at the slot's consistent point, in Datastream's backfill shape.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from pulse_local.cdc.datastream import BACKFILL_CHANGE_TYPE
from pulse_local.cdc.errors import CdcError
from pulse_local.cdc.landing import RawLayer, TableRows
from pulse_local.cdc.schema import TableSchema

log = logging.getLogger("pulse_local.cdc")

#: Rows per Parquet file during the backfill.
BACKFILL_CHUNK = 100_000


def copy_table(conn: psycopg.Connection[Any], layer: RawLayer, table: str, schema: TableSchema,
               row_filter: str | None, lsn: int, started_ms: int, *, admin_user: str) -> int:
    """Land every row of ``schema``'s table visible in ``conn``'s snapshot as backfill rows of
    raw table ``table`` at ``lsn`` (Parquet files of `BACKFILL_CHUNK` rows); returns the count.
    ``admin_user`` names the role in the error when row-level security blocks the read."""
    columns = sql.SQL(", ").join(
        sql.SQL("{}::text").format(sql.Identifier(c)) for c in schema.column_names)
    query = sql.SQL("SELECT {} FROM {}.{}").format(
        columns, sql.Identifier(schema.namespace), sql.Identifier(schema.name))
    if row_filter:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(row_filter))
    chunk, count = 0, 0
    try:
        with conn.cursor(name=f"pulse_cdc_backfill_{table}") as cur:
            cur.itersize = 10_000
            cur.execute(query)
            while True:
                rows = cur.fetchmany(BACKFILL_CHUNK)
                if not rows and chunk > 0:
                    break
                batch = TableRows(schema)
                for row in rows:
                    count += 1
                    batch.append(row, lsn, count, BACKFILL_CHANGE_TYPE, started_ms)
                layer.write_file(table, batch, lsn, lsn, chunk=chunk)
                chunk += 1
                if len(rows) < BACKFILL_CHUNK:
                    break
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CdcError(
            f"backfill of {schema.namespace}.{schema.name} is blocked by row-level security "
            f"or privileges for {admin_user}: {exc}. Use a role that "
            "bypasses RLS (the owner role locally; `grant pulse_cdc to <login>` on Cloud SQL)"
        ) from exc
    log.info("backfilled %s: %d rows", table, count)
    return count
