"""`pulse-local dbt check`: per node, does it translate (local) / parse as BigQuery (gcp), with
nothing run. dbt compiles in-process against an in-memory DuckDB or offline for BigQuery: no
warehouse file, no network (sockets are refused in these tests)."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
from stack_environment import clear_stack_environment
from typer.testing import CliRunner

from pulse_local.cli import app
from pulse_local.config import Settings
from pulse_local.errors import ConfigError
from pulse_local.warehouse.check import CheckReport, check_project, check_translation

TINY = {
    "dbt_project.yml": """
        name: tiny
        version: "1.0.0"
        config-version: 2
        profile: tiny
        models:
          tiny:
            +materialized: table
    """,
    "profiles.yml": """
        tiny:
          target: local
          outputs:
            local:
              type: duckdb
              path: "{{ env_var('PULSE_DUCKDB_PATH') }}"
              plugins:
                - module: pulse_local.translate.dbt_plugin
    """,
    "models/months.sql": """
        select d, date_trunc(d, month) as month_start
        from unnest(generate_date_array(date '2024-01-01', date '2024-03-01', interval 1 month)) as d
    """,
    "models/fingerprints.sql": """
        -- BigQuery-only sketch: no DuckDB function returns the same BYTES
        select
            d,
            hll_count.init(cast(d as string)) as fp
        from {{ ref('months') }}
    """,
    "models/broken_syntax.sql": """
        select 1 as a,
            (2 + as b
    """,
    "models/unknown_function.sql": """
        select {{ 'pulse_' ~ 'magic' }}(1) as x
    """,
    "models/schema.yml": """
        version: 2
        models:
          - name: months
            columns:
              - name: d
                data_tests: [not_null, unique]
    """,
    "snapshots/months_snapshot.sql": """
        {% snapshot months_snapshot %}
        {{ config(target_schema='snapshots', unique_key='d', strategy='check', check_cols=['month_start']) }}
        select d, date_trunc(d, quarter) as month_start from {{ ref('months') }}
        {% endsnapshot %}
    """,
}


def _refuse_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every socket connection: the checks must work offline."""
    def refuse(self: socket.socket, address: Any) -> None:
        raise OSError(f"network disabled in this test (connect to {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    _refuse_network(monkeypatch)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TINY project (dbt writes nothing into it: its work goes to temporary folders)."""
    root = tmp_path_factory.mktemp("tiny")
    for name, text in TINY.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture(scope="module")
def tiny_report(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> CheckReport:
    """`check_translation` of TINY (real dbt, offline), run once for the tests that read it."""
    settings = Settings(profile="local", state_dir=tmp_path_factory.mktemp("tiny-state"),
                        project="pulse-offline")
    with pytest.MonkeyPatch.context() as mp:
        clear_stack_environment(mp)
        _refuse_network(mp)
        return check_translation(settings, project_dir=tiny)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(profile="local", state_dir=tmp_path / "state", project="pulse-offline")


def test_each_node_translates_or_says_why(tiny_report: CheckReport) -> None:
    report = tiny_report
    nodes = {n.name: n for n in report.nodes}
    assert set(nodes) == {"months", "fingerprints", "broken_syntax", "unknown_function",
                          "months_snapshot", "not_null_months_d", "unique_months_d"}
    assert {n.name for n in report.failed} == {"fingerprints", "broken_syntax", "unknown_function"}
    assert not report.ok
    assert report.summary() == "4 of 7 nodes translate to DuckDB and bind; 3 do not"
    assert nodes["months_snapshot"].resource_type == "snapshot" and nodes["months_snapshot"].ok

    fp = nodes["fingerprints"]        # model, file, line (of the .sql file), construct
    assert (fp.resource_type, fp.path, fp.line, fp.in_compiled) == (
        "model", "models/fingerprints.sql", 4, False)
    assert "hll_count.init" in (fp.construct or "").lower()
    assert fp.describe().startswith("model fingerprints (models/fingerprints.sql, line 4, column")
    assert fp.offending_line == "hll_count.init(cast(d as string)) as fp"

    syntax = nodes["broken_syntax"]   # a syntax error reports the BigQuery position
    assert syntax.reason and syntax.reason.startswith("BigQuery syntax error")
    assert (syntax.line, syntax.column) == (2, 11)          # at "as" (sqlglot: end column)

    unknown = nodes["unknown_function"]  # an unknown function names itself; made by Jinja,
    assert unknown.construct == "function PULSE_MAGIC()"  # so the line is the compiled one
    assert unknown.in_compiled and "compiled SQL line 1" in unknown.describe()


def test_cli_check_exits_1_and_names_each_failure(tiny: Path, tiny_report: CheckReport,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  no_network: None) -> None:
    monkeypatch.setenv("PULSE_STATE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(app, ["dbt", "check", "--project-dir", str(tiny), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["summary"].endswith("3 do not")
    failed = {n["name"]: n for n in report["nodes"] if not n["ok"]}
    assert failed["fingerprints"]["line"] == 4 and failed["fingerprints"]["path"] == "models/fingerprints.sql"

    # The text output of the same project: `tiny_report` (the same check, run once for the
    # module) stands in for a second dbt run (a fake `check_project`, said here).
    def same_check(settings: Settings, target: str | None = None, *, project_dir: Path | None,
                   **_: Any) -> CheckReport:
        assert (project_dir, target) == (tiny, None)
        return tiny_report

    monkeypatch.setattr("pulse_local.warehouse.check.check_project", same_check)
    text = CliRunner().invoke(app, ["dbt", "check", "--project-dir", str(tiny)])
    assert text.exit_code == 1
    assert "model fingerprints (models/fingerprints.sql, line 4, column" in text.output
    assert "offending line: hll_count.init(cast(d as string)) as fp" in text.output


def test_the_pulse_project_translates_entirely(settings: Settings, no_network: None) -> None:
    report = check_project(settings, "local")
    assert report.ok, "\n".join(n.describe() for n in report.failed)
    kinds = {n.resource_type for n in report.nodes}
    assert {"model", "test", "operation"} <= kinds
    assert sum(n.resource_type == "model" for n in report.nodes) == 14
    assert len(report.nodes) >= 90
    # the unit tests come from the empty build: the project was bound, not only translated
    assert {n.name for n in report.nodes if n.resource_type == "unit_test"} >= {
        "fact_response_scores_reverse_keyed_items", "dim_user_scd_versions_from_change_history"}


def test_raw_source_columns_are_datastreams_shape() -> None:
    """dbt check binds the staging models against the raw sources' declared columns: they
    must be the raw layer's shape (`pulse_local.warehouse.raw.RAW_TABLES`)."""
    import yaml

    from pulse_local.warehouse import DBT_PROJECT_DIR
    from pulse_local.warehouse.raw import METADATA_BQ, RAW_TABLES

    sources = yaml.safe_load((DBT_PROJECT_DIR / "models" / "staging" / "__sources.yml").read_text())
    for table in sources["sources"][0]["tables"]:
        declared = [(c["name"], c["data_type"]) for c in table["columns"]]
        assert declared == [*RAW_TABLES[table["name"]], ("datastream_metadata", METADATA_BQ)], table["name"]


def test_cli_check_gcp_target_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      no_network: None) -> None:
    monkeypatch.setenv("PULSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PULSE_PROJECT", "pulse-offline")
    result = CliRunner().invoke(app, ["dbt", "check", "--target", "gcp"])
    assert result.exit_code == 0, result.output
    assert "nodes parse as BigQuery SQL" in result.output
    assert "do not" not in result.output


def test_unknown_target_is_a_named_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="use one of gcp or local"):
        check_project(settings, "snowflake")


def test_every_dbt_command_has_help_with_an_example() -> None:
    for command in ("check", "build", "test", "docs"):
        result = CliRunner().invoke(app, ["dbt", command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example:" in result.output, command
