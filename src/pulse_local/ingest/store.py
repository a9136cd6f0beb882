"""Database side of the processor: tenant/form lookups (cached) and the write transactions.

Everything runs as the application role through an asyncio pool of autocommit connections,
always inside a tenant context (`pulse_local.source.tenancy`: the transactions come from it),
so row-level security applies to every statement. Concurrent deliveries are written together,
one transaction and one round trip for the group, each statement under its own delivery's
tenant (`atenants_pipeline`); if the database refuses one of them, each is written again alone.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pulse_local.ingest.grouping import Grouper
from pulse_local.ingest.grouping import Outcome as Settled
from pulse_local.ingest.models import TypeformWebhook
from pulse_local.ingest.scoring import AssessmentSpec, MappedResponse, QuestionSpec
from pulse_local.source.tenancy import (
    ResolvedTenant,
    atenant,
    atenants_pipeline,
    resolve_tenant,
)

Outcome = Literal["created", "revised", "duplicate", "stale"]


class DatabaseUnavailable(Exception):
    """The database did not answer (pool timeout, connection refused or lost)."""


class StoreRejected(Exception):
    """The database refused the data itself (a constraint); the client should not retry."""


@dataclass(frozen=True)
class WriteResult:
    """What one delivery did to the database."""

    response_id: uuid.UUID
    revision: int
    outcome: Outcome
    user_id: uuid.UUID | None
    run_id: uuid.UUID | None
    #: A ``stale`` delivery whose body was stored earlier, at `revision` (then superseded):
    #: its event is published again, since the earlier publish may have failed.
    stored_earlier: bool = False


#: An assessment and its questions by Typeform form id (one row per question).
QUESTIONS = """
select a.id, q.id, q.ref, q.question_type, q.required, q.scale_min, q.scale_max,
       q.reverse_keyed, q.weight
from assessments a left join questions q on q.assessment_id = a.id
where a.typeform_form_id = %s and a.status <> 'archived'
"""

#: The whole delivery in ONE statement: the response upsert, its answers, the answers a
#: revision no longer has, and the delivery log, as data-modifying CTEs. ``prior`` is the
#: stored row as of the statement's snapshot. The upsert changes a stored row only if it is
#: still the revision ``prior`` saw, so the answers the snapshot shows are that revision's and
#: ``dropped`` removes the right ones. When the row was written after the snapshot (a
#: concurrent delivery of the token committed while the statement ran; ``on conflict`` sees it,
#: the snapshot does not), the statement writes nothing and returns no outcome: the delivery is
#: written again (`Store._write_together`), by a new statement with a new snapshot.
_WRITE = """
with prior as (
    select id, revision, payload_sha256 = %(sha)s as same, submitted_at, user_id, run_id
    from responses where tenant_id = %(tenant_id)s and typeform_token = %(token)s
), upserted as (
    insert into responses as r (
        tenant_id, assessment_id, run_id, user_id, typeform_token, typeform_event_id,
        landed_at, submitted_at, is_complete, answer_count, total_score, max_score, hidden,
        payload_sha256)
    values (
        %(tenant_id)s, %(assessment_id)s,
        (select id from assessment_runs where tenant_id = %(tenant_id)s
            and assessment_id = %(assessment_id)s
            and opens_at <= %(submitted_at)s and %(submitted_at)s < closes_at
            order by opens_at desc limit 1),
        (select id from users where tenant_id = %(tenant_id)s and external_id = %(user_ref)s),
        %(token)s, %(event_id)s, %(landed_at)s, %(submitted_at)s, %(is_complete)s,
        %(answer_count)s, %(total_score)s, %(max_score)s, %(hidden)s, %(sha)s)
    on conflict (tenant_id, typeform_token) do update set
        assessment_id = excluded.assessment_id, run_id = excluded.run_id,
        user_id = excluded.user_id, typeform_event_id = excluded.typeform_event_id,
        landed_at = excluded.landed_at, submitted_at = excluded.submitted_at,
        is_complete = excluded.is_complete, answer_count = excluded.answer_count,
        total_score = excluded.total_score, max_score = excluded.max_score,
        hidden = excluded.hidden, payload_sha256 = excluded.payload_sha256,
        revision = r.revision + 1, updated_at = now()
    where r.payload_sha256 <> excluded.payload_sha256
        and excluded.submitted_at >= r.submitted_at
        and r.revision = (select revision from prior)
    returning id, revision, (xmax = 0) as inserted, user_id, run_id
), decided as (
    select coalesce(u.id, p.id) as id, coalesce(u.revision, p.revision) as revision,
           case when u.id is not null then case when u.inserted then 'created' else 'revised' end
                when p.id is null then null
                when p.same then 'duplicate'
                when %(submitted_at)s < p.submitted_at then 'stale'
           end as outcome,
           case when u.id is not null then u.user_id else p.user_id end as user_id,
           case when u.id is not null then u.run_id else p.run_id end as run_id
    from (select) as one left join upserted u on true left join prior p on true
), answer_rows as (
    select a.question_id, a.answer_type, a.value_text, a.value_number::numeric, a.value_bool,
           a.value_json, a.raw_score::numeric, a.score::numeric
    from jsonb_to_recordset(%(answers)s::jsonb) as a(
        question_id uuid, answer_type text, value_text text, value_number text,
        value_bool boolean, value_json jsonb, raw_score text, score text)
), written_answers as (
    insert into answers as x (tenant_id, response_id, question_id, answer_type, value_text,
                              value_number, value_bool, value_json, raw_score, score)
    select %(tenant_id)s, u.id, a.* from upserted u, answer_rows a
    on conflict (tenant_id, response_id, question_id) do update set
        answer_type = excluded.answer_type, value_text = excluded.value_text,
        value_number = excluded.value_number, value_bool = excluded.value_bool,
        value_json = excluded.value_json, raw_score = excluded.raw_score,
        score = excluded.score
    where (x.answer_type, x.value_text, x.value_number, x.value_bool, x.value_json,
           x.raw_score, x.score)
        is distinct from (excluded.answer_type, excluded.value_text, excluded.value_number,
                          excluded.value_bool, excluded.value_json, excluded.raw_score,
                          excluded.score)
), dropped as (
    delete from answers
    where tenant_id = %(tenant_id)s
        and response_id = (select id from upserted where not inserted)
        and question_id <> all(string_to_array(%(question_list)s, ',')::uuid[])
), logged as (
    insert into webhook_deliveries (tenant_id, event_id, typeform_token, response_id, outcome,
                                    payload_sha256)
    select %(tenant_id)s, %(event_id)s, %(token)s, d.id, d.outcome, %(sha)s
    from decided d where d.outcome is not null
)
select id, revision, outcome, user_id, run_id from decided
"""
#: The revision a superseded body was stored at (None: never stored), and the user and run
#: its event named. Revisions count the token's applied deliveries (``created`` then one
#: ``revised`` each), logged in the order they were applied (one statement at a time per
#: token: the upsert holds the row's lock until it commits); a body applied more than once
#: takes its latest. Only run for ``stale`` outcomes, which are rare: kept out of `_WRITE`.
_EARLIER = """
select (select max(n) from (
            select payload_sha256, row_number() over (order by id) as n from webhook_deliveries
            where response_id = %(response_id)s and tenant_id = %(tenant_id)s
                and outcome in ('created', 'revised')) as applied
        where payload_sha256 = %(sha)s),
       (select id from users where tenant_id = %(tenant_id)s and external_id = %(user_ref)s),
       (select id from assessment_runs where tenant_id = %(tenant_id)s
            and assessment_id = %(assessment_id)s
            and opens_at <= %(submitted_at)s and %(submitted_at)s < closes_at
            order by opens_at desc limit 1)
