"""`pulse-local rehearse`'s stages on a rehearsal stack of its own (the BigQuery and Cloud
Storage emulators beside the official Pub/Sub and Bigtable ones, free ports, a temporary state
directory), the pipeline on profile gcp. Real services and clients throughout; nothing is faked."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.rehearsal import stages as st
from pulse_local.rehearsal.datastream_bq import METADATA_FIELDS, TABLE_PREFIX
from pulse_local.rehearsal.endpoints import with_emulators
from pulse_local.rehearsal.services import bigquery_client, rehearsal_services
from pulse_local.stack.native import NativeStack
from pulse_local.stack.process import free_port
from pulse_local.testing.plugin import flush_prefect_logs, make_test_settings

pytestmark = pytest.mark.integration

#: The fields Google documents for ``datastream_metadata`` in append-only mode (BigQuery
#: destination), with their types; written out here so a change to our shape fails this test.
DOCUMENTED_METADATA = [("uuid", "STRING"), ("source_timestamp", "INTEGER"),
                       ("change_sequence_number", "STRING"), ("change_type", "STRING"),
                       ("sort_keys", "STRING")]


@pytest.fixture(scope="module")
def rehearsal() -> Iterator[tuple[Settings, Any]]:
    """A rehearsal stack up, and the summary of the stages that run today."""
    base = make_test_settings().model_copy(update={
        "stack": "native", "fixture_scale": 1, "raw_bucket": "rehearse-raw",
        "project": "rehearse-test", "bigquery_port": free_port(),
        "bigquery_grpc_port": free_port(), "storage_port": free_port()})
    settings = with_emulators(base)
    saved = dict(os.environ)
    st.apply_rehearsal_environment(settings)
    stack = NativeStack(base, rehearsal_services(settings))
    try:
        stack.up()
        # cloud_run_jobs renders offline (no stack needed): tests/unit/rehearse covers it
        summary = st.rehearse(settings, [(n, f) for n, f in st.STAGES if n != "cloud_run_jobs"])
        yield settings, summary
    finally:
        flush_prefect_logs()
        stack.down()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(base.state_dir, ignore_errors=True)


def test_every_stage_passes_on_profile_gcp(rehearsal: tuple[Settings, Any]) -> None:
    _, summary = rehearsal
    assert [(s.name, s.status) for s in summary.stages] == [
        ("provision", "ok"), ("replay_fixtures", "ok"), ("cdc_to_bigquery", "ok"),
        ("dbt_build_gcp", "ok"), ("stream_events", "ok"), ("monitor_pipeline", "ok")], [
        s.detail for s in summary.stages]


def test_dbt_built_the_marts_in_bigquery_from_the_landed_changes(
        rehearsal: tuple[Settings, Any]) -> None:
    settings, _ = rehearsal
    client = bigquery_client(settings)
    try:
        facts, raw = next(iter(client.query(
            f"select (select count(*) from `{settings.project}.dw.fact_response`), "
            f"(select count(distinct id) from `{settings.project}.raw.public_responses`)"
        ).result(timeout=60)))
        subscription_rows = next(iter(client.query(
            f"select count(*) from `{settings.project}.raw.pubsub_response_events`"
        ).result(timeout=60)))[0]
    finally:
        client.close()
    assert raw > 0 and facts == raw
    assert subscription_rows > 0


def test_raw_tables_in_bigquery_have_datastreams_metadata(rehearsal: tuple[Settings, Any]) -> None:
    settings, _ = rehearsal
    client = bigquery_client(settings)
    try:
        table = client.get_table(f"{settings.project}.raw.{TABLE_PREFIX}users", timeout=30)
        meta = next(f for f in table.schema if f.name == "datastream_metadata")
        fields = [(f.name, f.field_type) for f in meta.fields]
        sort_keys = next(f for f in meta.fields if f.name == "sort_keys")
        rows = list(client.query(
            f"select count(*), countif(datastream_metadata.change_type = 'INSERT') "
            f"from `{settings.project}.raw.{TABLE_PREFIX}users`").result(timeout=60))
    finally:
        client.close()
    assert fields == DOCUMENTED_METADATA
    assert [n for n, _ in METADATA_FIELDS] == [n for n, _ in DOCUMENTED_METADATA]
    assert sort_keys.mode == "REPEATED"
    total, inserts = rows[0][0], rows[0][1]
    assert total > 0 and inserts > 0


def test_raw_payloads_are_in_the_storage_emulator(rehearsal: tuple[Settings, Any]) -> None:
    from pulse_local.backends import storage_client

    settings, _ = rehearsal
    blobs = list(storage_client(settings).bucket(settings.raw_bucket).list_blobs(timeout=30))
    assert blobs and all(b.name.endswith(".jsonl") for b in blobs)
