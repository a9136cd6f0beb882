"""The dbt project end to end on data that came through the real pipeline: fixture reference
data seeded into the session's PostgreSQL, webhooks replayed (signed) through the real
typeform-processor, the changes landed by the real CDC (`pulse_local.cdc.drain`), then
`dbt build` on the local target (DuckDB + translation). Every dbt test must pass and the facts
must equal what PostgreSQL says, computed here with plain SQL on the source tables."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import duckdb
import psycopg
import pytest
from cdc_pipeline import DELIVERIES_PER_TENANT, Landed

from pulse_local.config import Settings

pytestmark = pytest.mark.integration

TRACKED = ("department", "role", "location", "team_id")


def _warehouse(settings: Settings, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


def _source(settings: Settings, sql: str) -> list[dict[str, Any]]:
    # the owner role: sees every tenant (superuser locally, bypasses row-level security)
    with psycopg.connect(settings.admin_dsn()) as conn, conn.cursor() as cur:
        cur.execute(sql)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def test_replay_was_accepted_and_cdc_landed_the_raw_layer(landed: Landed) -> None:
    assert set(landed.statuses) == {200}, landed.statuses
    assert sum(landed.statuses.values()) == 2 * DELIVERIES_PER_TENANT
    raw = {r["table_name"] for r in _warehouse(
        landed.settings, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'")}
    assert {f"public_{t}" for t in ("organizations", "users", "questions", "responses", "answers",
                                    "run_participants")} <= raw  # Datastream's names
    # unconstrained numeric lands as STRING (Datastream's mapping); staging casts it
    types = {r["column_name"]: r["data_type"] for r in _warehouse(
        landed.settings, "SELECT column_name, data_type FROM information_schema.columns "
                         "WHERE table_schema = 'staging' AND table_name = 'stg_answers'")}
    assert types["value_number"].startswith("DECIMAL")
    raw_type = _warehouse(landed.settings,
                          "SELECT typeof(value_number) AS t FROM raw.public_answers LIMIT 1")
    assert raw_type == [{"t": "VARCHAR"}]


def test_dbt_build_passes_every_test(landed: Landed) -> None:
    build = landed.build
    assert build.success and not build.failed, build.summary()
    assert build.count("model") == 14
    assert build.count("test") >= 23 and build.count("test", "pass") == build.count("test")
    assert build.count("unit_test") >= 2
    assert build.count("unit_test", "pass") == build.count("unit_test")


def test_fact_response_equals_the_source(landed: Landed) -> None:
    source = {str(r["id"]): r for r in _source(landed.settings, """
        select r.id, r.tenant_id, r.run_id, r.user_id, r.is_complete, r.revision, r.total_score,
               r.max_score, (select count(*) from answers a where a.response_id = r.id) as answers
        from responses r""")}
    facts = {r["response_id"]: r for r in _warehouse(landed.settings, "SELECT * FROM dw.fact_response")}
    assert len(source) > 500
    assert set(facts) == set(source)
    for rid, src in source.items():
        fact = facts[rid]
        assert fact["tenant_id"] == str(src["tenant_id"]), rid
        assert fact["is_complete"] == src["is_complete"], rid
        assert fact["revision"] == src["revision"], rid
        assert fact["answered_count"] == src["answers"], rid
        if src["total_score"] is not None:
            assert Decimal(fact["score"]) == src["total_score"], rid
            assert Decimal(fact["max_score"]) == src["max_score"], rid
    assert sum(f["revision"] > 1 for f in facts.values()) >= 1     # a revision came through CDC
    assert len({f["answered_count"] for f in facts.values()}) > 2  # optional questions skipped


def test_run_summary_and_tenants_equal_the_source(landed: Landed) -> None:
    source = {str(r["id"]): r for r in _source(landed.settings, """
        select ar.id,
               (select count(*) from run_participants p where p.run_id = ar.id) as participants,
               (select count(*) from responses r where r.run_id = ar.id) as responses,
               (select count(*) from responses r where r.run_id = ar.id and r.is_complete)
                   as complete_responses,
               (select count(distinct p.user_id) from run_participants p join responses r
                   on r.run_id = p.run_id and r.user_id = p.user_id and r.is_complete
                 where p.run_id = ar.id) as completed_participants
        from assessment_runs ar""")}
    summary = {r["run_id"]: r for r in _warehouse(landed.settings, "SELECT * FROM dw.fact_run_summary")}
    assert set(summary) == set(source)
    for run_id, src in source.items():
        got = summary[run_id]
        for col in ("participants", "responses", "complete_responses", "completed_participants"):
            assert got[col] == src[col], (run_id, col)
        expected_rate = src["completed_participants"] / src["participants"] if src["participants"] else None
        assert got["completion_rate"] == pytest.approx(expected_rate), run_id
    tenants = {str(r["id"]): r for r in _source(landed.settings, """
        select o.id, (select count(*) from users u where u.tenant_id = o.id) as users,
               (select count(*) from assessments a where a.tenant_id = o.id) as assessments
        from organizations o""")}
    dims = {r["tenant_id"]: r for r in _warehouse(landed.settings, "SELECT * FROM dw.dim_tenant")}
    assert {t: (d["active_users"], d["assessments"]) for t, d in dims.items()} == {
        t: (s["users"], s["assessments"]) for t, s in tenants.items()}


def test_user_versions_follow_the_captured_history(landed: Landed) -> None:
    """One current version per source user with the source's attributes; the fixture's
    attribute changes (real UPDATEs, captured by CDC) open exactly the expected versions."""
    users = {str(r["id"]): r for r in _source(landed.settings, "select * from users")}
    scd = _warehouse(landed.settings, "SELECT * FROM dw.dim_user_scd")
    current = {r["user_id"]: r for r in scd if r["is_current"]}
    assert set(current) == set(users)
    for user_id, src in users.items():
        for col in TRACKED:
            value = src[col]
            assert current[user_id][col] == (None if value is None else str(value)), (user_id, col)
    # expected versions of the fixture's users, from the fixture files alone
    state = {(u["tenant_id"], u["external_id"]): tuple(u[c] for c in TRACKED)
             for u in json.loads((landed.fixtures / "users.json").read_text())}
    ids = {(str(u["tenant_id"]), u["external_id"]): uid for uid, u in users.items()}
    expected = Counter({ids[k]: 1 for k in state})
    for change in json.loads((landed.fixtures / "user_changes.json").read_text()):
        key = (change["tenant_id"], change["external_id"])
        new = tuple(change.get(c, old) for c, old in zip(TRACKED, state[key]))
        if new != state[key]:
            expected[ids[key]] += 1
        state[key] = new
    versions = Counter(r["user_id"] for r in scd)
    assert {u: versions[u] for u in expected} == dict(expected)
    assert max(expected.values()) >= 2


def test_cli_dbt_test_runs_on_the_stack_warehouse_and_keeps_the_run(landed: Landed) -> None:
    from typer.testing import CliRunner

    from pulse_local.cli import app
    from pulse_local.warehouse import latest_run

    result = CliRunner().invoke(app, ["dbt", "test", "--select", "dim_tenant"])
    assert result.exit_code == 0, result.output
    assert "dbt test (target local)" in result.output and "error" not in result.output
    run = latest_run(landed.settings)
    assert run is not None and run.name.endswith("-test")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["tests"] == summary["tests_passed"] >= 4 and summary["models"] == 0
