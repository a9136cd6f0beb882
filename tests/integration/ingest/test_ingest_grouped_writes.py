"""Grouped writes against the real Postgres: concurrent deliveries of several tenants go in one
transaction, each statement under its own delivery's tenant, a delivery the database refuses
fails alone, and a revision whose row is committed by another transaction while its statement
runs is written again. The store is driven in-process (no HTTP) so the groups can be
observed."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.ingest.store import _WRITE, Store, StoreRejected, WriteResult, write_params

pytestmark = pytest.mark.integration


async def _prepared(store: Store, slug: str, body: dict[str, Any]) -> tuple[Any, ...]:
    """What `Store.write` takes for a webhook body, as the processor computes it."""
    from pulse_local.ingest.models import validate_body
    from pulse_local.ingest.scoring import map_answers

    raw = json.dumps(body).encode()
    tenant = await store.tenant(slug)
    payload = validate_body(raw)
    assessment = await store.assessment(tenant.id, payload.form_response.form_id)
    return tenant, assessment, payload, map_answers(payload, assessment), \
        hashlib.sha256(raw).hexdigest()


def _run_grouped(pulse_settings: Settings, deliveries: list[tuple[str, dict[str, Any], str | None]]
                 ) -> tuple[list[Any], list[int]]:
    """Write ``(slug, body, sha override)`` deliveries handed in at once (one write in
    flight), so they form one group. Returns each write's result or exception, and the sizes of
    the transactions written, in order (a delivery written again alone is one of 1)."""

    async def scenario() -> tuple[list[Any], list[int]]:
        store = Store(pulse_settings.app_dsn(), min_size=1, max_size=4, timeout=5,
                      connect_timeout=3, cache_seconds=30)
        await store.open()
        together: list[int] = []
        real = store._write_together

        async def spy(group: list[dict[str, Any]], *rest: Any) -> Any:
            together.append(len(group))
            return await real(group, *rest)

        store._write_together = spy  # type: ignore[method-assign]  # observe, not replace
        store._writes.in_flight = 1
        try:
            args = []
            for slug, body, sha in deliveries:
                prepared = await _prepared(store, slug, body)
                args.append(prepared if sha is None else (*prepared[:4], sha))
            tasks = [asyncio.create_task(store.write(*a)) for a in args]
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await store.close()
        return list(results), together

    return asyncio.run(scenario())


def test_deliveries_of_two_tenants_are_written_together_each_under_its_tenant(
        source_fixtures: Any, pulse_settings: Settings, make_webhook: Any,
        pg_admin: Any) -> None:
    bodies = [("tenant-0001", make_webhook("tenant-0001"), None),
              ("tenant-0001", make_webhook("tenant-0001"), None),
              ("tenant-0002", make_webhook("tenant-0002"), None),
              ("tenant-0001", make_webhook("tenant-0001"), None),
              ("tenant-0002", make_webhook("tenant-0002"), None)]
    results, together = _run_grouped(pulse_settings, bodies)
    assert together == [5]
    assert all(isinstance(r, WriteResult) and r.outcome == "created" for r in results)
    # Row-level security's WITH CHECK would refuse a row written under the other tenant.
    for (slug, body, _), result in zip(bodies, results, strict=True):
        row = pg_admin.execute(
            "select o.slug, r.id, (select count(*) from answers a where a.response_id = r.id) "
            "from responses r join organizations o on o.id = r.tenant_id "
            "where r.typeform_token = %s", (body["form_response"]["token"],)).fetchone()
        assert row[0] == slug and row[1] == result.response_id
        assert row[2] == len(body["form_response"]["answers"])


def test_a_delivery_the_database_refuses_fails_alone_and_the_rest_of_its_group_is_stored(
        source_fixtures: Any, pulse_settings: Settings, make_webhook: Any,
        pg_admin: Any) -> None:
    bodies = [("tenant-0001", make_webhook("tenant-0001"), None),
              ("tenant-0001", make_webhook("tenant-0001"), None),
              ("tenant-0002", make_webhook("tenant-0002"), "not a sha256"),  # a CHECK refuses it
              ("tenant-0002", make_webhook("tenant-0002"), None)]
    results, together = _run_grouped(pulse_settings, bodies)
    assert together == [4, 1, 1, 1, 1]  # tried together, refused as a whole, then each alone
    assert isinstance(results[2], StoreRejected) and "payload_sha256" in str(results[2])
    assert [r.outcome for i, r in enumerate(results) if i != 2] == ["created"] * 3
    tokens = [b["form_response"]["token"] for _, b, _ in bodies]
    stored = {t for (t,) in pg_admin.execute(
        "select typeform_token from responses where typeform_token = any(%s)", (tokens,))}
    assert stored == {tokens[0], tokens[1], tokens[3]}
    logged = pg_admin.execute("select count(*) from webhook_deliveries "
                              "where typeform_token = %s", (tokens[2],)).fetchone()[0]
    assert logged == 0  # nothing of the refused delivery, not even its log line


def test_a_revision_whose_first_delivery_commits_during_its_statement_is_written_again(
        source_fixtures: Any, pulse_settings: Settings, make_webhook: Any,
        pg_admin: Any) -> None:
    """The first delivery of a token is written by another transaction, left open while the
    revision's statement starts (it waits on the row), then committed. The revision's snapshot
    does not show the row: its statement writes nothing, and a second statement revises it,
    leaving exactly the revision's answers (one fewer) and one log line per delivery."""
    import psycopg

    from pulse_local.source.tenancy import atenant

    first = make_webhook("tenant-0001", value=1)
    token = first["form_response"]["token"]
    revision = make_webhook("tenant-0001", token=token, value=2,
                            submitted_at="2024-09-06T10:00:00Z")
    revision["form_response"]["answers"] = revision["form_response"]["answers"][1:]

    async def scenario() -> tuple[Any, list[int]]:
        store = Store(pulse_settings.app_dsn(), min_size=1, max_size=4, timeout=5,
                      connect_timeout=3, cache_seconds=30)
        await store.open()
        attempts: list[int] = []
        real = store._write_together

        async def spy(group: list[dict[str, Any]], attempt: int = 1) -> Any:
            attempts.append(attempt)
            return await real(group, attempt)

        store._write_together = spy  # type: ignore[method-assign]  # observe, not replace
        try:
            earlier = await _prepared(store, "tenant-0001", first)
            later = await _prepared(store, "tenant-0001", revision)
            async with await psycopg.AsyncConnection.connect(pulse_settings.app_dsn()) as other:
                async with atenant(other, earlier[0].id):
                    await other.execute(_WRITE, write_params(*earlier))
                    pending = asyncio.create_task(store.write(*later))
                    await asyncio.sleep(1.0)  # its statement now waits for this transaction
                    assert not pending.done()
                result = await pending
        finally:
            await store.close()
        return result, attempts

    result, attempts = asyncio.run(scenario())
    assert attempts == [1, 2]
    assert isinstance(result, WriteResult) and (result.outcome, result.revision) == ("revised", 2)
    stored = pg_admin.execute(
        "select r.answer_count, count(a.*) from responses r join answers a "
        "on a.response_id = r.id where r.typeform_token = %s group by r.answer_count",
        (token,)).fetchone()
    assert stored == (len(revision["form_response"]["answers"]),) * 2
    outcomes = [o for (o,) in pg_admin.execute(
        "select outcome from webhook_deliveries where typeform_token = %s order by id",
        (token,))]
    assert outcomes == ["created", "revised"]
