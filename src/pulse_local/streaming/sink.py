"""The raw warehouse sink: every message as a Pub/Sub BigQuery subscription would store it.

On GCP the subscription ``response-events-bigquery`` writes ``raw.pubsub_response_events``
itself, so the sink there does nothing (`NullRawEventSink`). Locally `LocalParquetSink` lands
each batch as one Parquet file, written to a temporary name and renamed (readers never see a
partial file), under ``<state_dir>/warehouse/raw/pubsub_response_events/dt=<publish date>/``.
DuckDB reads the files through views; nothing here keeps the DuckDB database open.

Pub/Sub delivers at least once, so the files can hold a message twice (a redelivery after a
crash); the ``_dedup`` view keeps one row per event id, as dbt does on BigQuery.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pulse_local.capabilities import RawEventSink, RawMessage
from pulse_local.config import Settings

__all__ = ["RAW_TABLE", "LocalParquetSink", "NullRawEventSink", "RawEventSink", "RawMessage",
           "ensure_views", "raw_events_dir", "read_raw", "view_sql"]

#: Folder name = BigQuery table name of the raw dataset.
RAW_TABLE = "pubsub_response_events"

#: The ``attributes`` column's JSON text (keys sorted). One encoder for every row:
#: ``json.dumps(..., sort_keys=True)`` builds a new one per call, a third of the sink's CPU.
_attributes_json = json.JSONEncoder(sort_keys=True).encode


class NullRawEventSink:
    """GCP: the BigQuery subscription stores the messages; nothing to do here."""

    def write(self, records: Sequence[RawMessage]) -> None:
        return None


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("subscription_name", pa.string()),
        ("message_id", pa.string()),
        ("publish_time", pa.timestamp("us", tz="UTC")),
        ("data", pa.string()),
        ("attributes", pa.string()),
    ])


class LocalParquetSink:
    """Raw messages as Parquet files, one per batch and publish date, renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ready = False

    def ensure(self) -> None:
        """Create the folder and an empty schema file (the views resolve before any message).
        Called on first write, not in the constructor: building the backends touches nothing."""
        if self._ready:
            return
        import pyarrow.parquet  # noqa: F401 - here, not in the first batch: 0.7 s of imports

        self.root.mkdir(parents=True, exist_ok=True)
        empty = self.root / "_schema.parquet"
        if not empty.exists():
            self._write_table(self._table([]), empty)
        self._ready = True

    def _table(self, records: Sequence[RawMessage]) -> Any:
        import pyarrow as pa

        return pa.table({
            "subscription_name": [r.subscription_name for r in records],
            "message_id": [r.message_id for r in records],
            "publish_time": [r.publish_time.astimezone(UTC) for r in records],
            "data": [r.data.decode("utf-8", errors="replace") for r in records],
            "attributes": [_attributes_json(dict(r.attributes)) for r in records],
        }, schema=_schema())

    @staticmethod
    def _write_table(table: Any, path: Path) -> None:
        import pyarrow.parquet as pq

        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def write(self, records: Sequence[RawMessage]) -> None:
        self.ensure()
        by_day: dict[date, list[RawMessage]] = defaultdict(list)
        for record in records:
            by_day[record.publish_time.astimezone(UTC).date()].append(record)
        for day, rows in by_day.items():
            folder = self.root / f"dt={day.isoformat()}"
            folder.mkdir(exist_ok=True)
            name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self._write_table(self._table(rows), folder / f"{name}.parquet")


def raw_events_dir(settings: Settings) -> Path:
    """Where the local sink lands files: ``<state_dir>/warehouse/raw/pubsub_response_events``."""
    return settings.state_dir / "warehouse" / "raw" / RAW_TABLE


def view_sql(root: Path, schema: str = "raw") -> str:
    """DuckDB statements creating ``<schema>.pubsub_response_events`` (every stored row, the
    BigQuery table's shape) and ``<schema>.pubsub_response_events_dedup`` (one row per event id,
    falling back to the message id for messages without one; the earliest publish wins)."""
    glob = str(root / "**" / "*.parquet").replace("'", "''")
    return f"""
create schema if not exists {schema};
create or replace view {schema}.{RAW_TABLE} as
  select subscription_name, message_id, publish_time, data, attributes
  from read_parquet('{glob}', hive_partitioning = false, union_by_name = true);
create or replace view {schema}.{RAW_TABLE}_dedup as
  select * exclude (_rn) from (
    select *, row_number() over (
      partition by coalesce(json_extract_string(attributes, '$.event_id'), message_id)
      order by publish_time, message_id) as _rn
    from {schema}.{RAW_TABLE})
  where _rn = 1;
"""


def ensure_views(settings: Settings) -> None:
    """Create the views in the local warehouse file (a short-lived DuckDB connection)."""
    import duckdb

    root = raw_events_dir(settings)
    LocalParquetSink(root).ensure()  # the schema file, so the views resolve before any message
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        conn.execute(view_sql(root))


def read_raw(root: Path, *, dedup: bool = True, where: str = "true") -> list[tuple[Any, ...]]:
    """Rows of the raw table from the files alone (an in-memory DuckDB, no database file)."""
    import duckdb

    with duckdb.connect() as conn:
        conn.execute(view_sql(root, schema="r"))
        table = f"r.{RAW_TABLE}{'_dedup' if dedup else ''}"
        return conn.execute(
            f"select subscription_name, message_id, publish_time, data, attributes "
            f"from {table} where {where} order by publish_time, message_id").fetchall()
