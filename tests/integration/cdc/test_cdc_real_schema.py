"""Integration: the repository's stream declaration against the real source schema (migrations
of pulse_local.source): every published table lands and its merged raw rows match the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from pulse_local.cdc import drain, load_stream_config, refresh_views
from pulse_local.config import Settings

pytestmark = pytest.mark.integration

migrations = pytest.importorskip("pulse_local.source.migrations")


def test_every_published_table_lands(pulse_stack: Any, pulse_settings: Settings,
                                     tmp_path: Path) -> None:
    migrations.migrate(pulse_settings)
    base = load_stream_config()
    config = base.model_copy(update={
        "source": base.source.model_copy(update={"replication_slot": "cdc_test_real_schema"}),
        "destination": base.destination.model_copy(update={"path": str(tmp_path / "raw"),
                                                           "mode": "merge"}),
        "tables": {},
    })
    with psycopg.connect(pulse_settings.admin_dsn(), autocommit=True) as admin:
        published = [r[0] for r in admin.execute(
            "select tablename from pg_publication_tables where pubname = %s order by 1",
            (config.source.publication,))]
        try:
            report = drain(pulse_settings, config)
            con = duckdb.connect()
            assert sorted(refresh_views(con, pulse_settings, config)) == [
                f"public_{t}" for t in published]
            assert report.backfilled_rows >= 0
            for table in published:
                source_columns = [r[0] for r in admin.execute(
                    "select attname from pg_attribute where attrelid = %s::regclass "
                    "and attnum > 0 and not attisdropped order by attnum", (table,))]
                raw_columns = [r[0] for r in con.execute(
                    f'describe raw."public_{table}"').fetchall()]
                assert raw_columns == [*source_columns, "datastream_metadata"]
                count = admin.execute(f"select count(*) from {table}").fetchone()
                assert con.execute(
                    f'select count(*) from raw."public_{table}"').fetchone() == count
        finally:
            admin.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots "
                          "where slot_name = 'cdc_test_real_schema' and not active")
