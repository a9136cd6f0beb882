"""Security matrix: as the application role under tenant A, tenant B's rows are out of reach."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pulse_local.source.tenancy import tenant

pytestmark = pytest.mark.integration

#: table -> the column holding the tenant
TABLES = {"organizations": "id", "webhook_secrets": "tenant_id", "teams": "tenant_id",
          "users": "tenant_id", "assessments": "tenant_id", "questions": "tenant_id",
          "assessment_runs": "tenant_id", "run_participants": "tenant_id",
          "responses": "tenant_id", "answers": "tenant_id", "webhook_deliveries": "tenant_id"}
DENIED = (psycopg.errors.InsufficientPrivilege,)


@pytest.fixture(scope="module")
def with_responses(seeded: Any, pulse_settings: Any, tenant_ids: list[str]) -> list[str]:
    """One response with an answer and a delivery per tenant, so every table has rows."""
    with psycopg.connect(pulse_settings.app_dsn()) as conn:
        for tid in tenant_ids:
            with tenant(conn, tid):
                a_id, q_id = conn.execute(
                    "select a.id, q.id from assessments a join questions q "
                    "on q.assessment_id = a.id limit 1").fetchone()
                rid = conn.execute(
                    "insert into responses (assessment_id, typeform_token, typeform_event_id, "
                    "submitted_at, is_complete, answer_count, payload_sha256) values "
                    "(%s, %s, 'e', now(), true, 1, repeat('0', 64)) returning id",
                    (a_id, uuid.uuid4().hex)).fetchone()[0]
                conn.execute("insert into answers (response_id, question_id, answer_type, "
                             "value_number) values (%s, %s, 'number', 3)", (rid, q_id))
                conn.execute("insert into webhook_deliveries (event_id, typeform_token, "
                             "response_id, outcome, payload_sha256) values ('e', 't', %s, "
                             "'created', repeat('0', 64))", (rid,))
    return tenant_ids


@pytest.fixture()
def app_conn(pulse_settings: Any, with_responses: list[str]) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pulse_settings.app_dsn(), autocommit=True) as conn:
        yield conn


def _other_row(pg_admin: Any, table: str, column: str, tenant_b: str) -> dict[str, Any]:
    cur = pg_admin.cursor(row_factory=psycopg.rows.dict_row)
    row = cur.execute(sql.SQL("select * from {} where {} = %s limit 1").format(
        sql.Identifier(table), sql.Identifier(column)), (tenant_b,)).fetchone()
    assert row is not None, f"fixture has no {table} rows for tenant B"
    return row


@pytest.mark.parametrize("table", sorted(TABLES))
def test_tenant_a_cannot_touch_tenant_b(table: str, app_conn: psycopg.Connection, pg_admin: Any,
                                        with_responses: list[str]) -> None:
    a, b = with_responses[0], with_responses[1]
    column = TABLES[table]
    ident, col = sql.Identifier(table), sql.Identifier(column)
    row_b = _other_row(pg_admin, table, column, b)
    with tenant(app_conn, a):
        visible = app_conn.execute(sql.SQL("select count(*) from {} where {} = %s").format(
            ident, col), (b,)).fetchone()[0]
        assert visible == 0
        own = app_conn.execute(sql.SQL("select count(*) from {}").format(ident)).fetchone()[0]
        assert own > 0, "tenant A should see its own rows"
    for statement in (sql.SQL("update {} set {} = {} where {} = %s").format(ident, col, col, col),
                      sql.SQL("delete from {} where {} = %s").format(ident, col)):
        try:
            with tenant(app_conn, a):
                assert app_conn.execute(statement, (b,)).rowcount == 0
        except DENIED:
            continue
    # insert a copy of B's row (new key) as tenant A: refused by privileges or WITH CHECK
    row = {k: v for k, v in row_b.items() if not (table in ("answers", "webhook_deliveries")
                                                   and k == "id")}
    if "id" in row and table not in ("answers", "webhook_deliveries"):
        row["id"] = uuid.uuid4()
    for unique in ("slug", "typeform_token", "external_id", "email", "name", "ref", "secret"):
        if unique in row and isinstance(row[unique], str):
            row[unique] = f"{row[unique][:40]}-x{uuid.uuid4().hex[:6]}"
    insert = sql.SQL("insert into {} ({}) values ({})").format(
        ident, sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)))
    values = [psycopg.types.json.Jsonb(v) if isinstance(v, dict) else v for v in row.values()]
    with pytest.raises((psycopg.errors.InsufficientPrivilege,
                        psycopg.errors.CheckViolation)) as err, tenant(app_conn, a):
        app_conn.execute(insert, values)
    assert "row-level security" in str(err.value) or "permission denied" in str(err.value)


def test_no_tenant_means_no_rows(app_conn: psycopg.Connection) -> None:
    for table in TABLES:
        count = app_conn.execute(sql.SQL("select count(*) from {}").format(
            sql.Identifier(table))).fetchone()[0]
        assert count == 0, f"{table} leaks {count} rows without a tenant"


def test_tenant_does_not_outlive_its_transaction(app_conn: psycopg.Connection,
                                                 with_responses: list[str]) -> None:
    with tenant(app_conn, with_responses[0]):
        assert app_conn.execute("select count(*) from responses").fetchone()[0] > 0
    assert app_conn.execute("select count(*) from responses").fetchone()[0] == 0


def test_cannot_move_own_rows_to_another_tenant(app_conn: psycopg.Connection,
                                                with_responses: list[str]) -> None:
    a, b = with_responses[0], with_responses[1]
    with (pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
          tenant(app_conn, a)):
        app_conn.execute("update responses set tenant_id = %s", (b,))


def test_cannot_reference_another_tenants_parent(app_conn: psycopg.Connection, pg_admin: Any,
                                                 with_responses: list[str]) -> None:
    a, b = with_responses[0], with_responses[1]
    rid_b, qid_b = pg_admin.execute(
        "select a.response_id, a.question_id from answers a where a.tenant_id = %s limit 1",
        (b,)).fetchone()
    with pytest.raises(psycopg.errors.ForeignKeyViolation), tenant(app_conn, a):
        app_conn.execute("insert into answers (response_id, question_id, answer_type) "
                         "values (%s, %s, 'number')", (rid_b, qid_b))


def test_garbage_tenant_id_is_refused(app_conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="must be a UUID"), tenant(app_conn, "1 or 1=1"):
        pass


def test_the_pipelined_tenant_context_scopes_its_statements_and_ends_with_them(
        pulse_settings: Any, with_responses: list[str]) -> None:
    """`atenant_pipeline`: its statements see only the tenant's rows, a failing one rolls back
    the block, and the setting is gone after it (autocommit connection, one round trip)."""
    import asyncio

    from pulse_local.source.tenancy import atenant_pipeline

    tenant_a, tenant_b = with_responses[0], with_responses[1]

    async def scenario() -> tuple[list[str], str, int, int]:
        async with await psycopg.AsyncConnection.connect(pulse_settings.app_dsn(),
                                                         autocommit=True) as conn:
            async with atenant_pipeline(conn, tenant_a):
                seen = await conn.execute("select distinct tenant_id::text from responses")
                before = await conn.execute("select count(*) from webhook_deliveries")
            tenants = [t for (t,) in await seen.fetchall()]
            count_before = (await before.fetchone())[0]
            with pytest.raises(psycopg.errors.CheckViolation):
                async with atenant_pipeline(conn, tenant_a):
                    await conn.execute(
                        "insert into webhook_deliveries (event_id, typeform_token, outcome, "
                        "payload_sha256) values ('e', 't', 'created', repeat('0', 64))")
                    await conn.execute(
                        "insert into webhook_deliveries (event_id, typeform_token, outcome, "
                        "payload_sha256) values ('e', 't', 'no such outcome', repeat('0', 64))")
            async with atenant_pipeline(conn, tenant_a):
                after = await conn.execute("select count(*) from webhook_deliveries")
            count_after = (await after.fetchone())[0]
            leftover = await (await conn.execute(
                "select coalesce(current_setting('pulse.tenant_id', true), '')")).fetchone()
            return tenants, leftover[0], count_before, count_after

    tenants, leftover, count_before, count_after = asyncio.run(scenario())
    assert tenants == [tenant_a] and tenant_b not in tenants
    assert count_after == count_before  # the first insert was rolled back with the second
    assert leftover == ""


def test_the_pipelined_tenant_context_refuses_a_connection_inside_a_transaction(
        pulse_settings: Any, with_responses: list[str]) -> None:
    import asyncio

    from pulse_local.source.tenancy import atenant_pipeline

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(pulse_settings.app_dsn()) as conn, \
                atenant_pipeline(conn, uuid.uuid4()):
            pass

    with pytest.raises(ValueError, match="autocommit"):
        asyncio.run(scenario())


def test_the_several_tenants_pipeline_scopes_each_statement_to_the_tenant_before_it(
        pulse_settings: Any, with_responses: list[str]) -> None:
    """`atenants_pipeline`: each statement sees only the tenant set before it, one failing
    statement rolls back every tenant's statements, and no setting is left after it."""
    import asyncio

    from pulse_local.source.tenancy import atenants_pipeline

    tenant_a, tenant_b = with_responses[0], with_responses[1]
    insert = ("insert into webhook_deliveries (event_id, typeform_token, outcome, "
              "payload_sha256) values ('e', 't', %s, repeat('0', 64))")

    async def scenario() -> tuple[list[str], list[str], int, int, str]:
        async with await psycopg.AsyncConnection.connect(pulse_settings.app_dsn(),
                                                         autocommit=True) as conn:
            count = "select count(*) from webhook_deliveries"
            async with atenants_pipeline(conn) as as_tenant:
                await as_tenant(tenant_a)
                seen_a = await conn.execute("select distinct tenant_id::text from responses")
                await as_tenant(tenant_b)
                seen_b = await conn.execute("select distinct tenant_id::text from responses")
                before = await conn.execute(count)
            with pytest.raises(psycopg.errors.CheckViolation):
                async with atenants_pipeline(conn) as as_tenant:
                    await as_tenant(tenant_a)
                    await conn.execute(insert, ("created",))
                    await as_tenant(tenant_b)
                    await conn.execute(insert, ("no such outcome",))
            async with atenants_pipeline(conn) as as_tenant:
                await as_tenant(tenant_b)
                after = await conn.execute(count)
            leftover = await (await conn.execute(
                "select coalesce(current_setting('pulse.tenant_id', true), '')")).fetchone()
            return ([t for (t,) in await seen_a.fetchall()],
                    [t for (t,) in await seen_b.fetchall()],
                    (await before.fetchone())[0], (await after.fetchone())[0], leftover[0])

    seen_a, seen_b, before, after, leftover = asyncio.run(scenario())
    assert seen_a == [tenant_a] and seen_b == [tenant_b]
    assert after == before  # tenant A's insert was rolled back with tenant B's failure
    assert leftover == ""
