"""Datastream's BigQuery destination, played by the rehearsal: the raw dataset in exactly the
shape Datastream writes in append-only mode.

Datastream names a table ``<schema>_<table>`` (``raw.public_users``) and adds one column::

    datastream_metadata STRUCT<uuid STRING, source_timestamp INT64,
                               change_sequence_number STRING, change_type STRING,
                               sort_keys ARRAY<STRING>>

(no ``is_deleted``: that field exists only in merge mode). The rehearsal lands the changes the
local CDC captured (its Parquet files) into these tables through the official BigQuery client,
so the gcp dbt sources read what they will read in the cloud.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pulse_local.cdc.datastream import APPEND_ONLY_METADATA, destination_table
from pulse_local.warehouse.raw import RAW_TABLES

#: The fields of ``datastream_metadata`` in append-only mode (stated once, in cdc.datastream).
METADATA_FIELDS = APPEND_ONLY_METADATA

#: Datastream's table-name prefix for the PostgreSQL schema ``public``.
TABLE_PREFIX = destination_table("public", "")


def metadata_type() -> str:
    """The BigQuery type of ``datastream_metadata``."""
    return "STRUCT<" + ", ".join(f"{n} {t}" for n, t in METADATA_FIELDS) + ">"


def raw_table_ddl(project: str, table: str, dataset: str = "raw") -> str:
    """BigQuery ``CREATE TABLE IF NOT EXISTS`` of one raw table in Datastream's shape."""
    cols = ", ".join(f"`{name}` {bq}" for name, bq in RAW_TABLES[table])
    return (f"CREATE TABLE IF NOT EXISTS `{project}.{dataset}.{TABLE_PREFIX}{table}` "
            f"({cols}, datastream_metadata {metadata_type()})")


def create_raw_tables(client: Any, project: str, dataset: str = "raw") -> list[str]:
    """Create the raw dataset and every raw table (idempotent); return the tables' names."""
    client.create_dataset(f"{project}.{dataset}", exists_ok=True, timeout=30)
    for table in RAW_TABLES:
        client.query(raw_table_ddl(project, table, dataset)).result(timeout=60)
    return [f"{dataset}.{TABLE_PREFIX}{t}" for t in RAW_TABLES]


def _json_value(value: Any, bq_type: str) -> Any:
    """One source value as the JSON the streaming-insert API takes for its BigQuery type."""
    if value is None:
        return None
    if bq_type == "TIMESTAMP" and isinstance(value, datetime):
        return value.isoformat()
    if bq_type == "DATE" and isinstance(value, date):
        return value.isoformat()
    if bq_type == "NUMERIC":
        return str(Decimal(str(value)))
    if bq_type == "JSON":
        return value if isinstance(value, str) else json.dumps(value)
    return str(value) if bq_type == "STRING" else value


def datastream_row(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A landed change row (source columns + ``datastream_metadata``) as Datastream writes it:
    the source columns typed for BigQuery and the metadata's append-only fields only."""
    out = {name: _json_value(row.get(name), bq) for name, bq in RAW_TABLES[table]}
    meta = dict(row["datastream_metadata"])
    out["datastream_metadata"] = {
        "uuid": str(meta["uuid"]),
        "source_timestamp": int(meta["source_timestamp"]),
        "change_sequence_number": str(meta["change_sequence_number"]),
        "change_type": str(meta["change_type"]),
        "sort_keys": [str(k) for k in meta.get("sort_keys") or
                      (meta["source_timestamp"], meta["change_sequence_number"])],
    }
    return out


def land_rows(client: Any, project: str, table: str, rows: Iterable[Mapping[str, Any]],
              dataset: str = "raw", batch: int = 500) -> int:
    """Append change rows to ``raw.public_<table>`` (streaming inserts); return how many."""
    ref = f"{project}.{dataset}.{TABLE_PREFIX}{table}"
    pending: list[dict[str, Any]] = []
    landed = 0
    for row in rows:
        pending.append(datastream_row(table, row))
        if len(pending) >= batch:
            landed += _insert(client, ref, pending)
            pending = []
    if pending:
        landed += _insert(client, ref, pending)
    return landed


class LandingError(RuntimeError):
    """The BigQuery emulator refused change rows."""


def _insert(client: Any, ref: str, rows: list[dict[str, Any]]) -> int:
    errors = client.insert_rows_json(ref, rows, timeout=60)
    if errors:
        raise LandingError(f"BigQuery refused {len(errors)} row(s) of {ref}: {errors[:3]}")
    return len(rows)
