"""Unit: the `<flow>-gcp` deployments' Cloud Run jobs (issue 19 item 3). Job variables are
built from the settings and rendered with prefect-gcp's real ``cloud-run-v2`` base job template
and configuration class, prepared for a flow run as its worker prepares one (offline: nothing
is sent). Nothing is faked except the absent Prefect API, which rendering never calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.errors import ConfigError, GcpSettingMissing
from pulse_local.gcp_jobs import (
    consumer_worker_pool,
    consumer_worker_pool_request,
    gcp_job_variables,
)
from pulse_local.orchestration import DEPLOYMENTS, prefect_auth_headers, register_gcp_deployments
from pulse_local.rehearsal.cloud_run import missing, render_job

DSN = "postgresql://pulse_app:hunter2-app@/pulse?host=/cloudsql/acme:europe-west1:pulse"
ADMIN_DSN = "postgresql://pulse_admin:hunter2-admin@/pulse?host=/cloudsql/acme:europe-west1:pulse"
COMPLETE: dict[str, Any] = {
    "profile": "gcp", "project": "acme-data", "raw_bucket": "acme-data-raw",
    "bigtable_instance": "pulse-serving", "run_service_account":
    "pulse-flows@acme-data.iam.gserviceaccount.com", "cloudsql_instance":
    "acme-data:europe-west1:pulse", "database_url": DSN, "admin_database_url": ADMIN_DSN,
    "db_app_password": "hunter2-app", "db_admin_password": "hunter2-admin", "job_memory": "4Gi",
}


def _settings(**changes: Any) -> Settings:
    values = {**COMPLETE, **changes}
    return Settings(**{k: v for k, v in values.items() if v is not None})


def _env(job: Any) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in job.job_body["template"]["template"]["containers"][0]["env"]}


@pytest.mark.parametrize("flow", [d.flow for d in DEPLOYMENTS])
def test_every_gcp_job_rendered_by_prefect_gcp_carries_what_a_run_needs(flow: str) -> None:
    settings = _settings()
    job = render_job(gcp_job_variables(settings, environ={}), flow)
    body = job.job_body["template"]["template"]
    container = body["containers"][0]
    env = _env(job)

    assert container["image"] == "europe-west1-docker.pkg.dev/acme-data/pulse/pulse-local:latest"
    assert job.region == "europe-west1"
    assert body["serviceAccount"] == "pulse-flows@acme-data.iam.gserviceaccount.com"
    assert body["volumes"] == [{"name": "cloudsql",
                                "cloudSqlInstance": {"instances": ["acme-data:europe-west1:pulse"]}}]
    assert {"name": "cloudsql", "mountPath": "/cloudsql"} in container["volumeMounts"]
    assert container["resources"]["limits"] == {"memory": "4Gi", "cpu": "1"}
    assert body["timeout"] == "3600s" and body["maxRetries"] == 0
    assert container["command"] == ["prefect", "flow-run", "execute"]
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    assert {k: plain[k] for k in ("PULSE_PROFILE", "PULSE_PROJECT", "PULSE_BIGTABLE_INSTANCE",
                                  "PULSE_RAW_BUCKET", "PULSE_REGION", "GOOGLE_CLOUD_PROJECT")} == {
        "PULSE_PROFILE": "gcp", "PULSE_PROJECT": "acme-data", "PULSE_BIGTABLE_INSTANCE":
        "pulse-serving", "PULSE_RAW_BUCKET": "acme-data-raw", "PULSE_REGION": "europe-west1",
        "GOOGLE_CLOUD_PROJECT": "acme-data"}
    assert env["PULSE_DATABASE_URL"] == {"name": "PULSE_DATABASE_URL", "valueSource": {
        "secretKeyRef": {"secret": "pulse-database-url", "version": "latest"}}}
    assert env["PULSE_ADMIN_DATABASE_URL"]["valueSource"]["secretKeyRef"] == {
        "secret": "pulse-admin-database-url", "version": "latest"}
    # the settings hold real DSNs and passwords: none of them reaches the job
    rendered = json.dumps(job.job_body)
    assert "hunter2" not in rendered and "postgresql://" not in rendered
    assert missing(job, settings) == []


@pytest.mark.parametrize(("unset", "variable"), [
    ("project", "PULSE_PROJECT"),
    ("raw_bucket", "PULSE_RAW_BUCKET"),
    ("run_service_account", "PULSE_RUN_SERVICE_ACCOUNT"),
    ("cloudsql_instance", "PULSE_CLOUDSQL_INSTANCE"),
])
def test_a_missing_gcp_setting_is_named(unset: str, variable: str) -> None:
    with pytest.raises(GcpSettingMissing, match=f"{variable} is not set"):
        gcp_job_variables(_settings(**{unset: None}), environ={})


def test_a_multi_region_location_needs_an_explicit_region() -> None:
    with pytest.raises(GcpSettingMissing, match="PULSE_REGION is not set.*'EU'"):
        gcp_job_variables(_settings(location="EU"), environ={})
    variables = gcp_job_variables(_settings(location="EU", region="europe-west4"), environ={})
    assert variables["region"] == "europe-west4"
    assert variables["image"].startswith("europe-west4-docker.pkg.dev/acme-data/")
    assert variables["env"]["PULSE_LOCATION"] == "EU"


def test_the_dsn_secrets_are_required() -> None:
    with pytest.raises(GcpSettingMissing, match="no Secret Manager secret for PULSE_ADMIN_DATABASE_URL"):
        gcp_job_variables(_settings(run_secrets={"PULSE_DATABASE_URL": "db"}), environ={})


def test_extra_secrets_and_versions_go_by_reference() -> None:
    secrets = {"PULSE_DATABASE_URL": "db:3", "PULSE_ADMIN_DATABASE_URL":
               "projects/shared/secrets/admin-db", "PULSE_ALERT_WEBHOOK_URL": "alert-hook"}
    variables = gcp_job_variables(_settings(run_secrets=secrets), environ={})
    assert variables["env_from_secrets"] == {
        "PULSE_DATABASE_URL": {"secret": "db", "version": "3"},
        "PULSE_ADMIN_DATABASE_URL": {"secret": "projects/shared/secrets/admin-db",
                                     "version": "latest"},
        "PULSE_ALERT_WEBHOOK_URL": {"secret": "alert-hook", "version": "latest"}}
    assert "PULSE_ALERT_WEBHOOK_URL" not in variables["env"]


def test_prefect_auth_of_the_registering_side_requires_the_jobs_to_get_it_by_reference() -> None:
    environ = {"PREFECT_API_AUTH_STRING": "admin:s3cret"}
    with pytest.raises(GcpSettingMissing, match="PREFECT_API_AUTH_STRING is set.*PULSE_RUN_SECRETS"):
        gcp_job_variables(_settings(), environ=environ)
    secrets = {**Settings().run_secrets, "PREFECT_API_AUTH_STRING": "prefect-auth"}
    job = render_job(gcp_job_variables(_settings(run_secrets=secrets), environ=environ),
                     "dbt_build")
    assert _env(job)["PREFECT_API_AUTH_STRING"]["valueSource"]["secretKeyRef"]["secret"] == \
        "prefect-auth"
    assert "s3cret" not in json.dumps(job.job_body)


@pytest.mark.parametrize(("change", "message"), [
    ({"cloudsql_instance": "pulse"}, "PULSE_CLOUDSQL_INSTANCE='pulse' is not an instance"),
    ({"run_service_account": "flows"}, "is not a service account e-mail"),
    ({"run_secrets": {**Settings().run_secrets, "bad name": "x"}}, "not an environment variable"),
    ({"run_secrets": {**Settings().run_secrets, "X": "a b"}}, "not a Secret Manager reference"),
])
def test_malformed_settings_are_config_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        gcp_job_variables(_settings(**change), environ={})


def test_a_secret_declared_as_plain_env_is_refused() -> None:
    declared = {"image": "{region}-docker.pkg.dev/{project}/p/i", "env": {
        "PULSE_ALERT_WEBHOOK_URL": "https://hooks.example/secret"}}
    with pytest.raises(ConfigError, match="PULSE_ALERT_WEBHOOK_URL would be a plain"):
        gcp_job_variables(_settings(), declared, environ={})


def test_registration_fails_on_a_missing_setting_before_calling_prefect() -> None:
    # port 9 (discard) on loopback: a call would raise httpx.ConnectError, not this
    with pytest.raises(GcpSettingMissing, match="PULSE_RUN_SERVICE_ACCOUNT"):
        register_gcp_deployments(_settings(run_service_account=None), "http://127.0.0.1:9/api")


def test_prefect_auth_headers_are_those_of_prefects_client() -> None:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, temporary_settings

    with temporary_settings(updates={PREFECT_API_AUTH_STRING: "admin:pass",
                                     PREFECT_API_KEY: "pnu_key"}):
        assert prefect_auth_headers() == {"Authorization": "Basic YWRtaW46cGFzcw=="}
    with temporary_settings(updates={PREFECT_API_KEY: "pnu_key"},
                            restore_defaults={PREFECT_API_AUTH_STRING}):
        assert prefect_auth_headers() == {"Authorization": "Bearer pnu_key"}
    with temporary_settings(restore_defaults={PREFECT_API_AUTH_STRING, PREFECT_API_KEY}):
        assert prefect_auth_headers() == {}


def test_the_streaming_consumer_has_a_cloud_run_worker_pool() -> None:
    secrets = {**Settings().run_secrets, "PULSE_ALERT_WEBHOOK_URL": "alert-hook"}
    pool = consumer_worker_pool(_settings(run_secrets=secrets), environ={})
    template = pool["template"]
    container = template["containers"][0]
    assert container["command"] == ["python", "-m", "pulse_local.streaming", "consume"]
    assert container["image"] == "europe-west1-docker.pkg.dev/acme-data/pulse/pulse-local:latest"
    assert template["serviceAccount"] == "pulse-flows@acme-data.iam.gserviceaccount.com"
    env = {e["name"]: e for e in container["env"]}
    assert env["PULSE_PROFILE"]["value"] == "gcp"
    assert env["PULSE_BIGTABLE_INSTANCE"]["value"] == "pulse-serving"
    assert env["PULSE_ALERT_WEBHOOK_URL"]["valueSource"]["secretKeyRef"]["secret"] == "alert-hook"
    # it never touches Cloud SQL: no DSN, no socket volume
    assert "PULSE_DATABASE_URL" not in env and "volumes" not in template
    assert "hunter2" not in json.dumps(pool)


def test_the_worker_pool_parses_as_cloud_runs_own_create_request() -> None:
    # google-cloud-run's message types: an unknown or mistyped field would raise ParseError
    request = consumer_worker_pool_request(_settings(), environ={})
    assert request.parent == "projects/acme-data/locations/europe-west1"
    assert request.worker_pool_id == "pulse-streaming"
    pool = request.worker_pool
    assert pool.scaling.manual_instance_count == 1
    container = pool.template.containers[0]
    assert pool.template.service_account == "pulse-flows@acme-data.iam.gserviceaccount.com"
    assert dict(container.resources.limits) == {"memory": "4Gi", "cpu": "1"}
    assert {e.name: e.value for e in container.env}["PULSE_RAW_BUCKET"] == "acme-data-raw"


def test_the_rehearsals_worker_pool_check_passes_a_complete_pool() -> None:
    from pulse_local.rehearsal.cloud_run import check_consumer_pool

    assert check_consumer_pool(_settings(run_secrets={**Settings().run_secrets,
                                                      "PREFECT_API_KEY": "k"})) == []


def test_an_image_of_a_shared_registry_is_taken_as_set() -> None:
    settings = _settings(image="europe-docker.pkg.dev/shared-builds/pulse/pulse-local:1.4")
    job = render_job(gcp_job_variables(settings, environ={}), "check_stack")
    assert job.job_body["template"]["template"]["containers"][0]["image"] == settings.image
    assert missing(job, settings) == []
    assert "image" in missing(job, _settings(image="europe-docker.pkg.dev/other/p/i:2"))