"""

#: Without the indentation: psycopg caches the conversion of statements up to 4,096 characters
#: (``MAX_CACHED_STATEMENT_LENGTH``); a longer one is re-parsed on every call.
_WRITE = "\n".join(line.strip() for line in _WRITE.splitlines())

#: How many statements a delivery may run before it gives up racing concurrent deliveries of
#: its token (503: the sender retries).
_WRITE_ATTEMPTS = 5

def _number(value: Any) -> str | None:
    return None if value is None else str(value)


def answer_values(mapped: MappedResponse) -> list[tuple[Any, ...]]:
    """The ``answers`` columns after (tenant_id, response_id) of each mapped answer: question
    id, type, text, number, bool, json, raw score, score (numbers as text: exact on the way to
    numeric)."""
    return [(a.question.id, a.answer_type, a.value_text, _number(a.value_number), a.value_bool,
             None if a.value_json is None else Jsonb(a.value_json), _number(a.raw_score),
             _number(a.score)) for a in mapped.answers]


def answers_document(mapped: MappedResponse) -> str:
    """The mapped answers as the JSON array `_WRITE` reads with ``jsonb_to_recordset`` (one
    parameter instead of eight arrays: half the encoding work; numbers as text, exact on the
    way to numeric; null fields left out)."""
    rows = []
    for a in mapped.answers:
        row = {"question_id": str(a.question.id), "answer_type": a.answer_type,
               "value_text": a.value_text, "value_number": _number(a.value_number),
               "value_bool": a.value_bool, "value_json": a.value_json,
               "raw_score": _number(a.raw_score), "score": _number(a.score)}
        rows.append({k: v for k, v in row.items() if v is not None})
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def write_params(tenant: ResolvedTenant, assessment: AssessmentSpec, payload: TypeformWebhook,
                 mapped: MappedResponse, sha: str) -> dict[str, Any]:
    """The parameters of `_WRITE` for one delivery (``sha``: of its raw body)."""
    fr = payload.form_response
    return {
        "tenant_id": tenant.id, "assessment_id": assessment.id,
        "user_ref": fr.hidden.get("user_id"), "token": fr.token,
        "event_id": payload.event_id, "landed_at": fr.landed_at,
        "submitted_at": fr.submitted_at, "is_complete": mapped.is_complete,
        "answer_count": len(mapped.answers), "total_score": mapped.total_score,
        "max_score": mapped.max_score, "hidden": Jsonb(fr.hidden), "sha": sha,
        "answers": answers_document(mapped),
        "question_list": ",".join(str(a.question.id) for a in mapped.answers),
    }


def delivery_outcome(stored: tuple[str, datetime] | None, sha: str,
                     submitted_at: datetime) -> Outcome:
    """What a delivery does to a response already stored as ``(payload sha, submitted_at)``:
    the rule `_UPSERT` applies in SQL, for loads that decide it beforehand (`source.bulk`).
    New token: created; another payload not older than the stored one: revised; the same
    payload: duplicate; an older one: stale."""
    if stored is None:
        return "created"
    if stored[0] != sha and submitted_at >= stored[1]:
        return "revised"
    return "duplicate" if stored[0] == sha else "stale"


def assessment_from_rows(form_id: str, rows: list[tuple[Any, ...]]) -> AssessmentSpec | None:
    """The `AssessmentSpec` of a form from the rows of `QUESTIONS` (None: no such form)."""
    if not rows:
        return None
    questions = {
        r[2]: QuestionSpec(r[1], r[2], r[3], r[4], r[5], r[6], r[7], float(r[8]))
        for r in rows if r[1] is not None
    }
    return AssessmentSpec(rows[0][0], form_id, questions)


#: Most deliveries one write transaction carries.
WRITE_GROUP_MAX = 50
#: Write transactions in flight at once (each on its own pooled connection). Measured at 16
#: clients: 2 and 4 alike, 1 left the processor waiting on the database.
WRITE_GROUPS_IN_FLIGHT = 2

async def _discard(conn: psycopg.AsyncConnection) -> None:
    """Close a connection whose pipeline failed, so the pool replaces it: the server skipped
    what was queued after the error, including the Parse of a statement psycopg had decided to
    prepare, and psycopg's cache would name a prepared statement that does not exist (seen
    here: ``prepared statement "_pg3_0" does not exist`` on the connection's next write)."""
    await conn.close()


