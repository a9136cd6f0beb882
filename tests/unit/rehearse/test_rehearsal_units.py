"""Unit tests of the rehearsal's pieces that need no service: the endpoint guard, Datastream's
row shape, the stage runner (fed with fake stages, said where), the missing-emulator error."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pulse_local.config import Settings
from pulse_local.errors import ToolMissing
from pulse_local.rehearsal import stages as st
from pulse_local.rehearsal.datastream_bq import datastream_row, metadata_type, raw_table_ddl
from pulse_local.rehearsal.endpoints import (
    RealGoogleEndpoint,
    refuse_real_google,
    rehearsal_endpoints,
    with_emulators,
)
from pulse_local.rehearsal.services import emulator_program


def test_endpoints_are_the_stacks_loopback_emulators() -> None:
    env = rehearsal_endpoints(Settings(bigquery_port=1111, storage_port=2222)).environment()
    assert env["BIGQUERY_EMULATOR_HOST"] == "http://127.0.0.1:1111"
    assert env["PULSE_BIGQUERY_ENDPOINT"] == env["BIGQUERY_EMULATOR_HOST"]
    assert env["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:2222"


@pytest.mark.parametrize("name,value", [
    ("BIGQUERY_EMULATOR_HOST", "https://bigquery.googleapis.com"),
    ("PULSE_BIGQUERY_ENDPOINT", "https://bigquery.googleapis.com"),
    ("STORAGE_EMULATOR_HOST", "https://storage.googleapis.com"),
    ("PUBSUB_EMULATOR_HOST", "pubsub.googleapis.com:443"),
    ("BIGTABLE_EMULATOR_HOST", "10.0.0.5:8086"),
])
def test_a_real_or_remote_endpoint_is_refused(name: str, value: str) -> None:
    env = rehearsal_endpoints(Settings()).environment()
    refuse_real_google(env)  # the rehearsal's own endpoints pass
    with pytest.raises(RealGoogleEndpoint, match=name):
        refuse_real_google({**env, name: value})


def test_an_unset_endpoint_is_refused() -> None:
    env = rehearsal_endpoints(Settings()).environment()
    del env["BIGTABLE_EMULATOR_HOST"]
    with pytest.raises(RealGoogleEndpoint, match="BIGTABLE_EMULATOR_HOST is unset"):
        refuse_real_google(env)


def test_a_non_loopback_host_setting_is_refused() -> None:
    with pytest.raises(RealGoogleEndpoint, match="loopback"):
        rehearsal_endpoints(Settings(host="0.0.0.0"))


def test_settings_with_emulators_carry_every_endpoint() -> None:
    s = with_emulators(Settings(profile="local"))
    assert s.profile == "gcp"
    assert (s.pubsub_emulator_host, s.bigtable_emulator_host) == ("127.0.0.1:8085", "127.0.0.1:8086")
    assert s.bigquery_emulator_host == "http://127.0.0.1:9050"


def test_metadata_struct_is_datastreams_append_only_shape() -> None:
    assert metadata_type() == ("STRUCT<uuid STRING, source_timestamp INT64, change_sequence_number "
                               "STRING, change_type STRING, sort_keys ARRAY<STRING>>")
    ddl = raw_table_ddl("p", "users")
    assert "`p.raw.public_users`" in ddl and "is_deleted" not in ddl


def test_datastream_row_types_values_and_drops_is_deleted() -> None:
    row = {"id": 7, "tenant_id": "t", "response_id": "r", "question_id": "q", "answer_type": "n",
           "value_number": Decimal("2.50"), "value_json": {"a": 1}, "value_bool": True,
           "datastream_metadata": {"uuid": "u", "source_timestamp": 5,
                                   "change_sequence_number": "0A", "change_type": "INSERT",
                                   "is_deleted": False}}
    out = datastream_row("answers", row)
    assert out["id"] == 7 and out["value_number"] == "2.50" and out["value_json"] == '{"a": 1}'
    assert out["value_text"] is None
    assert out["datastream_metadata"] == {"uuid": "u", "source_timestamp": 5,
                                          "change_sequence_number": "0A", "change_type": "INSERT",
                                          "sort_keys": ["5", "0A"]}
    ts = datastream_row("teams", {"id": "x", "created_at": datetime(2026, 1, 2, tzinfo=UTC),
                                  "datastream_metadata": row["datastream_metadata"]})
    assert ts["created_at"] == "2026-01-02T00:00:00+00:00"


def test_a_failed_stage_stops_the_run_and_later_ones_are_not_run(monkeypatch) -> None:
    # fake stages (plain functions): only the runner's bookkeeping is under test; the runner
    # points os.environ at the emulators, so it gets a copy here
    monkeypatch.setattr(os, "environ", dict(os.environ))
    def boom(settings: Settings) -> str:
        raise RuntimeError("no table")

    summary = st.rehearse(with_emulators(Settings()), [("a", lambda s: "fine"), ("b", boom),
                                                    ("c", lambda s: "never")])
    assert [(s.name, s.status) for s in summary.stages] == [
        ("a", "ok"), ("b", "FAILED"), ("c", "NOT RUN")]
    assert not summary.ok and summary.failed is not None and summary.failed.name == "b"
    assert "RuntimeError: no table" in summary.failed.detail


def test_a_missing_emulator_says_make_install_provides_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PULSE_EMULATORS_VENV", str(tmp_path))
    with pytest.raises(ToolMissing, match="make install"):
        emulator_program("bqemulator")


def test_datastream_refuses_to_be_called_in_a_rehearsal() -> None:
    from pulse_local.cdc.provision import stream_states
    from pulse_local.rehearsal.endpoints import NoEmulator

    with pytest.raises(NoEmulator, match="no emulator"):
        stream_states(with_emulators(Settings()))


def test_a_played_bigquery_subscription_row_has_the_subscription_columns() -> None:
    from types import SimpleNamespace

    from pulse_local.rehearsal.bq_subscription import bigquery_subscriptions, subscription_row
    from pulse_local.resources.gcp import SUBSCRIPTION_TABLE_SCHEMA

    assert bigquery_subscriptions(Settings()) == {
        "response-events-bigquery": "raw.pubsub_response_events"}
    message = SimpleNamespace(message_id="1", publish_time=datetime(2026, 1, 1, tzinfo=UTC),
                              data=b'{"a": 1}', attributes={"tenant": "t"})
    row = subscription_row("projects/p/subscriptions/s", message)
    assert list(row) == [n for n, _ in SUBSCRIPTION_TABLE_SCHEMA]
    assert row["data"] == '{"a": 1}' and row["attributes"] == '{"tenant": "t"}'


def test_cloud_run_job_rendered_from_prefect_gcps_template_carries_what_was_declared() -> None:
    # prefect-gcp's real cloud-run-v2 template and configuration class, rendered offline and
    # prepared for a flow run as its worker does
    from pulse_local.rehearsal.cloud_run import missing, render_job

    settings = Settings(project="proj-x", location="europe-west1", raw_bucket="proj-x-raw")
    secret = {"secret": "db-url", "version": "latest"}
    job = render_job({
        "image": "europe-west1-docker.pkg.dev/proj-x/pulse/pulse-local:1", "region": "europe-west1",
        "service_account_name": "flows@proj-x.iam.gserviceaccount.com", "memory": "2Gi",
        "cloudsql_instances": ["proj-x:europe-west1:pulse"],
        "env": {"PULSE_PROJECT": "proj-x", "PULSE_BIGTABLE_INSTANCE": "pulse",
                "PULSE_RAW_BUCKET": "proj-x-raw"},
        "env_from_secrets": {"PULSE_DATABASE_URL": secret, "PULSE_ADMIN_DATABASE_URL": secret}},
        "etl_pipeline")
    body = job.job_body["template"]["template"]
    assert body["serviceAccount"] == "flows@proj-x.iam.gserviceaccount.com"
    assert body["containers"][0]["resources"]["limits"]["memory"] == "2Gi"
    assert missing(job, settings) == []


def test_cloud_run_job_check_names_what_a_job_lacks() -> None:
    from pulse_local.rehearsal.cloud_run import missing, render_job

    job = render_job({"image": "img", "env": {"PULSE_DATABASE_URL": "postgresql://plain"}},
                     "etl_pipeline")
    assert missing(job, Settings(project="p", location="europe-west1")) == [
        "image", "project", "region", "bigtable instance", "bucket", "service account",
        "cloud sql", "secrets by reference"]
