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
        config = load_stream_config()
        if not config.raw_dir(settings).is_dir():
            log.warning("no CDC landing directory at %s: raw views not created",
                        config.raw_dir(settings))
            return
        refresh_views(conn, settings, config)
