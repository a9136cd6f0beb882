"""The Pulse dbt project on DuckDB (target local) and offline for BigQuery (target gcp).

dbt runs in-process through `pulse_local.warehouse.run_dbt`; each invocation costs seconds,
so the module runs few of them: build (batch 1), build (batch 2, incremental path),
docs generate, and parse + compile for gcp. Expected values are computed in Python from the
raw test data (`dbt_rawdata`), independently of the SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytest.importorskip("dbt.adapters.duckdb")
pytest.importorskip("dbt.adapters.bigquery")

from dbt_rawdata import (
    ChangeLog,
    expected_responses,
    expected_run_summary,
    expected_user_versions,
    scenario_batch1,
    scenario_batch2,
    uid,
)

from pulse_local.config import Settings
from pulse_local.warehouse import DbtResult, compile_gcp_offline, run_dbt
from pulse_local.warehouse.dbt import bigquery_parse_errors

pytestmark = pytest.mark.integration

MODELS = {
    "stg_organizations", "stg_users", "stg_user_changes", "stg_assessments", "stg_questions",
    "stg_assessment_runs", "stg_run_participants", "stg_responses", "stg_answers",
    "dim_tenant", "dim_user_scd", "dim_date", "fact_response", "fact_run_summary",
}


def query(db: Path, sql: str) -> list[dict[str, Any]]:
    # dbt-duckdb keeps its database instance open in this process: connect with the same
    # (default) configuration so DuckDB shares it.
    con = duckdb.connect(str(db))
    try:
        con.execute("SET TimeZone = 'UTC'")
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


class Warehouse:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = Settings(profile="local", state_dir=root / "state")
        self.db = self.settings.duckdb_path
        self.work = root / "dbt-work"
        self.log: ChangeLog = scenario_batch1()
        self.builds: list[DbtResult] = []
        self.snapshots: list[dict[str, list[dict[str, Any]]]] = []

    def write_raw(self) -> None:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.db))
        try:
            self.log.write(con)
        finally:
            con.close()

    def build(self) -> DbtResult:
        result = run_dbt(self.settings, ["build"], target_path=self.work, quiet=True)
        self.builds.append(result)
        self.snapshots.append({
            "fact_response": query(self.db, "SELECT * FROM dw.fact_response"),
            "dim_user_scd": query(self.db, "SELECT * FROM dw.dim_user_scd"),
            "fact_run_summary": query(self.db, "SELECT * FROM dw.fact_run_summary"),
            "dim_tenant": query(self.db, "SELECT * FROM dw.dim_tenant"),
        })
        return result


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """Batch 1 -> build (full), then batch 2 -> build (incremental path)."""
    wh = Warehouse(tmp_path_factory.mktemp("pulse-dbt"))
    wh.write_raw()
    wh.build()
    expected = [(expected_responses(wh.log), expected_user_versions(wh.log), expected_run_summary(wh.log))]
    scenario_batch2(wh.log)
    wh.write_raw()
    wh.build()
    expected.append((expected_responses(wh.log), expected_user_versions(wh.log),
                     expected_run_summary(wh.log)))
    wh.expected = expected  # type: ignore[attr-defined]
    yield wh


def _num(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).normalize()


def _check_responses(rows: list[dict[str, Any]], expected: dict[str, dict[str, Any]],
                     scd: list[dict[str, Any]]) -> None:
    key_to_version = {r["user_scd_key"]: (r["user_id"], r["version_number"]) for r in scd}
    assert len(rows) == len({r["response_id"] for r in rows}), "duplicate response rows"
    assert {r["response_id"] for r in rows} == set(expected)
    for row in rows:
        exp = expected[row["response_id"]]
        where = f"response {row['response_id']}"
        assert row["tenant_id"] == exp["tenant_id"], where
        assert row["submitted_date_key"] == exp["date_key"], where
        assert row["is_complete"] == exp["is_complete"], where
        assert row["revision"] == exp["revision"], where
        for col in ("answered_count", "scored_answer_count", "reverse_keyed_answer_count"):
            assert row[col] == exp[col], (where, col)
        for col in ("raw_score", "score", "min_score", "max_score"):
            assert _num(row[col]) == _num(exp[col]), (where, col, row[col], exp[col])
        if exp["user_version"] is None:
            assert row["user_scd_key"] is None, where
        else:
            assert key_to_version[row["user_scd_key"]] == (exp["user_id"], exp["user_version"]), where


def _check_scd(rows: list[dict[str, Any]], expected: dict[str, list[dict[str, Any]]]) -> None:
    got: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["user_id"], r["version_number"])):
        got.setdefault(r["user_id"], []).append(r)
    assert set(got) == set(expected)
    for user, versions in expected.items():
        actual = got[user]
        assert [v["version_number"] for v in actual] == [v["version"] for v in versions], user
        for a, e in zip(actual, versions):
            assert {k: a[k] for k in e["attrs"]} == e["attrs"], (user, a["version_number"])
            assert a["valid_from"] == e["valid_from"], (user, a["version_number"])
            assert a["valid_to"] == e["valid_to"], (user, a["version_number"])
            assert a["is_current"] == (e["valid_to"] is None), (user, a["version_number"])


def _check_runs(rows: list[dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    assert {r["run_id"] for r in rows} == set(expected)
    for row in rows:
        exp = expected[row["run_id"]]
        for col in ("participants", "responses", "complete_responses", "completed_participants"):
            assert row[col] == exp[col], (row["run_id"], col)
        for col in ("completion_rate", "average_score"):
            if exp[col] is None:
                assert row[col] is None, (row["run_id"], col)
            else:
                assert row[col] == pytest.approx(exp[col]), (row["run_id"], col)


# ----------------------------------------------------------------------------------------

def test_build_runs_every_model_data_test_and_unit_test(warehouse: Warehouse) -> None:
    for result in warehouse.builds:
        assert result.success and not result.failed
        models = {n.name for n in result.nodes if n.resource_type == "model"}
        assert models == MODELS
        assert result.count("test") >= 23
        assert result.count("test", "pass") == result.count("test")
        assert result.count("unit_test") >= 2
        assert result.count("unit_test", "pass") == result.count("unit_test")


def test_first_build_facts_match_python(warehouse: Warehouse) -> None:
    snap = warehouse.snapshots[0]
    responses, versions, runs = warehouse.expected[0]  # type: ignore[attr-defined]
    _check_scd(snap["dim_user_scd"], versions)
    _check_responses(snap["fact_response"], responses, snap["dim_user_scd"])
    _check_runs(snap["fact_run_summary"], runs)


def test_scd_department_change_and_reverse_keyed_scores(warehouse: Warehouse) -> None:
    snap = warehouse.snapshots[0]
    a1 = sorted((r for r in snap["dim_user_scd"] if r["user_id"] == uid("a1")),
                key=lambda r: r["version_number"])
    assert [(v["department"], v["is_current"]) for v in a1] == [("Engineering", False), ("Sales", True)]
    a2 = [r for r in snap["dim_user_scd"] if r["user_id"] == uid("a2")]
    assert len(a2) == 1 and a2[0]["email"] == "a2.new@acme.example"    # type 1, no new version
    assert not [r for r in snap["dim_user_scd"] if r["user_id"] == uid("a5") and r["is_current"]]
    facts = {r["response_id"]: r for r in snap["fact_response"]}
    ra1 = facts[uid("ra1")]
    # e1=4, e2=2 reverse keyed on 1-5 -> 4, e3=5 weight 2: 4 + 4 + 10 = 18; raw 4 + 2 + 10 = 16
    assert (ra1["score"], ra1["raw_score"], ra1["max_score"]) == (18, 16, 20)
    assert a1[0]["user_scd_key"] == ra1["user_scd_key"]                 # submitted before the change
    rg2 = facts[uid("rg2")]                                              # revised: w1=6, w2=4 rev 0-10 x1.5
    assert (rg2["revision"], rg2["score"]) == (2, Decimal(15))
    assert uid("rg3b") not in facts                                      # deleted response


def test_second_build_takes_incremental_path(warehouse: Warehouse) -> None:
    node = warehouse.builds[1].node("fact_response")
    assert "_changed_at >" in (node.compiled_code or ""), "second build did not run incrementally"
    assert "_changed_at >" not in (warehouse.builds[0].node("fact_response").compiled_code or "")
    snap = warehouse.snapshots[1]
    responses, versions, runs = warehouse.expected[1]  # type: ignore[attr-defined]
    _check_scd(snap["dim_user_scd"], versions)
    _check_responses(snap["fact_response"], responses, snap["dim_user_scd"])
    _check_runs(snap["fact_run_summary"], runs)
    facts = {r["response_id"]: r for r in snap["fact_response"]}
    assert uid("ra4") not in facts                                       # deleted at the source
    assert facts[uid("ra2")]["revision"] == 2                            # updated in place
    before = {r["response_id"]: r for r in warehouse.snapshots[0]["fact_response"]}
    assert facts[uid("ra1")] == before[uid("ra1")]                       # untouched row kept as is
    assert len(facts) == len(before) - 1 + 3


def test_docs_generate_documents_every_model_and_column(warehouse: Warehouse) -> None:
    result = run_dbt(warehouse.settings, ["docs", "generate"], target_path=warehouse.work, quiet=True)
    assert result.success
    target = warehouse.work / "target"
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert set(models) == MODELS
    for uid_, entry in catalog["nodes"].items():
        model = manifest["nodes"][uid_]
        assert model["description"].strip(), f"{model['name']} has no description"
        actual = {c.lower() for c in entry["columns"]}
        documented = {c.lower() for c, d in model["columns"].items() if d["description"].strip()}
        assert actual == documented, f"{model['name']}: undocumented {actual - documented}, stale {documented - actual}"
    assert {n["name"] for n in (manifest["nodes"][u] for u in catalog["nodes"])} == MODELS


def test_gcp_target_parses_and_compiles_offline_as_bigquery(warehouse: Warehouse) -> None:
    settings = Settings(profile="gcp", state_dir=warehouse.root / "state", project="pulse-offline")
    result = compile_gcp_offline(settings, target_path=warehouse.root / "gcp-work")
    compiled = {n.name: n.compiled_code for n in result.nodes if n.compiled_code}
    assert MODELS <= set(compiled)
    assert "`pulse-offline`.`raw`.`public_users`" in compiled["stg_user_changes"]  # Datastream's name
    # append-only mode has no datastream_metadata.is_deleted: a view reading it would not create
    assert not [name for name, sql in compiled.items() if "is_deleted" in sql]
    assert all(bigquery_parse_errors(sql) == [] for sql in compiled.values())
    assert "`pulse-offline`.`staging`.`stg_responses`" in compiled["fact_response"]
    assert "/* pulse-local" not in compiled["fact_response"]               # BigQuery SQL, untranslated
    manifest = json.loads((warehouse.root / "gcp-work" / "target" / "manifest.json").read_text())
    fact = next(n for n in manifest["nodes"].values() if n["name"] == "fact_response")
    assert fact["config"]["incremental_strategy"] == "merge"
    assert fact["schema"] == "dw"
    local = json.loads((warehouse.work / "target" / "manifest.json").read_text())
    fact_local = next(n for n in local["nodes"].values() if n["name"] == "fact_response")
    assert fact_local["config"]["incremental_strategy"] == "delete+insert"