class Store:
    """The processor's database access, with small time-bounded caches."""

    def __init__(self, dsn: str, *, min_size: int, max_size: int, timeout: float,
                 connect_timeout: int, cache_seconds: float) -> None:
        self.pool = AsyncConnectionPool(
            dsn, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
            kwargs={"autocommit": True, "connect_timeout": connect_timeout,
                    "application_name": "typeform-processor"},
        )
        self.cache_seconds = cache_seconds
        self._tenants: dict[str, tuple[float, ResolvedTenant]] = {}
        #: Every tenant resolved since start, kept past `cache_seconds`: while the database is
        #: down the processor still verifies their signatures (`known_tenant`).
        self._known: dict[str, ResolvedTenant] = {}
        self._forms: dict[tuple[uuid.UUID, str], tuple[float, AssessmentSpec]] = {}
        #: Concurrent deliveries are written together: up to `WRITE_GROUPS_IN_FLIGHT` groups
        #: at a time, the deliveries handed in meanwhile wait for the next.
        self._writes: Grouper[dict[str, Any], WriteResult] = Grouper(
            self._write_group, max_items=WRITE_GROUP_MAX, in_flight=WRITE_GROUPS_IN_FLIGHT)

    async def open(self) -> None:
        """Start the pool without waiting: the service starts even when the database is down."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self, timeout: float = 2.0) -> None:
        """A real query; raises `DatabaseUnavailable`."""
        try:
            async with self.pool.connection(timeout=timeout) as conn:
                await conn.execute("select 1")
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def tenant(self, slug: str, *, fresh: bool = False) -> ResolvedTenant | None:
        """The tenant of a webhook URL (cached for `cache_seconds`), None when unknown.

        ``fresh``: ask the database even when cached (a signature the cached secrets refused:
        the secrets may have been rotated, and while the database is down the answer must be
        the one an unknown slug gets, `DatabaseUnavailable`, not one the cache gives)."""
        if not fresh and (hit := self.cached_tenant(slug)) is not None:
            return hit
        try:
            async with self.pool.connection() as conn:
                found = await resolve_tenant(conn, slug)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        if found is not None:
            self._tenants[slug] = (time.monotonic() + self.cache_seconds, found)
            self._known[slug] = found
        else:
            self._tenants.pop(slug, None)
            self._known.pop(slug, None)
        return found

    def cached_tenant(self, slug: str) -> ResolvedTenant | None:
        """The tenant `slug` from the cache when resolved less than `cache_seconds` ago (no
        I/O), else None."""
        hit = self._tenants.get(slug)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def known_tenant(self, slug: str) -> ResolvedTenant | None:
        """The tenant `slug` as last resolved (secrets included), however long ago; None when
        this process never resolved it. Only for when the database cannot be asked."""
        return self._known.get(slug)

    async def assessment(self, tenant_id: uuid.UUID, form_id: str) -> AssessmentSpec | None:
        """The assessment of a Typeform form id with its questions, None when unknown."""
        key = (tenant_id, form_id)
        hit = self._forms.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        try:
            async with self.pool.connection() as conn, atenant(conn, tenant_id):
                rows = await (await conn.execute(QUESTIONS, (form_id,))).fetchall()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        spec = assessment_from_rows(form_id, rows)
        if spec is None:
            return None
        self._forms[key] = (time.monotonic() + self.cache_seconds, spec)
        return spec

    async def write(self, tenant: ResolvedTenant, assessment: AssessmentSpec,
                    payload: TypeformWebhook, mapped: MappedResponse, sha: str) -> WriteResult:
        """Store one delivery (response upsert, answers, delivery log) in one transaction.

        Deliveries handed in while a write is in flight are written together (`_write_group`):
        one round trip and one commit for the group. Raises `DatabaseUnavailable` or
        `StoreRejected`; either concerns this delivery alone.
        """
        params = write_params(tenant, assessment, payload, mapped, sha)
        result = await self._writes.submit(params)
        if result.outcome == "stale":
            return await self._stale(params, result)
        return result

    async def _stale(self, params: dict[str, Any], result: WriteResult) -> WriteResult:
        """A stale delivery as the revision its body was stored at, when it was stored earlier
        (`WriteResult.stored_earlier`): a retry after its event's publish failed must publish
        that event (same revision, same event id) even though a later revision superseded it.
        Otherwise ``result`` itself (a late body never stored: nothing to publish)."""
        try:
            async with self.pool.connection() as conn, atenant(conn, params["tenant_id"]):
                row = await (await conn.execute(
                    _EARLIER, {**params, "response_id": result.response_id})).fetchone()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        assert row is not None, "the query always returns one row"
        revision, user_id, run_id = row
        if revision is None:
            return result
        return WriteResult(result.response_id, revision, "stale", user_id, run_id,
                           stored_earlier=True)

    async def _write_group(self, group: list[dict[str, Any]]) -> list[Settled[WriteResult]]:
        """Write a group of deliveries as ONE transaction in one round trip; when the database
        refuses one of them (a constraint) or the transaction lost a deadlock, write each
        alone, so that only the refused one fails."""
        if len(group) > 1:
            try:
                return await self._write_together(group)
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError,
                    psycopg.errors.TransactionRollback):
                pass  # every delivery again, alone: the culprit gets its own error
            except DatabaseUnavailable as exc:
                return [exc] * len(group)
        return [await self._write_alone(params) for params in group]

    async def _write_together(self, group: list[dict[str, Any]], attempt: int = 1
                              ) -> list[Settled[WriteResult]]:
        try:
            async with self.pool.connection() as conn:
                cursors = []
                try:
                    async with atenants_pipeline(conn) as as_tenant:
                        for params in group:
                            await as_tenant(params["tenant_id"])
                            cursors.append(await conn.execute(_WRITE, params))
                except psycopg.Error:
                    await _discard(conn)
                    raise
                rows = [await cursor.fetchone() for cursor in cursors]
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError,
                psycopg.errors.TransactionRollback):
            raise
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        results: list[Settled[WriteResult]] = []
        for params, row in zip(group, rows, strict=True):
            assert row is not None, "the write statement always returns one row"
            if row[2] is not None:
                results.append(WriteResult(*row))
            elif attempt < _WRITE_ATTEMPTS:  # its row changed after the snapshot: again
                results.append(await self._write_alone(params, attempt + 1))
            else:
                results.append(DatabaseUnavailable(
                    f"response {params['token']!r} kept changing under {attempt} attempts to "
                    "write it (concurrent deliveries of the same token); retry"))
        return results

    async def _write_alone(self, params: dict[str, Any], attempt: int = 1
                           ) -> Settled[WriteResult]:
        """`_write_together` of one delivery, its errors as its outcome (a lost deadlock:
        unavailable, retried by the sender)."""
        try:
            return (await self._write_together([params], attempt))[0]
        except DatabaseUnavailable as exc:
            return exc
        except psycopg.errors.TransactionRollback as exc:
            return DatabaseUnavailable(str(exc))
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            return StoreRejected(exc.diag.message_primary or str(exc))
