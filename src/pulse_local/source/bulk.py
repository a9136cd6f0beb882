"""Bulk load of a fixture set: what the processor does to each webhook, written set by set.

For fixture sets too big to post one by one (the 1M-response pipeline: the processor takes a
few hundred webhooks a second). Every delivery of a tenant goes, in file order, through the
steps of ``POST /webhooks/typeform/{tenant}`` after the signature check (the files are ours):
JSON and schema validation, form lookup, answer mapping and scoring, the
created / revised / duplicate / stale rule (`pulse_local.ingest.store.delivery_outcome`), the
raw archive (each record signed with the tenant's secret, so the archive replays like the
processor's) and one response event per accepted delivery. A tenant's writes are ONE
transaction as the application role under that tenant's context, so row-level security
applies to every row; rows go in with COPY into temporary tables and one ``insert ... select``
per table (PostgreSQL refuses COPY FROM into tables with row-level security).

Invalid deliveries are counted by reason and not written, as the processor answers them 4xx;
the caller decides whether that fails the load (`replay_fixtures` does).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pulse_local.backends import Backends, for_profile
from pulse_local.config import Settings, load_options
from pulse_local.events import RESPONSE_EVENTS_TOPIC
from pulse_local.ingest.models import PayloadError, TypeformWebhook, validate_body
from pulse_local.ingest.options import ProcessorOptions
from pulse_local.ingest.scoring import AssessmentSpec, MappedResponse, map_answers
from pulse_local.ingest.signature import sign
from pulse_local.ingest.store import (
    QUESTIONS,
    Outcome,
    WriteResult,
    answer_values,
    assessment_from_rows,
    delivery_outcome,
)
from pulse_local.source.replay import read_webhooks, webhook_file
from pulse_local.source.seed import FixtureError, load_json
from pulse_local.source.tenancy import ResolvedTenant, tenant

#: Response columns written by a load (the rest keep their defaults).
_RESPONSE_FIELDS = (
    "id", "tenant_id", "assessment_id", "run_id", "user_id", "typeform_token",
    "typeform_event_id", "landed_at", "submitted_at", "is_complete", "answer_count",
    "total_score", "max_score", "hidden", "payload_sha256", "revision")
_RESPONSE_COLUMNS = ", ".join(_RESPONSE_FIELDS)
_ANSWER_COLUMNS = ("tenant_id, response_id, question_id, answer_type, value_text, value_number, "
                   "value_bool, value_json, raw_score, score")
_DELIVERY_COLUMNS = "tenant_id, event_id, typeform_token, response_id, outcome, payload_sha256"

_TEMP_TABLES = f"""
create temp table bulk_responses on commit drop as
    select {_RESPONSE_COLUMNS}, true as existed from responses with no data;
create temp table bulk_answers on commit drop as
    select {_ANSWER_COLUMNS} from answers with no data;
create temp table bulk_deliveries on commit drop as
    select {_DELIVERY_COLUMNS} from webhook_deliveries with no data;
"""
_UPDATABLE = [c for c in _RESPONSE_FIELDS if c not in ("id", "tenant_id", "typeform_token")]
_MERGE = f"""
insert into responses ({_RESPONSE_COLUMNS})
select {_RESPONSE_COLUMNS} from bulk_responses
on conflict (tenant_id, typeform_token) do update set
    {", ".join(f"{c} = excluded.{c}" for c in _UPDATABLE)}, updated_at = now();
delete from answers where response_id in (select id from bulk_responses where existed);
insert into answers ({_ANSWER_COLUMNS}) select {_ANSWER_COLUMNS} from bulk_answers;
insert into webhook_deliveries ({_DELIVERY_COLUMNS})
select {_DELIVERY_COLUMNS} from bulk_deliveries;
"""


@dataclass
class BulkReport:
    """What a load did: deliveries by outcome, refusals by reason, rows and events written."""

    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    responses_written: int = 0
    answers_written: int = 0
    events_published: int = 0
    tenants: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        """Deliveries the processor would have answered 200."""
        return sum(self.outcomes.values())


@dataclass
class _Response:
    """A response's state during a load: what is stored (or will be) under its token."""

    id: uuid.UUID
    revision: int
    sha: str
    submitted_at: datetime
    user_id: uuid.UUID | None
    run_id: uuid.UUID | None
    existed: bool
    row: tuple[Any, ...] | None = None  # columns to write when the load changes it
    answers: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class _TenantData:
    """A tenant's reference data, read once per load."""

    forms: dict[str, AssessmentSpec | None]
    users: dict[str, uuid.UUID]
    runs: dict[uuid.UUID, list[tuple[datetime, datetime, uuid.UUID]]]  # sorted by opens_at
    responses: dict[str, _Response]


