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


def _gcp_full() -> Settings:
    return _gcp(project="pulse-prod", raw_bucket="pulse-prod-raw",
                database_url="postgresql://app@10.0.0.5/pulse",
                admin_database_url="postgresql://datastream@10.0.0.5/pulse")


def test_monitoring_on_gcp_names_tables_as_they_are_and_says_what_it_cannot_see() -> None:
    """The BigQuery subscription's table keeps its name (only Datastream's tables are
    ``public_<table>``); the consumer's status file and dbt's run results, files of the local
    stack, are reported as not available on this profile: a warning, never green."""
    from pulse_local.monitoring.config import load_config
    from pulse_local.monitoring.groups.dbt import dbt_checks
    from pulse_local.monitoring.groups.streaming import streaming_checks
    from pulse_local.monitoring.probes import probes_for

    probes = probes_for(_gcp_full())
    assert probes.raw_relation("raw.pubsub_response_events") == "raw.pubsub_response_events"
    assert probes.raw_relation("raw.responses") == "raw.public_responses"
    config = load_config()
    only_consumer = config.streaming.model_copy(update={"lag": None, "dead_letters": None})
    consumer = streaming_checks(config.model_copy(update={"streaming": only_consumer}), probes)
    assert [(c.name, c.ok, c.severity) for c in consumer] == [
        ("streaming:consumer", False, "warning")]
    assert "not available on profile gcp" in consumer[0].detail
    (dbt,) = dbt_checks(config, probes)
    assert (dbt.ok, dbt.severity) == (False, "warning")
    assert "not available on profile gcp" in dbt.detail


class FakeStreams:
    """A fake Datastream client (unit test): answers get_stream with a stream in `state`, or
    NotFound when `state` is None."""

    def __init__(self, state: str | None) -> None:
        self.state = state

    def get_stream(self, name: str) -> Any:
        from google.api_core import exceptions as gexc
        from google.cloud import datastream_v1 as ds

        if self.state is None:
            raise gexc.NotFound(name)
        return ds.Stream(name=name, state=ds.Stream.State[self.state])


@pytest.mark.parametrize(("state", "shown"), [("PAUSED", "is PAUSED"), (None, "is MISSING")])
def test_etl_cdc_step_on_gcp_waits_on_datastream_never_the_local_engine(
        monkeypatch: pytest.MonkeyPatch, state: str | None, shown: str) -> None:
    from pulse_local import cdc
    from pulse_local.cdc import CdcError, provision
    from pulse_local.etl import drain_changes

    def local_engine(*_: Any, **__: Any) -> Any:
        raise AssertionError("the local CDC engine ran on profile gcp")

    monkeypatch.setattr(cdc, "drain", local_engine)
    monkeypatch.setattr(provision, "datastream_client", lambda: FakeStreams(state))
    with pytest.raises(CdcError, match=f"pulse-postgres-raw {shown}.*pulse-local provision"):
        drain_changes(_gcp_full(), timeout=1)


def test_cdc_lag_on_gcp_reads_datastream_state_and_slot_bytes() -> None:
    from pulse_local.cdc.provision import DatastreamLag
    from pulse_local.monitoring.config import load_config
    from pulse_local.monitoring.groups.cdc import evaluate_datastream_lag

    spec = load_config().cdc
    assert spec is not None
    running = evaluate_datastream_lag(spec, DatastreamLag({"s": "RUNNING"}, {"slot": 10}))
    assert running.ok and "s RUNNING" in running.detail and "10 WAL bytes" in running.detail
    paused = evaluate_datastream_lag(spec, DatastreamLag({"s": "PAUSED"}, {"slot": 0}))
    assert (paused.ok, paused.severity) == (False, "error")
    lost = evaluate_datastream_lag(spec, DatastreamLag({"s": "RUNNING"}, {"slot": None}))
    assert not lost.ok and "slot is missing" in lost.detail
