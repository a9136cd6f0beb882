"""On gcp every credential comes from configuration (Secret Manager through Cloud Run's secret
references): a missing one is `GcpSettingMissing`, never a local default or a stack's file.
Unit tests: no sockets; the local stack's secret files are made in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse_local.backends import serving_caller, serving_security
from pulse_local.config import Settings
from pulse_local.errors import GcpSettingMissing
from pulse_local.gcp_jobs import run_secrets
from pulse_local.serving.auth import issue_token_for, signing_key
from pulse_local.stack.credentials import prepare_stack_secrets


@pytest.fixture()
def gcp(tmp_path: Path) -> Settings:
    # a state directory holding a local stack's generated secrets: gcp must not use them
    prepare_stack_secrets(Settings(state_dir=tmp_path), {"postgres", "prefect"})
    return Settings(profile="gcp", state_dir=tmp_path, project="acme", raw_bucket="acme-raw")


def test_no_database_password_without_its_dsn(gcp: Settings) -> None:
    for call in (gcp.admin_password, gcp.app_password, gcp.app_dsn, gcp.admin_dsn):
        with pytest.raises(GcpSettingMissing, match="PULSE_"):
            call()
    dsn = "postgresql://pulse_app:from-secret-manager@/pulse?host=/cloudsql/acme:eu:pulse"
    assert gcp.model_copy(update={"database_url": dsn}).app_dsn() == dsn


def test_no_token_signing_without_its_configuration(gcp: Settings) -> None:
    with pytest.raises(GcpSettingMissing, match="PULSE_SERVING_AUDIENCE"):
        serving_security(gcp)
    with pytest.raises(GcpSettingMissing, match="PULSE_SERVING_URL"):
        serving_caller(gcp)
    with pytest.raises(GcpSettingMissing, match="Google-signed ID tokens"):
        signing_key(gcp)
    with pytest.raises(Exception, match="Google ID tokens"):
        issue_token_for(gcp, "tenant-0001")
    assert type(serving_security(gcp.model_copy(
        update={"serving_audience": "https://serving.example"})).verifier).__name__ \
        == "GoogleIdTokenVerifier"


def test_jobs_get_credentials_by_secret_reference_only(gcp: Settings) -> None:
    with pytest.raises(GcpSettingMissing, match="PULSE_DATABASE_URL"):
        run_secrets(gcp.model_copy(update={"run_secrets": {}}), {})
    with pytest.raises(GcpSettingMissing, match="PREFECT_API_AUTH_STRING"):
        run_secrets(gcp, {"PREFECT_API_AUTH_STRING": "pulse:x"})
    refs = run_secrets(gcp.model_copy(update={"run_secrets": {
        **gcp.run_secrets, "PREFECT_API_AUTH_STRING": "prefect-auth"}}),
        {"PREFECT_API_AUTH_STRING": "pulse:x"})
    assert "pulse:x" not in repr(refs)
    assert set(refs) >= {"PULSE_DATABASE_URL", "PULSE_ADMIN_DATABASE_URL",
                         "PREFECT_API_AUTH_STRING"}
