"""What Google Datastream writes into BigQuery: the one place this project states it.

Source: Datastream's BigQuery destination documentation ("Table metadata",
https://cloud.google.com/datastream/docs/destination-bigquery) and its write-mode page
(https://cloud.google.com/datastream/docs/configure-bigquery-destination):

* every table gets a ``datastream_metadata`` STRUCT column;
* **append-only** write mode, tables with or without a primary key: ``uuid`` STRING,
  ``source_timestamp`` INTEGER (epoch milliseconds), ``change_sequence_number`` STRING (an
  internal sequence number per change event), ``change_type`` STRING (INSERT, UPDATE-INSERT,
  UPDATE-DELETE, DELETE) and ``sort_keys`` (an array of STRING values "to sort the change
  events"). There is **no** ``is_deleted`` in this mode;
* **merge** write mode: ``uuid`` and ``source_timestamp``; a table without a primary key also
  gets ``is_deleted`` BOOLEAN (such tables are append-only);
* the backfill writes each existing row as an ``INSERT`` event;
* with a single target dataset, tables are named ``<schema>_<table>`` (``raw.public_users``).

The local CDC service (`pulse_local.cdc.landing`, `pulse_local.cdc.views`), the synthetic raw
data (`pulse_local.warehouse.raw`) and the tests all take the shape from here.
"""

from __future__ import annotations

from typing import Literal

#: ``datastream_metadata`` fields in append-only mode, (name, BigQuery type), in order.
APPEND_ONLY_METADATA: tuple[tuple[str, str], ...] = (
    ("uuid", "STRING"),
    ("source_timestamp", "INT64"),
    ("change_sequence_number", "STRING"),
    ("change_type", "STRING"),
    ("sort_keys", "ARRAY<STRING>"),
)
#: ``datastream_metadata`` fields in merge mode for a table with a primary key.
MERGE_METADATA: tuple[tuple[str, str], ...] = (("uuid", "STRING"), ("source_timestamp", "INT64"))
#: ... and for a table without one (append-only in effect).
MERGE_KEYLESS_METADATA: tuple[tuple[str, str], ...] = (*MERGE_METADATA, ("is_deleted", "BOOL"))

#: ``change_type`` values of the append-only mode.
CHANGE_TYPES = ("INSERT", "UPDATE-INSERT", "UPDATE-DELETE", "DELETE")
INSERT, UPDATE_INSERT, UPDATE_DELETE, DELETE = CHANGE_TYPES
#: What the backfill writes for each existing row.
BACKFILL_CHANGE_TYPE = INSERT
#: Change types after which the source row (under that key) no longer exists: a delete, or
#: the old image of an update (newer than it only when the update moved the key).
REMOVING_CHANGE_TYPES = (DELETE, UPDATE_DELETE)

#: BigQuery type -> the DuckDB type that stands in for it locally.
DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38, 9)",
    "TIMESTAMP": "TIMESTAMPTZ",
    "JSON": "JSON",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "ARRAY<STRING>": "VARCHAR[]",
}

Mode = Literal["merge", "append-only"]


def destination_table(schema: str, table: str) -> str:
    """The BigQuery table Datastream writes source table `schema.table` to (single target
    dataset): ``<schema>_<table>``."""
    return f"{schema}_{table}"


def metadata_fields(mode: Mode, keyed: bool = True) -> tuple[tuple[str, str], ...]:
    """The ``datastream_metadata`` fields of a table in `mode` (with or without a key)."""
    if mode == "append-only":
        return APPEND_ONLY_METADATA
    return MERGE_METADATA if keyed else MERGE_KEYLESS_METADATA


def metadata_type_bigquery(mode: Mode = "append-only", keyed: bool = True) -> str:
    """``STRUCT<...>`` of ``datastream_metadata`` in BigQuery DDL."""
    fields = ", ".join(f"{name} {bq}" for name, bq in metadata_fields(mode, keyed))
    return f"STRUCT<{fields}>"


def metadata_type_duckdb(mode: Mode = "append-only", keyed: bool = True) -> str:
    """``STRUCT(...)`` of ``datastream_metadata`` as DuckDB stands in for it locally."""
    fields = ", ".join(f"{name} {DUCKDB_TYPES[bq]}" for name, bq in metadata_fields(mode, keyed))
    return f"STRUCT({fields})"


def removing_sql(change_type: str = "datastream_metadata.change_type") -> str:
    """SQL (BigQuery and DuckDB alike) true for a change row after which the row is gone;
    `change_type` is the expression holding the row's change type."""
    types = ", ".join(f"'{t}'" for t in REMOVING_CHANGE_TYPES)
    return f"{change_type} in ({types})"
