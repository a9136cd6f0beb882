"""Unit: first-contact defects of the gcp profile found by reading its code (issue 19). No
Google API is reached: each test stops before the first call, or fakes a warehouse as noted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from pulse_local.backends import DuckDBWarehouse, for_profile
from pulse_local.config import Settings
from pulse_local.doctor import warehouse_roundtrip
from pulse_local.errors import GcpSettingMissing


def _gcp(**values: Any) -> Settings:
    return Settings(profile="gcp", **values)


@pytest.mark.parametrize(("missing", "variable"), [
    ({}, "PULSE_PROJECT"),
])
def test_gcp_backends_refuse_an_unset_project(missing: dict[str, Any], variable: str) -> None:
    with pytest.raises(GcpSettingMissing, match=f"{variable} is not set.*GCP project id"):
        for_profile(_gcp(**missing))


def test_gcp_archive_refuses_the_default_bucket_before_any_call() -> None:
    archive = for_profile(_gcp(project="p")).archive
    with pytest.raises(GcpSettingMissing, match="PULSE_RAW_BUCKET is not set.*Cloud Storage"):
        archive.append("typeform", "2024-09-02", [{"a": 1}])


def test_gcp_database_urls_do_not_fall_back_to_the_local_stack() -> None:
    settings = _gcp(project="p")
    with pytest.raises(GcpSettingMissing, match="PULSE_DATABASE_URL is not set.*application"):
        settings.app_dsn()
    with pytest.raises(GcpSettingMissing, match="PULSE_ADMIN_DATABASE_URL is not set.*owner"):
        settings.admin_dsn()
    ok = _gcp(project="p", database_url="postgresql://a@db/x",
              admin_database_url="postgresql://o@db/x")
    assert ok.app_dsn() == "postgresql://a@db/x" and ok.admin_dsn() == "postgresql://o@db/x"
    with pytest.raises(GcpSettingMissing, match="no DSN for database 'postgres'"):
        ok.admin_dsn("postgres")


def test_gcp_settings_read_from_the_environment_count_as_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_PROFILE", "gcp")
    monkeypatch.setenv("PULSE_PROJECT", "my-project")
    monkeypatch.setenv("PULSE_RAW_BUCKET", "my-project-raw")
    settings = Settings()
    settings.require_gcp("project", "raw_bucket")
    assert for_profile(settings).warehouse.project == "my-project"  # type: ignore[attr-defined]


def test_local_profile_keeps_its_defaults() -> None:
    settings = Settings()
    settings.require_gcp("project", "raw_bucket", "database_url", "admin_database_url")
    assert settings.app_dsn().endswith("@127.0.0.1:54329/pulse")


class BigQueryNamingWarehouse:
    """A fake warehouse (unit test) that applies BigQuery's rule "a table name must be
    qualified with a dataset" to every CREATE/DROP TABLE, then runs the SQL on DuckDB."""

    def __init__(self, path: Path) -> None:
        self.inner = DuckDBWarehouse(path)
        self.tables: list[str] = []

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        for statement in sqlglot.parse(sql, read="bigquery"):
            if isinstance(statement, (exp.Create, exp.Drop)) and statement.kind == "TABLE":
                table = statement.find(exp.Table)
                assert table is not None
                if not table.db:
                    raise ValueError(f"Table name \"{table.name}\" missing dataset while no "
                                     "default dataset is set in the request.")
                self.tables.append(f"{table.db}.{table.name}")
        return self.inner.query(sql)


def test_doctor_warehouse_roundtrip_qualifies_its_table(tmp_path: Path) -> None:
    warehouse = BigQueryNamingWarehouse(tmp_path / "w.duckdb")
    detail = warehouse_roundtrip(warehouse)
    assert detail.startswith("created, queried and dropped staging.doctor_")
    assert len(warehouse.tables) == 2 and warehouse.tables[0] == warehouse.tables[1]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:  # dropped again
        assert con.execute("select count(*) from information_schema.tables "
                           "where table_name like 'doctor_%'").fetchone() == (0,)
