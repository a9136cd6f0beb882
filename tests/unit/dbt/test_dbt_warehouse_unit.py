"""Fast checks of the warehouse helpers and of the dbt project's files (no dbt invocation)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
import yaml

from pulse_local.config import Settings
from pulse_local.translate import bigquery_to_duckdb
from pulse_local.warehouse import DBT_PROJECT_DIR, DbtResult, dbt_env
from pulse_local.warehouse.dbt import _failure_message, _node_results, bigquery_parse_errors
from pulse_local.warehouse.raw import RAW_TABLES, create_raw_tables, generate_raw

MODELS_DIR = DBT_PROJECT_DIR / "models"


def _yaml_models() -> dict[str, dict]:
    models: dict[str, dict] = {}
    for path in MODELS_DIR.rglob("*.yml"):
        for m in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            models[m["name"]] = m
    return models


def test_every_model_file_is_documented_with_its_columns() -> None:
    sql_models = {p.stem for p in MODELS_DIR.rglob("*.sql")}
    documented = _yaml_models()
    assert sql_models == set(documented)
    for name, model in documented.items():
        assert model.get("description", "").strip(), name
        for col in model.get("columns", []):
            assert col.get("description", "").strip(), f"{name}.{col['name']}"


def test_staging_reads_only_raw_sources() -> None:
    for path in (MODELS_DIR / "staging").glob("*.sql"):
        text = path.read_text()
        assert "source('raw'," in text, path.name
        assert "ref(" not in text, path.name
    for path in [*(MODELS_DIR / "dimensions").glob("*.sql"), *(MODELS_DIR / "facts").glob("*.sql")]:
        assert "source(" not in path.read_text(), path.name


def test_at_least_23_data_tests_are_declared() -> None:
    generic = 0
    for model in _yaml_models().values():
        for col in model.get("columns", []):
            generic += len(col.get("data_tests", []))
    singular = len(list((DBT_PROJECT_DIR / "tests").glob("*.sql")))
    assert singular >= 8 and generic + singular >= 23


def test_models_contain_no_duckdb_only_syntax() -> None:
    """Models are BigQuery SQL: no `::` casts, no double-quoted identifiers, no DuckDB-only functions."""
    for path in [*MODELS_DIR.rglob("*.sql"), *(DBT_PROJECT_DIR / "tests").glob("*.sql")]:
        text = re.sub(r"--.*", "", path.read_text())
        assert "::" not in text, path.name
        assert not re.search(r"\b(list_|epoch_ms|strftime|struct_pack|read_parquet)\w*\(", text, re.IGNORECASE), path.name


def test_reverse_key_score_macro_translates_and_scores() -> None:
    macro = (DBT_PROJECT_DIR / "macros" / "reverse_key_score.sql").read_text()
    body = macro.split("-%}", 1)[1].split("{%- endmacro", 1)[0]
    expr = (body.replace("{{ value }}", "v").replace("{{ scale_min }}", "lo")
            .replace("{{ scale_max }}", "hi").replace("{{ is_reversed }}", "r"))
    sql = (f"SELECT v, lo, hi, r, {expr} AS s FROM UNNEST([STRUCT(2 AS v, 1 AS lo, 5 AS hi, TRUE AS r), "
           "(2, 1, 5, FALSE), (3, 0, 10, TRUE), (NULL, 1, 5, TRUE), (4, 1, 5, NULL)])")
    rows = duckdb.sql(bigquery_to_duckdb(sql)).fetchall()
    assert [r[-1] for r in rows] == [4, 2, 7, None, 4]


def test_profiles_have_local_and_gcp_targets() -> None:
    profiles = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["pulse"]["outputs"]
    assert profiles["local"]["type"] == "duckdb"
    assert profiles["local"]["plugins"] == [{"module": "pulse_local.translate.dbt_plugin"},
                                            {"module": "pulse_local.cdc.dbt_plugin"}]
    assert profiles["gcp"]["type"] == "bigquery"
    assert "PULSE_PROJECT" in profiles["gcp"]["project"] and "PULSE_LOCATION" in profiles["gcp"]["location"]


def test_dbt_env_comes_from_settings(tmp_path: Path) -> None:
    s = Settings(profile="gcp", state_dir=tmp_path, project="p1", location="europe-west4")
    env = dbt_env(s)
    assert env["PULSE_STATE_DIR"] == str(tmp_path)
    assert env["PULSE_DUCKDB_PATH"] == str(tmp_path / "warehouse" / "pulse.duckdb")
    assert (env["PULSE_PROJECT"], env["PULSE_LOCATION"], env["PULSE_PROFILE"]) == ("p1", "europe-west4", "gcp")


def _fake_run(name: str, status: str, message: str | None = None, failures: int | None = None) -> SimpleNamespace:
    node = SimpleNamespace(name=name, unique_id=f"test.pulse.{name}", resource_type=SimpleNamespace(value="test"),
                           compiled_code="select 1")
    return SimpleNamespace(node=node, status=SimpleNamespace(value=status), execution_time=0.25,
                           failures=failures, message=message)


def test_failure_message_names_failing_nodes_without_traceback() -> None:
    raw = SimpleNamespace(results=[
        _fake_run("ok_test", "pass"),
        _fake_run("assert_one_current_row_per_user", "fail", "Got 2 results, configured to fail if != 0", 2),
        _fake_run("fact_response", "error", "Runtime Error\n  Binder Error: column x not found\n" + "x\n" * 20),
        _fake_run("downstream", "skipped"),
    ])
    nodes = _node_results(raw)
    assert [n.ok for n in nodes] == [True, False, False, True]
    result = DbtResult(args=["build", "--select", "x"], target="local", success=False, seconds=1.0, nodes=nodes)
    text = _failure_message(result)
    assert text.startswith("dbt build failed (target local): 2 of 4 nodes failed")
    assert "test assert_one_current_row_per_user (fail): Got 2 results" in text
    assert "Binder Error: column x not found" in text
    assert "1 nodes skipped" in text
    assert "Traceback" not in text and text.count("\n") < 15
    assert result.node("fact_response").status == "error"
    with pytest.raises(KeyError):
        result.node("missing")


def test_parse_errors_as_bigquery() -> None:
    assert bigquery_parse_errors("select 1 from `p`.`d`.`t` qualify row_number() over () = 1") == []
    assert bigquery_parse_errors("select (1") != []


def test_raw_tables_have_datastream_shape() -> None:
    con = duckdb.connect()
    create_raw_tables(con)
    cols = con.execute("DESCRIBE raw.public_users").fetchall()
    meta = {c[0]: c[1] for c in cols}["datastream_metadata"]
    assert meta == ("STRUCT(uuid VARCHAR, source_timestamp BIGINT, change_sequence_number VARCHAR, "
                    "change_type VARCHAR, sort_keys VARCHAR[])")
    assert {c[0]: c[1] for c in con.execute("DESCRIBE raw.public_answers").fetchall()}["value_number"] == "DECIMAL(38,9)"


def test_generate_raw_small_is_consistent() -> None:
    con = duckdb.connect()
    counts = generate_raw(con, 1000, users_per_tenant=50)
    assert set(counts) == set(RAW_TABLES)
    live = con.execute("""
        SELECT id FROM raw.public_responses
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY datastream_metadata.source_timestamp DESC,
            datastream_metadata.change_sequence_number DESC) = 1 AND datastream_metadata.change_type != 'DELETE'
    """).fetchall()
    assert 950 < len(live) <= 1000
    types = {r[0] for r in con.execute("SELECT DISTINCT datastream_metadata.change_type FROM raw.public_users").fetchall()}
    assert types == {"INSERT", "UPDATE-DELETE", "UPDATE-INSERT"}


def test_raw_sources_are_append_only_in_the_stream_and_named_per_warehouse() -> None:
    """The models read every change event (the SCD2 dimension needs the history): each table
    they read must be captured append-only; names follow each warehouse's raw layer."""
    from pulse_local.cdc import load_stream_config

    sources = yaml.safe_load((MODELS_DIR / "staging" / "__sources.yml").read_text())["sources"][0]
    read = {t["name"] for t in sources["tables"]}
    stream = load_stream_config()
    modes = {t: (stream.tables[t].mode if t in stream.tables else None) or stream.destination.mode
             for t in read}
    assert modes == {t: "append-only" for t in read}, modes
    prefixes = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["raw_table_prefixes"]
    assert prefixes == {"bigquery": "public_", "duckdb": "public_"}  # Datastream's names, both
    for table in sources["tables"]:
        assert table["identifier"] == (
            "{{ var('raw_table_prefix', var('raw_table_prefixes')[target.type]) }}" + table["name"])
