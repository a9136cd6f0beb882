"""dbt-duckdb plugin: (re)create the ``raw.<table>`` views over the CDC's landed files on every
connection dbt opens, so each dbt run reads the raw layer as it is at that moment.

Enable it in ``dbt/profiles.yml`` (local output), next to the translation plugin::

    plugins:
      - module: pulse_local.translate.dbt_plugin
      - module: pulse_local.cdc.dbt_plugin

Nothing happens when nothing was landed yet (no landing directory): sources then fail with
DuckDB's "table raw.x does not exist", which `pulse-local up` / a drain fixes.
"""

from __future__ import annotations

import logging
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from pulse_local.cdc.config import load_stream_config
from pulse_local.cdc.views import refresh_views
from pulse_local.config import load_settings

log = logging.getLogger("pulse_local.cdc")


class Plugin(BasePlugin):  # type: ignore[misc,valid-type]
    """Creates the raw views when dbt-duckdb opens the warehouse."""

    def configure_connection(self, conn: Any) -> None:
        settings = load_settings()
        # The streaming raw sink lands next to the CDC (on GCP raw.pubsub_response_events is the
        # BigQuery subscription's table): expose its files as views too (monitoring reads them).
        from pulse_local.streaming.sink import raw_events_dir, view_sql

        events = raw_events_dir(settings)
        if events.is_dir() and any(events.rglob("*.parquet")):
            conn.execute(view_sql(events))
        config = load_stream_config()
        if not config.raw_dir(settings).is_dir():
            log.warning("no CDC landing directory at %s: raw views not created",
                        config.raw_dir(settings))
            return
        refresh_views(conn, settings, config)
