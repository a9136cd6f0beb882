"""The real processor over HTTP against the real Postgres, raw bucket and Pub/Sub emulator."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_healthz(processor: str) -> None:
    import httpx

    assert httpx.get(f"{processor}/healthz").json() == {"status": "ok", "database": "ok",
                                                     "pubsub": "ok"}


def test_valid_webhook_is_stored_scored_and_archived(post: Any, make_webhook: Any, pg_admin: Any,
                                                    pulse_settings: Any) -> None:
    payload = make_webhook()
    response = post("tenant-0001", payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "created" and body["revision"] == 1
    row = pg_admin.execute(
        "select r.answer_count, r.total_score, r.max_score, r.is_complete, u.external_id "
        "from responses r left join users u on u.id = r.user_id where r.id = %s",
        (body["response_id"],)).fetchone()
    assert row[0] == len(payload["form_response"]["answers"])
    assert row[3] is True and row[4] == "u0001-00001"
    scores = pg_admin.execute(
        "select q.reverse_keyed, a.raw_score, a.score, q.scale_min, q.scale_max from answers a "
        "join questions q on q.id = a.question_id where a.response_id = %s and a.score is not null",
        (body["response_id"],)).fetchall()
    assert scores and any(r[0] for r in scores)
    for reverse, raw, score, lo, hi in scores:
        assert score == (lo + hi - raw if reverse else raw)
    assert float(row[1]) == float(sum(r[2] for r in scores))
    archived = list((pulse_settings.raw_bucket_dir / "typeform" / "webhooks").rglob("*.jsonl"))
    records = [json.loads(line) for p in archived for line in p.read_text().splitlines()]
    assert any(r.get("event_id") == payload["event_id"] and r["verified"] for r in records)


def test_event_is_published_with_attributes(post: Any, make_webhook: Any, pulse_settings: Any,
                                            pubsub_subscriber: Any) -> None:
    from pulse_local.events import ResponseEvent

    topic = f"projects/{pulse_settings.project}/topics/response-events"
    sub = f"projects/{pulse_settings.project}/subscriptions/test-{uuid.uuid4().hex[:8]}"
    pubsub_subscriber.create_subscription(name=sub, topic=topic)
    response = post("tenant-0001", make_webhook())
    assert response.status_code == 200
    wanted = response.json()["event_id"]
    found = None
    deadline = time.monotonic() + 60
    # Other tests publish to the same topic (the bulk load, thousands of events); take and ack
    # whatever else is there until the event shows up.
    while found is None and time.monotonic() < deadline:
        pulled = pubsub_subscriber.pull(subscription=sub, max_messages=1000, timeout=10)
        for m in pulled.received_messages:
            if m.message.attributes.get("event_id") == wanted:
                found = m.message
        if pulled.received_messages:
            pubsub_subscriber.acknowledge(subscription=sub, ack_ids=[
                m.ack_id for m in pulled.received_messages])
    assert found is not None, "event not published"
    event = ResponseEvent.from_message(found.data)
    assert found.attributes["schema_version"] == "1"
    assert found.attributes["tenant_id"] == str(event.tenant_id)
    assert str(event.response_id) == response.json()["response_id"]
    assert event.total_score == sum(s.score * s.weight for s in event.scores)


def test_redelivery_is_idempotent(post: Any, make_webhook: Any, row_counts: Any) -> None:
    payload = make_webhook()
    first = post("tenant-0001", payload)
    before = row_counts()
    second = post("tenant-0001", payload)
    after = row_counts()
    assert first.status_code == second.status_code == 200
    assert second.json()["outcome"] == "duplicate"
    assert second.json()["response_id"] == first.json()["response_id"]
    assert second.json()["event_id"] == first.json()["event_id"]
    assert after["responses"] == before["responses"] and after["answers"] == before["answers"]


def test_revision_updates_in_place_and_stale_is_ignored(post: Any, make_webhook: Any,
                                                        pg_admin: Any) -> None:
    token = uuid.uuid4().hex
    first = post("tenant-0001", make_webhook(token=token, value=1))
    revised = post("tenant-0001", make_webhook(token=token, value=4,
                                               submitted_at="2024-09-06T10:00:00Z"))
    stale = post("tenant-0001", make_webhook(token=token, value=2,
                                             submitted_at="2024-09-05T11:00:00Z"))
    assert [r.json()["outcome"] for r in (first, revised, stale)] == ["created", "revised", "stale"]
    assert revised.json()["revision"] == 2 and revised.json()["event_id"] != first.json()["event_id"]
    rows = pg_admin.execute("select revision, submitted_at::date::text from responses "
                            "where typeform_token = %s", (token,)).fetchall()
    assert rows == [(2, "2024-09-06")]
    # the answers are the revision's (old ones replaced, not added to), the log has all three
    answers = pg_admin.execute(
        "select a.value_number, a.value_bool, a.value_text from answers a join responses r "
        "on r.id = a.response_id where r.typeform_token = %s order by a.question_id",
        (token,)).fetchall()
    expected = pg_admin.execute(
        "select answer_count from responses where typeform_token = %s", (token,)).fetchone()[0]
    assert len(answers) == expected == len(make_webhook(token=token)["form_response"]["answers"])
    number_of = {a["field"]["ref"]: a.get("number") for a in
                 make_webhook(token=token, value=4)["form_response"]["answers"]}
    assert sorted(v[0] for v in answers if v[0] is not None) == sorted(
        n for n in number_of.values() if n is not None)
    log = pg_admin.execute("select outcome from webhook_deliveries where typeform_token = %s "
                           "order by id", (token,)).fetchall()
    assert [o for (o,) in log] == ["created", "revised", "stale"]


def test_a_revision_that_drops_and_adds_answers_leaves_exactly_its_own(
        post: Any, make_webhook: Any, pg_admin: Any) -> None:
    token = uuid.uuid4().hex
    full = make_webhook(token=token, value=1)
    refs = [a["field"]["ref"] for a in full["form_response"]["answers"]]

    def stored() -> dict[str, Any]:
        rows = pg_admin.execute(
            "select q.ref, a.value_number, a.value_text, a.value_bool from answers a "
            "join responses r on r.id = a.response_id join questions q on q.id = a.question_id "
            "where r.typeform_token = %s", (token,)).fetchall()
        return {ref: rest for ref, *rest in rows}

    assert post("tenant-0001", full).json()["outcome"] == "created"
    assert sorted(stored()) == sorted(refs)
    partial = make_webhook(token=token, value=2, submitted_at="2024-09-06T10:00:00Z")
    partial["form_response"]["answers"] = partial["form_response"]["answers"][1:]
    assert post("tenant-0001", partial).json()["outcome"] == "revised"
    after_drop = stored()
    assert sorted(after_drop) == sorted(refs[1:])  # the dropped question's answer is gone
    again = make_webhook(token=token, value=3, submitted_at="2024-09-07T10:00:00Z")
    assert post("tenant-0001", again).json()["outcome"] == "revised"
    final = stored()
    assert sorted(final) == sorted(refs)
    expected = {a["field"]["ref"]: a for a in again["form_response"]["answers"]}
    for ref, (number, text, boolean) in final.items():
        answer = expected[ref]
        if "number" in answer:
            assert number == answer["number"]
        if "text" in answer:
            assert text == answer["text"]
        if "boolean" in answer:
            assert boolean is answer["boolean"]
    assert pg_admin.execute("select answer_count, revision from responses "
                            "where typeform_token = %s", (token,)).fetchone() == (len(refs), 3)


def test_a_revision_rewrites_only_the_answers_it_changes(post: Any, make_webhook: Any,
                                                        pg_admin: Any) -> None:
    """Unchanged answers keep their row version (no needless CDC changes); a changed one is
    updated in place (same row id, the new value)."""
    token = uuid.uuid4().hex
    first = make_webhook(token=token, value=1)
    other = make_webhook(token=token, value=2)
    pairs = zip(first["form_response"]["answers"], other["form_response"]["answers"], strict=True)
    changed = next(i for i, (a, b) in enumerate(pairs) if a != b)
    ref = first["form_response"]["answers"][changed]["field"]["ref"]

    def versions() -> dict[str, tuple[Any, ...]]:
        rows = pg_admin.execute(
            "select q.ref, a.id, a.xmin::text, a.value_number, a.value_text, a.value_bool "
            "from answers a join responses r on r.id = a.response_id "
            "join questions q on q.id = a.question_id where r.typeform_token = %s",
            (token,)).fetchall()
        return {r[0]: tuple(r[1:]) for r in rows}

    assert post("tenant-0001", first).json()["outcome"] == "created"
    before = versions()
    revision = make_webhook(token=token, value=1, submitted_at="2024-09-06T10:00:00Z")
    revision["form_response"]["answers"][changed] = other["form_response"]["answers"][changed]
    assert post("tenant-0001", revision).json()["outcome"] == "revised"
    after = versions()
    assert sorted(after) == sorted(before)
    assert {k: v for k, v in after.items() if k != ref} == {
        k: v for k, v in before.items() if k != ref}
    assert after[ref][0] == before[ref][0]  # same row, updated
    assert after[ref][1] != before[ref][1] and after[ref][2:] != before[ref][2:]


def test_concurrent_first_deliveries_store_one_response(processor: str, make_webhook: Any,
                                                        tenants: dict[str, Any],
                                                        pg_admin: Any) -> None:
    """The same new token delivered 12 times at once (Typeform retrying while the first is in
    flight): one response, one set of answers, every delivery logged, one created."""
    from pulse_local.ingest.signature import HEADER, sign

    payload = make_webhook()
    token = payload["form_response"]["token"]
    raw = json.dumps(payload).encode()
    headers = {"content-type": "application/json",
               HEADER: sign(tenants["tenant-0001"]["webhook_secret"], raw)}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=processor, timeout=30) as client:
            return await asyncio.gather(*(client.post("/webhooks/typeform/tenant-0001",
                                                      content=raw, headers=headers)
                                          for _ in range(12)))

    answers = asyncio.run(burst())
    assert {r.status_code for r in answers} == {200}
    outcomes = sorted(r.json()["outcome"] for r in answers)
    assert outcomes == ["created"] + ["duplicate"] * 11
    assert len({r.json()["response_id"] for r in answers}) == 1
    assert len({r.json()["event_id"] for r in answers}) == 1
    counts = pg_admin.execute(
        "select (select count(*) from responses where typeform_token = %(t)s), "
        "(select count(*) from answers a join responses r on r.id = a.response_id "
        " where r.typeform_token = %(t)s), "
        "(select count(*) from webhook_deliveries where typeform_token = %(t)s)",
        {"t": token}).fetchone()
    assert counts == (1, len(payload["form_response"]["answers"]), 12)


def test_a_revision_racing_its_first_delivery_leaves_exactly_its_own_answers(
        processor: str, make_webhook: Any, tenants: dict[str, Any], pg_admin: Any) -> None:
    """A first delivery and a revision that drops an answer, posted at the same moment for 40
    tokens: whichever order they land in, each response ends with the answers of its newest
    revision and ``answer_count`` equal to the rows (a revision's statement must not miss
    answers committed by the first delivery after its snapshot was taken)."""
    from pulse_local.ingest.signature import HEADER, sign

    secret = tenants["tenant-0001"]["webhook_secret"]
    pairs = []
    for _ in range(40):
        token = uuid.uuid4().hex
        first = make_webhook(token=token, value=1)
        revision = make_webhook(token=token, value=2, submitted_at="2024-09-06T10:00:00Z")
        revision["form_response"]["answers"] = revision["form_response"]["answers"][1:]
        pairs.append((token, json.dumps(first).encode(), json.dumps(revision).encode()))

    async def post_pairs() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=processor, timeout=30) as client:
            async def deliver(body: bytes) -> httpx.Response:
                # as Typeform does: a 503 (e.g. Pub/Sub's publish deadline on a loaded machine)
                # is retried; the race under test is the first attempt of each pair
                for _ in range(5):
                    response = await client.post(
                        "/webhooks/typeform/tenant-0001", content=body,
                        headers={"content-type": "application/json", HEADER: sign(secret, body)})
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(1)
                return response
            return await asyncio.gather(*(deliver(body) for _, first, revision in pairs
                                          for body in (first, revision)))

    assert {r.status_code for r in asyncio.run(post_pairs())} == {200}
    for token, _, revision in pairs:
        stored = pg_admin.execute(
            "select r.answer_count, r.revision, array_agg(q.ref order by q.ref) from responses r "
            "join answers a on a.response_id = r.id join questions q on q.id = a.question_id "
            "where r.typeform_token = %s group by r.answer_count, r.revision", (token,)).fetchone()
        refs = sorted(a["field"]["ref"] for a in json.loads(revision)["form_response"]["answers"])
        # revision 2, or 1 when the revision landed first and the first delivery was stale
        assert stored is not None and stored[1] in (1, 2), token
        assert (stored[0], stored[2]) == (len(refs), refs), token


def test_a_response_without_answers_is_stored(post: Any, make_webhook: Any,
                                              pg_admin: Any) -> None:
    payload = make_webhook()
    payload["form_response"]["answers"] = []
    response = post("tenant-0001", payload)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "created"
    stored = pg_admin.execute(
        "select r.answer_count, r.is_complete, (select count(*) from answers a "
        "where a.response_id = r.id) from responses r where r.typeform_token = %s",
        (payload["form_response"]["token"],)).fetchone()
    assert stored == (0, False, 0)


def test_bad_or_missing_signature_is_401_and_nothing_stored(
        post: Any, make_webhook: Any, row_counts: Any) -> None:
    before = row_counts()
    assert post("tenant-0001", make_webhook(), signed=False).status_code == 401
    assert post("tenant-0001", make_webhook(), secret="x" * 40).status_code == 401
    wrong = post("tenant-0001", make_webhook(), headers={"Typeform-Signature": "sha256=AAAA"},
                 signed=False)
    assert wrong.status_code == 401
    # signed by the other tenant: the secret is per tenant
    assert post("tenant-0001", make_webhook(), secret=None, signed=True,
                headers={}).status_code == 200
    other = post("tenant-0002", make_webhook(slug="tenant-0001"), secret=None)
    assert other.status_code == 422  # tenant-0001's form is unknown to tenant-0002
    assert row_counts()["responses"] == before["responses"] + 1


def test_malformed_json_is_400(post: Any, row_counts: Any) -> None:
    before = row_counts()
    for raw in (b"{not json", b"", b"\xff\xfe", b'{"a": NaN}', b"[" * 100_000 + b"]" * 100_000):
        response = post("tenant-0001", raw)
        assert response.status_code == 400, (raw[:20], response.text)
        assert response.json()["error"] == "malformed_json"
    assert row_counts() == before


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda p: p.pop("event_id"), "event_id"),
    (lambda p: p["form_response"].pop("submitted_at"), "form_response.submitted_at"),
    (lambda p: p["form_response"].update(submitted_at="yesterday"), "form_response.submitted_at"),
    (lambda p: p["form_response"]["answers"][0]["field"].pop("ref"),
     "form_response.answers.0.field.ref"),
    (lambda p: p["form_response"]["answers"][1].update(number="five"),
     "form_response.answers.1.number"),
    (lambda p: p["form_response"]["answers"][2].pop("number"), "form_response.answers.2"),
    (lambda p: p["form_response"]["answers"][0].update(number=99), "form_response.answers.0.number"),
    (lambda p: p["form_response"]["answers"][0].update(type="boolean", boolean=True),
     "form_response.answers.0.type"),
    (lambda p: p["form_response"]["answers"][0]["field"].update(ref="nope"),
     "form_response.answers.0.field.ref"),
    (lambda p: p.update(event_type="form_deleted"), "event_type"),
])
def test_schema_break_is_422_naming_the_field(post: Any, make_webhook: Any, row_counts: Any,
                                              mutate: Any, path: str) -> None:
    payload = make_webhook()
    mutate(payload)
    before = row_counts()
    response = post("tenant-0001", payload)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(path), response.json()
    assert row_counts() == before


def test_unknown_tenant_is_401_like_a_bad_signature_and_unknown_form_is_422(
        post: Any, make_webhook: Any) -> None:
    response = post("tenant-9999", make_webhook(), secret="s" * 40)
    assert response.status_code == 401 and response.json()["error"] == "bad_signature"
    payload = make_webhook()
    payload["form_response"]["form_id"] = "NOSUCHFORM"
    response = post("tenant-0001", payload)
    assert response.status_code == 422 and response.json()["error"] == "unknown_form"
    assert "NOSUCHFORM" in response.json()["detail"]


def test_body_over_limit_is_413(post: Any, make_webhook: Any, row_counts: Any) -> None:
    before = row_counts()
    payload = make_webhook()
    payload["form_response"]["answers"][-1]["text"] = "x" * 10_000_000
    assert post("tenant-0001", payload).status_code == 413
    assert row_counts() == before


@pytest.mark.parametrize("text", [
    "'; drop table responses; --", "Robert'); DELETE FROM answers WHERE ('1'='1",
    "😀🎉👩‍👩‍👧 emoji", "مرحبا بالعالم RTL \u202e override", "line\nbreak\ttab \\ backslash",
    "%s %(x)s $1 {0}", "x" * 200_000,
], ids=["sql1", "sql2", "emoji", "rtl", "controls", "placeholders", "200k"])
def test_hostile_strings_are_stored_verbatim(post: Any, make_webhook: Any, pg_admin: Any,
                                             text: str) -> None:
    payload = make_webhook()
    payload["form_response"]["answers"][-1]["text"] = text
    payload["form_response"]["hidden"]["note"] = text[:1000]
    response = post("tenant-0001", payload)
    assert response.status_code == 200, response.text
    stored = pg_admin.execute(
        "select a.value_text, r.hidden->>'note' from answers a join responses r "
        "on r.id = a.response_id where r.id = %s and a.answer_type = 'text'",
        (response.json()["response_id"],)).fetchone()
    assert stored == (text, text[:1000])


@pytest.mark.parametrize("poison", ["nul\x00byte", "\ud800 lone surrogate"])
def test_unstorable_strings_are_refused_with_422(post: Any, make_webhook: Any, row_counts: Any,
                                                 poison: str) -> None:
    payload = make_webhook()
    payload["form_response"]["answers"][-1]["text"] = poison
    before = row_counts()
    raw = json.dumps(payload).encode()  # ASCII escapes: \u0000 / \ud800 in the JSON text
    response = post("tenant-0001", raw)
    assert response.status_code == 422, response.text
    assert "form_response.answers." in response.json()["detail"]
    assert row_counts() == before
