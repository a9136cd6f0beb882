"""Unit tests (no sockets): signature, payload models, scoring, events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import pytest

from pulse_local.events import ResponseEvent, response_event_id
from pulse_local.ingest.models import PayloadError, parse_json, validate_body, validate_payload
from pulse_local.ingest.scoring import AssessmentSpec, QuestionSpec, map_answers, reverse_key
from pulse_local.ingest.signature import HEADER, sign, verify, webhook_headers


def test_signature_matches_typeform_recipe() -> None:
    body = b'{"event_id":"x"}'
    expected = "sha256=" + base64.b64encode(
        hmac.new(b"secret-secret-123", body, hashlib.sha256).digest()).decode()
    assert sign("secret-secret-123", body) == expected
    assert verify(["other", "secret-secret-123"], body, expected)  # rotation: any active secret
    assert not verify(["secret-secret-123"], body + b" ", expected)
    assert not verify(["secret-secret-123"], body, None)
    assert not verify(["secret-secret-123"], body, expected.replace("sha256=", "sha1="))
    assert not verify([], body, expected)
    headers = webhook_headers("secret-secret-123", body)
    assert headers == {HEADER: expected, "content-type": "application/json"}


def _payload(**answer: Any) -> dict[str, Any]:
    return {"event_id": "e1", "event_type": "form_response", "form_response": {
        "form_id": "F1", "token": "t1", "submitted_at": "2024-09-02T10:00:00Z",
        "answers": [{"field": {"id": "f", "ref": "q1", "type": "opinion_scale"}, **answer}]}}


def test_valid_payload_parses() -> None:
    model = validate_payload(_payload(type="number", number=4))
    assert model.form_response.answers[0].number == 4


@pytest.mark.parametrize(("answer", "path"), [
    ({"type": "number"}, "form_response.answers.0"),
    ({"type": "number", "number": "4"}, "form_response.answers.0.number"),
    ({"type": "number", "number": True}, "form_response.answers.0.number"),
    ({"type": "telepathy", "number": 1}, "form_response.answers.0.type"),
])
def test_schema_errors_name_the_path(answer: dict[str, Any], path: str) -> None:
    with pytest.raises(PayloadError) as err:
        validate_payload(_payload(**answer))
    assert err.value.status == 422 and err.value.message.startswith(path)


def test_naive_timestamp_and_nul_are_refused() -> None:
    doc = _payload(type="number", number=1)
    doc["form_response"]["submitted_at"] = "2024-09-02T10:00:00"
    with pytest.raises(PayloadError, match="form_response.submitted_at"):
        validate_payload(doc)
    doc = _payload(type="text", text="a\x00b")
    with pytest.raises(PayloadError, match=r"form_response.answers.0.text: contains a NUL"):
        validate_payload(doc)


@pytest.mark.parametrize(("text", "refused"), [
    ("a\x00b", True), (chr(0xD800), True), (chr(0xDFFF), True), ("caf\u00e9 \U0001f600", False),
    ("\\u0000 is the escape", False), ("plain", False),
])
def test_bodies_are_checked_for_nul_and_surrogates_however_encoded(text: str,
                                                                   refused: bool) -> None:
    """`validate_body` skips the walk only for bodies without an escape that could decode to
    U+0000 or a surrogate: the answer is the same as walking every string (ASCII-escaped JSON,
    raw UTF-8, and keys as well as values)."""
    for ensure_ascii in (True, False):
        for doc in (_payload(type="text", text=text),
                    {**_payload(type="text", text="x"), text: 1}):
            try:
                body = json.dumps(doc, ensure_ascii=ensure_ascii).encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate has no UTF-8: only its escape exists
                continue
            if refused:
                with pytest.raises(PayloadError, match="NUL character"):
                    validate_body(body)
            else:
                assert validate_body(body).form_response.token == "t1"


@pytest.mark.parametrize("raw", [b"{", b"\xff", b"[NaN]", b'{"a": Infinity}', b"[" * 50000])
def test_parse_json_refuses_with_400(raw: bytes) -> None:
    with pytest.raises(PayloadError) as err:
        parse_json(raw)
    assert err.value.status == 400


def test_reverse_key() -> None:
    assert [reverse_key(v, 1, 5) for v in range(1, 6)] == [5, 4, 3, 2, 1]
    assert reverse_key(0, 0, 10) == 10 and reverse_key(7, 0, 10) == 3


def _assessment() -> AssessmentSpec:
    return AssessmentSpec(uuid.uuid4(), "F1", {
        "q1": QuestionSpec(uuid.uuid4(), "q1", "opinion_scale", True, 1, 5, False),
        "q2": QuestionSpec(uuid.uuid4(), "q2", "opinion_scale", True, 1, 5, True, 2.0),
        "q3": QuestionSpec(uuid.uuid4(), "q3", "long_text", False),
    })


def _answers(*items: tuple[str, dict[str, Any]]) -> Any:
    doc = _payload(type="number", number=1)
    doc["form_response"]["answers"] = [
        {"field": {"id": ref, "ref": ref, "type": "x"}, **value} for ref, value in items]
    return validate_payload(doc)


def test_scoring_weights_and_reverse_keys() -> None:
    mapped = map_answers(_answers(("q1", {"type": "number", "number": 4}),
                                  ("q2", {"type": "number", "number": 2})), _assessment())
    assert [(s.raw_score, s.score) for s in mapped.scores] == [(4.0, 4.0), (2.0, 4.0)]
    assert mapped.total_score == 4 + 2 * 4 and mapped.max_score == 5 + 2 * 5
    assert mapped.is_complete  # q3 is optional


def test_incomplete_and_mapping_errors() -> None:
    assert not map_answers(_answers(("q1", {"type": "number", "number": 4})),
                           _assessment()).is_complete
    for items, message in [
        ((("zz", {"type": "number", "number": 1}),), "unknown question ref"),
        ((("q1", {"type": "number", "number": 1}), ("q1", {"type": "number", "number": 2})),
         "answered twice"),
        ((("q1", {"type": "text", "text": "hi"}),), "does not fit"),
        ((("q2", {"type": "number", "number": 6}),), "outside the scale"),
    ]:
        with pytest.raises(PayloadError, match=message):
            map_answers(_answers(*items), _assessment())


def test_event_roundtrip_and_deterministic_id() -> None:
    rid = uuid.uuid4()
    assert response_event_id(rid, 1) == response_event_id(rid, 1) != response_event_id(rid, 2)
    event = ResponseEvent(
        event_id=response_event_id(rid, 1), tenant_id=uuid.uuid4(), user_id=None,
        response_id=rid, revision=1, assessment_id=uuid.uuid4(), form_id="F1", run_id=None,
        typeform_token="t", submitted_at="2024-09-02T10:00:00Z", is_complete=True,
        answer_count=0, scores=(), total_score=None, max_score=None)
    assert ResponseEvent.from_message(event.to_message()) == event
    assert event.attributes()["schema_version"] == "1"
    assert json.loads(event.to_message())["schema_version"] == 1


def test_the_write_statement_fits_psycopgs_statement_cache() -> None:
    """Longer statements are re-parsed by psycopg on every call (measured: ~10 % of the
    processor's CPU per webhook); 4,096 is psycopg's MAX_CACHED_STATEMENT_LENGTH."""
    from psycopg import _queries

    from pulse_local.ingest.store import _WRITE

    assert len(_WRITE) <= getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 4096)


def test_answers_document_keeps_numbers_exact_and_leaves_nulls_out() -> None:
    """Unit test on hand-built mapped answers (no database)."""
    import json
    import uuid

    from pulse_local.ingest.scoring import MappedAnswer, MappedResponse, QuestionSpec
    from pulse_local.ingest.store import answers_document

    question = QuestionSpec(uuid.uuid4(), "q1", "opinion_scale", True, 1, 5, True, 1.0)
    answer = MappedAnswer(question, "number", None, 0.1, None, None, 4.0, 2.0)
    mapped = MappedResponse((answer,), (), 2.0, 5.0, True)
    assert json.loads(answers_document(mapped)) == [
        {"question_id": str(question.id), "answer_type": "number", "value_number": "0.1",
         "raw_score": "4.0", "score": "2.0"}]
