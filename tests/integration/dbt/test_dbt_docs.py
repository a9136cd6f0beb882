"""`pulse-local dbt docs`: dbt's documentation site for the Pulse project on DuckDB (real dbt,
real DuckDB warehouse built from empty raw tables), served by a real HTTP server on
127.0.0.1, and shown by `pulse-local status`. No stack is started."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pulse_local.cli import app
from pulse_local.config import Settings
from pulse_local.warehouse import run_dbt
from pulse_local.warehouse.docs import (
    docs_location,
    forget_serving,
    record_serving,
    serve_docs,
)
from pulse_local.warehouse.raw import create_raw_tables

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dir whose warehouse holds the built project (raw tables empty)."""
    root = tmp_path_factory.mktemp("dbt-docs") / "state"
    settings = Settings(profile="local", state_dir=root)
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        create_raw_tables(con)
    run_dbt(settings, ["run"], quiet=True)
    return root


@pytest.fixture(scope="module")
def site(state: Path) -> Path:
    """`pulse-local dbt docs --no-serve` for dbt/: the site's directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PULSE_STATE_DIR", str(state))
        mp.delenv("PULSE_DUCKDB_PATH", raising=False)
        result = CliRunner().invoke(app, ["dbt", "docs", "--no-serve"])
    assert result.exit_code == 0, result.output
    index = state / "dbt" / "docs" / "pulse" / "target" / "index.html"
    assert f"dbt docs of pulse: {index}" in " ".join(result.output.split())
    return index.parent


def test_site_has_catalog_and_lineage(site: Path) -> None:
    for name in ("index.html", "manifest.json", "catalog.json"):
        assert (site / name).is_file(), name
    catalog = json.loads((site / "catalog.json").read_text())
    for model, column in [("fact_response", "score"), ("fact_run_summary", "completion_rate"),
                          ("dim_user_scd", "valid_from"), ("dim_tenant", "tenant_key")]:
        columns = catalog["nodes"][f"model.pulse.{model}"]["columns"]
        assert column in columns, (model, sorted(columns))
    assert "datastream_metadata" in catalog["sources"]["source.pulse.raw.responses"]["columns"]

    parents = json.loads((site / "manifest.json").read_text())["parent_map"]
    assert "source.pulse.raw.responses" in parents["model.pulse.stg_responses"]
    assert {"model.pulse.stg_responses", "model.pulse.dim_user_scd"} <= set(
        parents["model.pulse.fact_response"])
    assert "model.pulse.fact_response" in parents["model.pulse.fact_run_summary"]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def test_site_is_served_and_status_links_to_it(site: Path, state: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(profile="local", state_dir=state)
    assert docs_location(settings) == str(site / "index.html")  # generated, not served
    server = serve_docs(site, port=0)
    try:
        status, body = _get(server.url + "index.html")
        assert status == 200 and b"<html" in body.lower()
        status, body = _get(server.url + "catalog.json")
        assert status == 200 and "model.pulse.fact_response" in json.loads(body)["nodes"]
        assert _get(server.url)[0] == 200
        assert _get(server.url + "run_results.json")[0] == 404  # only the site's files
        assert _get(server.url + "../profiles.yml")[0] == 404

        record_serving(settings, server)
        monkeypatch.setenv("PULSE_STATE_DIR", str(state))
        shown = CliRunner().invoke(app, ["status"])
        assert f"dbt docs: {server.url}" in shown.output
    finally:
        server.stop()
        forget_serving(settings)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "index.html", timeout=5)
    assert docs_location(settings) == str(site / "index.html")


def test_docs_of_another_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--project-dir: any DuckDB project (here tests/fixtures/bq_project, built first)."""
    import shutil

    project = Path(shutil.copytree(Path(__file__).resolve().parents[2] / "fixtures" / "bq_project",
                                   tmp_path / "bq_project"))
    monkeypatch.setenv("PULSE_BQ_PROJECT_DUCKDB", str(tmp_path / "bq.duckdb"))
    monkeypatch.setenv("PULSE_STATE_DIR", str(tmp_path / "state"))
    settings = Settings(profile="local", state_dir=tmp_path / "state")
    run_dbt(settings, ["build", "--select", "+order_items"], project_dir=project,
            target="duckdb", target_path=tmp_path / "work", quiet=True)
    result = CliRunner().invoke(app, ["dbt", "docs", "--project-dir", str(project),
                                      "--profiles-dir", str(project), "--no-serve"])
    assert result.exit_code == 0, result.output
    site = tmp_path / "state" / "dbt" / "docs" / "bq_project" / "target"
    catalog = json.loads((site / "catalog.json").read_text())
    assert "sku" in catalog["nodes"]["model.bq_project.order_items"]["columns"]
    parents = json.loads((site / "manifest.json").read_text())["parent_map"]
    assert parents["model.bq_project.order_items"] == ["model.bq_project.stg_orders"]
    assert docs_location(settings) == str(site / "index.html")


def test_cli_serves_until_interrupted(site: Path, state: Path) -> None:
    """`pulse-local dbt docs --port P` in its own process: serves, status shows the URL while
    it runs, Ctrl-C (SIGINT) stops it and the address is forgotten."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from pulse_local.stack.process import free_port

    port = free_port()
    env = {**os.environ, "PULSE_STATE_DIR": str(state)}
    env.pop("PULSE_DUCKDB_PATH", None)
    proc = subprocess.Popen([sys.executable, "-m", "pulse_local.cli", "dbt", "docs", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    settings = Settings(profile="local", state_dir=state)
    try:
        deadline = time.monotonic() + 180  # dbt docs generate first: a readiness wait, not a timing assertion
        while docs_location(settings) != url:
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "pulse-local dbt docs did not start serving"
            time.sleep(0.5)
        assert _get(url + "index.html")[0] == 200
        assert _get(url + "catalog.json")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, output
    assert f"serving on {url}" in output and "stopped" in output
    assert docs_location(settings) == str(site / "index.html")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "index.html", timeout=5)