def _read_tenant(conn: psycopg.Connection) -> _TenantData:
    """Forms are read lazily (`_form`); users, runs and stored responses at once."""
    users: dict[str, uuid.UUID] = dict(
        conn.execute("select external_id, id from users").fetchall())
    runs: dict[uuid.UUID, list[tuple[datetime, datetime, uuid.UUID]]] = {}
    for assessment_id, opens_at, closes_at, run_id in conn.execute(
            "select assessment_id, opens_at, closes_at, id from assessment_runs "
            "order by opens_at, id"):
        runs.setdefault(assessment_id, []).append((opens_at, closes_at, run_id))
    responses = {
        token: _Response(rid, revision, sha, submitted_at, user_id, run_id, existed=True)
        for token, rid, revision, sha, submitted_at, user_id, run_id in conn.execute(
            "select typeform_token, id, revision, payload_sha256, submitted_at, user_id, run_id "
            "from responses")
    }
    return _TenantData({}, users, runs, responses)


def _form(conn: psycopg.Connection, data: _TenantData, form_id: str) -> AssessmentSpec | None:
    if form_id not in data.forms:
        data.forms[form_id] = assessment_from_rows(
            form_id, conn.execute(QUESTIONS, (form_id,)).fetchall())
    return data.forms[form_id]


def _run_at(runs: list[tuple[datetime, datetime, uuid.UUID]], at: datetime) -> uuid.UUID | None:
    """The run open at ``at`` that opened last (the processor's ``order by opens_at desc``);
    ``runs`` are sorted by opening time."""
    for opens_at, closes_at, run_id in reversed(runs):
        if opens_at <= at < closes_at:
            return run_id
    return None


def _decide(data: _TenantData, tenant_id: uuid.UUID, spec: AssessmentSpec,
            payload: TypeformWebhook, mapped: MappedResponse, sha: str) -> WriteResult:
    """Apply one valid delivery to the tenant's state, as the processor's transaction would."""
    fr = payload.form_response
    stored = data.responses.get(fr.token)
    outcome: Outcome = delivery_outcome(
        None if stored is None else (stored.sha, stored.submitted_at), sha, fr.submitted_at)
    if outcome in ("duplicate", "stale"):
        assert stored is not None
        return WriteResult(stored.id, stored.revision, outcome, stored.user_id, stored.run_id)
    hidden_user = fr.hidden.get("user_id")
    user_id = data.users.get(hidden_user) if hidden_user else None
    run_id = _run_at(data.runs.get(spec.id, []), fr.submitted_at)
    if stored is None:
        stored = data.responses[fr.token] = _Response(
            uuid.uuid4(), 1, sha, fr.submitted_at, user_id, run_id, existed=False)
    else:
        stored.revision += 1
        stored.sha, stored.submitted_at = sha, fr.submitted_at
        stored.user_id, stored.run_id = user_id, run_id
    stored.row = (stored.id, tenant_id, spec.id, run_id, user_id, fr.token, payload.event_id,
                  fr.landed_at, fr.submitted_at, mapped.is_complete, len(mapped.answers),
                  mapped.total_score, mapped.max_score, Jsonb(fr.hidden), sha, stored.revision,
                  stored.existed)
    stored.answers = [(tenant_id, stored.id, *values) for values in answer_values(mapped)]
    return WriteResult(stored.id, stored.revision, outcome, user_id, run_id)


