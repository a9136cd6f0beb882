"""Change data capture: a local Datastream.

PostgreSQL publication --(pgoutput, logical replication slot)--> Parquet files in Datastream's
BigQuery shape (`pulse_local.cdc.datastream`) under ``<state_dir>/warehouse/raw/<schema>_<table>/``
--> DuckDB views ``raw.<schema>_<table>`` (``raw.public_users``), as Datastream names them.

Public API::

    drain(settings, config=None, *, timeout=300.0) -> DrainReport   # batch: land up to now
    serve(settings, config=None, stop=None) -> None                 # service (SIGTERM stops)
    cdc_ready(settings, config=None) -> None                        # readiness probe
    lag(settings, config=None) -> Lag                               # WAL bytes / seconds behind
    refresh_views(conn, settings, config=None, *, schema="raw") -> list[str]
    resync(settings, config=None) -> DrainReport                    # new slot + full backfill
    load_stream_config(path=None) -> StreamConfig                   # emulators/datastream/stream.yaml

Command line: ``python -m pulse_local.cdc {serve,drain,resync,lag,describe}``. See docs/cdc.md.
"""

from __future__ import annotations

from pulse_local.cdc.config import StreamConfig, load_stream_config
from pulse_local.cdc.engine import DrainReport, drain, resync, serve
from pulse_local.cdc.errors import CdcError, SchemaError, SlotBusyError, SlotLostError
from pulse_local.cdc.status import Lag, cdc_ready, lag
from pulse_local.cdc.views import refresh_views

__all__ = [
    "CdcError", "DrainReport", "Lag", "SchemaError", "SlotBusyError", "SlotLostError",
    "StreamConfig", "cdc_ready", "drain", "lag", "load_stream_config", "refresh_views",
    "resync", "serve",
]
