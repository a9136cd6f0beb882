"""Unit: GCP prerequisites (datasets, the BigQuery subscription's table and its writer, the raw
bucket): the dry-run plan, and an apply through FAKE BigQuery / Storage clients that hold
what was created in memory and answer NotFound like the APIs (no Google API is reached)."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from pulse_local.config import Settings
from pulse_local.errors import GcpSettingMissing
from pulse_local.resources import provision
from pulse_local.resources.gcp import (
    SUBSCRIPTION_TABLE_SCHEMA,
    GcpClients,
    apply_gcp,
    subscription_tables,
)
from pulse_local.resources.loader import load_pubsub


class FakeBigQuery:
    """In-memory datasets and tables (unit test fake)."""

    def __init__(self) -> None:
        self.datasets: dict[str, bigquery.Dataset] = {}
        self.tables: dict[str, bigquery.Table] = {}
        self.writes: list[str] = []

    def get_dataset(self, ref: str) -> bigquery.Dataset:
        if ref not in self.datasets:
            raise gexc.NotFound(ref)
        return self.datasets[ref]

    def create_dataset(self, dataset: bigquery.Dataset) -> None:
        self.writes.append(f"create_dataset {dataset.dataset_id} {dataset.location}")
        self.datasets[f"{dataset.project}.{dataset.dataset_id}"] = dataset

    def get_table(self, ref: str) -> bigquery.Table:
        if ref not in self.tables:
            raise gexc.NotFound(ref)
        return self.tables[ref]

    def create_table(self, table: bigquery.Table) -> None:
        self.writes.append(f"create_table {table.dataset_id}.{table.table_id}")
        self.tables[f"{table.project}.{table.dataset_id}.{table.table_id}"] = table

    def update_dataset(self, dataset: bigquery.Dataset, fields: list[str]) -> None:
        self.writes.append(f"update_dataset {dataset.dataset_id} {fields}")


class FakeStorage:
    def __init__(self) -> None:
        self.buckets: dict[str, str] = {}

    def lookup_bucket(self, name: str) -> Any:
        return self.buckets.get(name)

    def create_bucket(self, name: str, location: str) -> None:
        self.buckets[name] = location


def _settings() -> Settings:
    return Settings(profile="gcp", project="pulse-prod", raw_bucket="pulse-prod-raw",
                    location="europe-west1")


def test_the_bigquery_subscription_table_is_declared() -> None:
    assert subscription_tables(load_pubsub()) == ["raw.pubsub_response_events"]


def test_dry_run_plan_lists_datasets_table_access_and_bucket() -> None:
    lines: list[str] = []
    reports = provision(_settings(), "gcp", dry_run=True, echo=lines.append)
    gcp = reports[0]
    assert gcp.service == "gcp"
    planned = {(r.kind, r.name) for r in gcp.results if r.action == "planned"}
    assert planned == {("dataset", "pulse-prod.raw"), ("dataset", "pulse-prod.staging"),
                       ("dataset", "pulse-prod.dw"),
                       ("table", "pulse-prod.raw.pubsub_response_events"),
                       ("access", "pulse-prod.raw"), ("bucket", "gs://pulse-prod-raw")}
    text = "\n".join(lines)
    assert "roles/bigquery.dataEditor" in text and "gcp-sa-pubsub" in text


def test_dry_run_on_gcp_refuses_an_unset_bucket() -> None:
    with pytest.raises(GcpSettingMissing, match="PULSE_RAW_BUCKET"):
        provision(Settings(profile="gcp", project="p"), "gcp", dry_run=True, echo=print)


def test_apply_creates_then_finds_everything() -> None:
    bq, storage = FakeBigQuery(), FakeStorage()
    clients = GcpClients(bq, storage, lambda: "123456")
    first = apply_gcp(_settings(), load_pubsub(), clients)
    assert {(r.kind, r.action) for r in first.results} == {
        ("dataset", "created"), ("table", "created"), ("access", "updated"),
        ("bucket", "created")}
    table = bq.tables["pulse-prod.raw.pubsub_response_events"]
    assert [(f.name, f.field_type) for f in table.schema] == list(SUBSCRIPTION_TABLE_SCHEMA)
    assert table.time_partitioning.field == "publish_time"
    assert storage.buckets == {"pulse-prod-raw": "europe-west1"}
    assert "create_dataset raw europe-west1" in bq.writes
    # the entry was added to the dataset object update_dataset was called with
    raw = bq.datasets["pulse-prod.raw"]
    (entry,) = [e for e in raw.access_entries
                if e.entity_id == "service-123456@gcp-sa-pubsub.iam.gserviceaccount.com"]
    assert entry.role == "roles/bigquery.dataEditor"
    bq.writes.clear()
    second = apply_gcp(_settings(), load_pubsub(), clients)
    assert {r.action for r in second.results} == {"exists"}
    assert bq.writes == []


def test_a_subscription_table_without_the_columns_is_reported_as_drift() -> None:
    bq, storage = FakeBigQuery(), FakeStorage()
    bq.tables["pulse-prod.raw.pubsub_response_events"] = bigquery.Table(
        "pulse-prod.raw.pubsub_response_events",
        schema=[bigquery.SchemaField("data", "STRING")])
    report = apply_gcp(_settings(), load_pubsub(), GcpClients(bq, storage, lambda: "1"))
    (table,) = [r for r in report.results if r.kind == "table"]
    assert table.action == "drift" and "missing columns subscription_name STRING" in table.detail