def _load_tenant(conn: psycopg.Connection, backends: Backends, options: ProcessorOptions,
                 org: dict[str, Any], path: Path, report: BulkReport) -> None:
    from pulse_local.ingest.app import build_event

    tenant_id = uuid.UUID(org["id"])
    resolved = ResolvedTenant(tenant_id, org["slug"], (org["webhook_secret"],))
    with tenant(conn, tenant_id):
        if conn.execute("select 1 from organizations").fetchone() is None:
            raise FixtureError(f"tenant {org['slug']} ({tenant_id}) is not in the database: "
                               "seed the fixtures first (pulse-local fixtures seed DIR)")
        data = _read_tenant(conn)
        deliveries: list[tuple[Any, ...]] = []
        archive: list[Mapping[str, Any]] = []
        events: list[tuple[bytes, dict[str, str]]] = []
        received = datetime.now(UTC).isoformat()
        for body in read_webhooks(path):
            try:
                payload = validate_body(body)
                spec = _form(conn, data, payload.form_response.form_id)
                if spec is None:
                    report.rejected["unknown_form"] += 1
                    continue
                mapped = map_answers(payload, spec)
            except PayloadError as exc:
                report.rejected["malformed_json" if exc.status == 400 else "invalid_payload"] += 1
                continue
            sha = hashlib.sha256(body).hexdigest()
            archive.append({"received_at": received, "tenant": org["slug"],
                            "tenant_id": str(tenant_id), "verified": True,
                            "event_id": payload.event_id,
                            "signature": sign(org["webhook_secret"], body),
                            "body": body.decode("utf-8")})
            result = _decide(data, tenant_id, spec, payload, mapped, sha)
            report.outcomes[result.outcome] += 1
            deliveries.append((tenant_id, payload.event_id, payload.form_response.token,
                               result.response_id, result.outcome, sha))
            if result.outcome != "stale":
                event = build_event(resolved, spec, payload, mapped, result)
                events.append((event.to_message(), event.attributes()))
        changed = [r for r in data.responses.values() if r.row is not None]
        if archive:  # archived before the write, as the processor does
            backends.archive.append(options.archive_prefix, received[:10], archive)
        conn.execute(_TEMP_TABLES)
        cursor = conn.cursor()
        for table, rows in (("bulk_responses", (r.row for r in changed if r.row is not None)),
                            ("bulk_answers", (a for r in changed for a in r.answers)),
                            ("bulk_deliveries", deliveries)):
            with cursor.copy(f"copy {table} from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.execute(_MERGE)
    report.responses_written += len(changed)
    report.answers_written += sum(len(r.answers) for r in changed)
    # after the commit, as the processor publishes after its write
    report.events_published += len(backends.bus.publish_many(RESPONSE_EVENTS_TOPIC, events))
    report.tenants += 1


def bulk_load(settings: Settings, directory: Path, backends: Backends | None = None) -> BulkReport:
    """Load every webhook of a fixture set (reference data seeded before), tenant by tenant;
    returns the counts. Rerunning it changes nothing but the delivery log (duplicates, and
    older revisions as stale), like re-posting the webhooks. Raises `FixtureError` for a
    missing file or unseeded tenant."""
    directory = Path(directory)
    started = time.perf_counter()
    backends = backends or for_profile(settings)
    options = load_options(ProcessorOptions)
    report = BulkReport()
    orgs = load_json(directory, "organizations.json")
    paths = [webhook_file(directory, org["slug"]) for org in orgs]  # all there before writing
    with psycopg.connect(settings.app_dsn(), connect_timeout=10,
                         application_name="pulse-bulk-load") as conn:
        for org, path in zip(orgs, paths, strict=True):
            _load_tenant(conn, backends, options, org, path, report)
    report.seconds = time.perf_counter() - started
    return report


def describe(report: BulkReport) -> str:
    """One line for logs and the pipeline summary."""
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items()))
    rejected = json.dumps(dict(report.rejected)) if report.rejected else "none"
    return (f"{report.accepted} webhooks loaded in bulk ({outcomes}; rejected {rejected}), "
            f"{report.responses_written} responses, {report.answers_written} answers, "
            f"{report.events_published} events, {report.tenants} tenants in "
            f"{report.seconds:.1f} s")
