"""`pulse_local.source.bulk` against the real Postgres: the same rows as the processor over HTTP.

Two fresh databases on the session server get the same fixture set: one through the real
processor (one client, so deliveries arrive in file order), one through `bulk_load`. Every
column the processor decides must match; ids and timestamps of arrival may differ.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pulse_local.config import Settings
from pulse_local.source.bulk import bulk_load
from pulse_local.source.seed import FixtureError

pytestmark = pytest.mark.integration

_RESPONSES = """
select r.typeform_token, r.revision, r.typeform_event_id, r.landed_at, r.submitted_at,
       r.is_complete, r.answer_count, r.total_score, r.max_score, r.hidden, r.payload_sha256,
       a.typeform_form_id, u.external_id, ar.name
from responses r join assessments a on a.id = r.assessment_id
left join users u on u.id = r.user_id left join assessment_runs ar on ar.id = r.run_id
order by r.tenant_id, r.typeform_token
"""
_ANSWERS = """
select r.typeform_token, q.ref, x.answer_type, x.value_text, x.value_number, x.value_bool,
       x.value_json, x.raw_score, x.score
from answers x join responses r on r.id = x.response_id join questions q on q.id = x.question_id
order by r.typeform_token, q.ref
"""
_DELIVERIES = """
select d.event_id, d.typeform_token, d.outcome, d.payload_sha256, r.typeform_token
from webhook_deliveries d left join responses r on r.id = d.response_id
"""


def _fresh_database(settings: Settings, name: str) -> Settings:
    from pulse_local.source.migrations import migrate

    with psycopg.connect(settings.admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    # the session's explicit DSNs would point back at its own database
    db_settings = settings.model_copy(update={"db_name": name, "database_url": None,
                                              "admin_database_url": None})
    migrate(db_settings)
    return db_settings


def _drop_database(settings: Settings, name: str) -> None:
    with psycopg.connect(settings.admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))


def _snapshot(settings: Settings) -> dict[str, Any]:
    with psycopg.connect(settings.admin_dsn()) as conn:
        return {"responses": conn.execute(_RESPONSES).fetchall(),
                "answers": conn.execute(_ANSWERS).fetchall(),
                "deliveries": Counter(conn.execute(_DELIVERIES).fetchall())}


@pytest.fixture(scope="module")
def fixture_set(pulse_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tenant's fixtures (duplicates, revisions and partial responses included)."""
    from pulse_local.source.fixtures import generate

    out = tmp_path_factory.mktemp("bulk-fixtures")
    counts = generate(1, 23, out)
    assert counts["duplicates"] > 0 and counts["revisions"] > 0 and counts["partial"] > 0
    return out


@pytest.fixture()
def bulk_db(pulse_settings: Settings, fixture_set: Path) -> Iterator[Settings]:
    """A fresh database with the fixture set's reference data seeded."""
    from pulse_local.source.seed import seed_reference_data

    db = _fresh_database(pulse_settings, "pulse_bulk_test")
    seed_reference_data(db, fixture_set)
    yield db
    _drop_database(pulse_settings, "pulse_bulk_test")


def test_bulk_load_writes_what_the_processor_writes(
        pulse_settings: Settings, fixture_set: Path, bulk_db: Settings, tmp_path: Path) -> None:
    from pulse_local.ingest.testing import processor_process
    from pulse_local.source.replay import load_deliveries, replay_async
    from pulse_local.source.seed import seed_reference_data
    from pulse_local.stack.process import free_port

    http_db = _fresh_database(pulse_settings, "pulse_http_test")
    try:
        seed_reference_data(http_db, fixture_set)
        env = {"PULSE_DATABASE_URL": http_db.app_dsn(),
               "PULSE_ADMIN_DATABASE_URL": http_db.admin_dsn()}
        with processor_process(env, free_port(),
                               tmp_path / "processor.log") as url:
            result = asyncio.run(replay_async(url, load_deliveries(fixture_set), concurrency=1,
                                              progress=False))
        assert set(result.statuses) == {200}, result.statuses
        over_http = _snapshot(http_db)
    finally:
        _drop_database(pulse_settings, "pulse_http_test")

    report = bulk_load(bulk_db, fixture_set)
    in_bulk = _snapshot(bulk_db)

    assert report.accepted == result.statuses[200] and not report.rejected
    assert report.outcomes["revised"] > 0 and report.outcomes["duplicate"] > 0
    assert report.events_published == report.accepted - report.outcomes["stale"]
    assert len(in_bulk["responses"]) == len(over_http["responses"]) == report.responses_written
    assert in_bulk["responses"] == over_http["responses"]
    assert in_bulk["answers"] == over_http["answers"]
    assert in_bulk["deliveries"] == over_http["deliveries"]


