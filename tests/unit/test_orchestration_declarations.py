"""Unit: flows/deployments.yaml is read into deployment specs; bad files get a named error."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse_local.config import Settings
from pulse_local.errors import ConfigError
from pulse_local.orchestration import (
    DEPLOYMENTS,
    FLOWS_DIR,
    _load_declarations,
    gcp_job_variables,
)


def test_every_flow_module_has_a_deployment_and_the_seed_schedules() -> None:
    flows = {p.stem for p in FLOWS_DIR.glob("*.py") if p.stem != "__init__"}
    assert {d.flow for d in DEPLOYMENTS} == flows
    crons = {d.flow: d.cron for d in DEPLOYMENTS}
    assert crons["etl_pipeline"] == "0 2 * * *"
    assert crons["dbt_build"] == "0 */4 * * *" and crons["monitor_pipeline"].endswith("*/4 * * *")


def test_unknown_flow_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - {flow: nope, cron: null, description: x}\n"
                    "gcp_work_pool: {name: p, type: cloud-run-v2}\n")
    with pytest.raises(ConfigError, match="unknown flow 'nope'"):
        _load_declarations(path)


def test_missing_keys_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - {flow: etl_pipeline}\n")
    with pytest.raises(ConfigError, match="not a valid deployments file"):
        _load_declarations(path)


def test_gcp_image_takes_the_project_and_region(monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    settings = Settings(project="acme-data", raw_bucket="acme-raw", region="europe-west4",
                        run_service_account="flows@acme-data.iam.gserviceaccount.com",
                        cloudsql_instance="acme-data:europe-west4:pulse")
    image = gcp_job_variables(settings)["image"]
    assert image == "europe-west4-docker.pkg.dev/acme-data/pulse/pulse-local:latest"
    image = gcp_job_variables(settings.model_copy(update={"image": "eu.gcr.io/x/y:1"}))["image"]
    assert image == "eu.gcr.io/x/y:1"