def test_a_second_bulk_load_only_logs_duplicates(bulk_db: Settings, fixture_set: Path) -> None:
    first = bulk_load(bulk_db, fixture_set)
    before = _snapshot(bulk_db)
    again = bulk_load(bulk_db, fixture_set)
    after = _snapshot(bulk_db)

    # each delivery again: the stored payload is a duplicate, any other one is now stale
    final_sha = {row[0]: row[10] for row in before["responses"]}
    superseded = sum(n for (_, token, _, sha, _), n in before["deliveries"].items()
                     if sha != final_sha[token])
    assert first.outcomes["revised"] > 0 and superseded >= first.outcomes["revised"]
    assert again.outcomes == Counter({"duplicate": first.accepted - superseded,
                                      "stale": superseded})
    assert again.responses_written == 0 and again.answers_written == 0
    assert after["responses"] == before["responses"] and after["answers"] == before["answers"]
    assert sum(after["deliveries"].values()) == 2 * sum(before["deliveries"].values())


def test_bad_deliveries_are_refused_and_the_rest_is_loaded(
        bulk_db: Settings, fixture_set: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(fixture_set, damaged)
    path = next((damaged / "webhooks").glob("*.jsonl"))
    lines = path.read_bytes().splitlines()
    wrong_form = json.loads(lines[0])
    wrong_form["form_response"]["form_id"] = "no-such-form"
    wrong_form["form_response"]["token"] = "wrong-form-token"
    no_token = json.loads(lines[1])
    del no_token["form_response"]["token"]
    path.write_bytes(b"\n".join([b"{not json", json.dumps(wrong_form).encode(),
                                 json.dumps(no_token).encode(), *lines]) + b"\n")

    report = bulk_load(bulk_db, damaged)

    assert report.rejected == Counter({"malformed_json": 1, "unknown_form": 1,
                                       "invalid_payload": 1})
    assert report.accepted == len(lines)  # every good delivery, refused ones or not
    tokens = {row[0] for row in _snapshot(bulk_db)["responses"]}
    assert tokens == {json.loads(line)["form_response"]["token"] for line in lines}


def test_an_unseeded_tenant_is_a_named_error_and_writes_nothing(
        pulse_settings: Settings, fixture_set: Path) -> None:
    empty = _fresh_database(pulse_settings, "pulse_bulk_empty")
    try:
        with pytest.raises(FixtureError, match="seed the fixtures first"):
            bulk_load(empty, fixture_set)
        with psycopg.connect(empty.admin_dsn()) as conn:
            assert conn.execute("select count(*) from responses").fetchone() == (0,)
            assert conn.execute("select count(*) from webhook_deliveries").fetchone() == (0,)
    finally:
        _drop_database(pulse_settings, "pulse_bulk_empty")


def test_the_replay_flow_loads_in_bulk_and_refuses_an_unknown_mode(
        pulse_settings: Settings, fixture_set: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`replay_fixtures(mode="bulk")`, as `PULSE_REPLAY_MODE=bulk pulse-local run` calls it, on
    the real Prefect API: seeds, loads, and returns what the HTTP mode returns."""
    from pulse_local.orchestration import load_flow

    db = _fresh_database(pulse_settings, "pulse_bulk_flow")
    try:
        monkeypatch.setenv("PULSE_DATABASE_URL", db.app_dsn())
        monkeypatch.setenv("PULSE_ADMIN_DATABASE_URL", db.admin_dsn())
        replay = load_flow("replay_fixtures")
        outcome = replay(directory=str(fixture_set), mode="bulk")
        with psycopg.connect(db.admin_dsn()) as conn:
            stored = conn.execute("select count(*) from webhook_deliveries").fetchone()[0]
        assert outcome["accepted"] == stored > 1000
        assert outcome["seeded"]["organizations"] == 1
        with pytest.raises(ValueError, match="mode must be 'http' or 'bulk'"):
            replay(directory=str(fixture_set), mode="csv")
    finally:
        _drop_database(pulse_settings, "pulse_bulk_flow")
