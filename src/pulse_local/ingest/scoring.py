"""Map Typeform answers to an assessment's questions and score them (pure functions, no I/O).

Scored questions have a scale ``[scale_min, scale_max]``; a reverse-keyed question scores
``scale_min + scale_max - answer`` (on a 1-5 scale, 1 -> 5 and 5 -> 1), so that for every scored
question a higher score means the same direction. The response total is the weighted sum of
scores and ``max_score`` the weighted sum of the scale maxima of the answered scored questions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pulse_local.events import QuestionScore
from pulse_local.ingest.models import Answer, PayloadError, TypeformWebhook

#: Answer types Typeform sends for each of our question types.
COMPATIBLE: dict[str, frozenset[str]] = {
    "opinion_scale": frozenset({"number"}),
    "rating": frozenset({"number"}),
    "number": frozenset({"number"}),
    "yes_no": frozenset({"boolean"}),
    "multiple_choice": frozenset({"choice", "choices"}),
    "dropdown": frozenset({"choice", "text"}),
    "short_text": frozenset({"text"}),
    "long_text": frozenset({"text"}),
    "email": frozenset({"email"}),
}


@dataclass(frozen=True)
class QuestionSpec:
    """A question as the processor needs it."""

    id: uuid.UUID
    ref: str
    question_type: str
    required: bool = True
    scale_min: int | None = None
    scale_max: int | None = None
    reverse_keyed: bool = False
    weight: float = 1.0

    @property
    def scored(self) -> bool:
        return self.scale_min is not None and self.scale_max is not None


@dataclass(frozen=True)
class AssessmentSpec:
    """An assessment (Typeform form) with its questions keyed by ref."""

    id: uuid.UUID
    form_id: str
    questions: dict[str, QuestionSpec]


@dataclass(frozen=True)
class MappedAnswer:
    """One answer row, ready for the ``answers`` table."""

    question: QuestionSpec
    answer_type: str
    value_text: str | None
    value_number: float | None
    value_bool: bool | None
    value_json: Any
    raw_score: float | None
    score: float | None


@dataclass(frozen=True)
class MappedResponse:
    """All answers of a payload mapped and scored."""

    answers: tuple[MappedAnswer, ...]
    scores: tuple[QuestionScore, ...]
    total_score: float | None
    max_score: float | None
    is_complete: bool


def reverse_key(raw: float, scale_min: int, scale_max: int) -> float:
    """The reverse-keyed score of `raw` on ``[scale_min, scale_max]``."""
    return scale_min + scale_max - raw


def score_answer(raw: float, question: QuestionSpec) -> float:
    """Score of a numeric answer to a scored question (reverse keyed when the question is)."""
    if question.scale_min is None or question.scale_max is None:
        raise ValueError(f"question {question.ref!r} has no scale and cannot be scored")
    return reverse_key(raw, question.scale_min, question.scale_max) if question.reverse_keyed else raw


def _values(answer: Answer) -> tuple[str | None, float | None, bool | None, Any]:
    """(value_text, value_number, value_bool, value_json) of an answer."""
    match answer.type:
        case "number":
            return None, answer.number, None, None
        case "boolean":
            return None, None, answer.boolean, None
        case "choice":
            assert answer.choice is not None
            label = answer.choice.label if answer.choice.label is not None else answer.choice.other
            return label, None, None, answer.choice.model_dump(exclude_none=True)
        case "choices":
            assert answer.choices is not None
            return None, None, None, answer.choices.model_dump(exclude_none=True)
        case "payment":
            return None, None, None, answer.payment
        case _:
            return getattr(answer, answer.type), None, None, None


def map_answers(payload: TypeformWebhook, assessment: AssessmentSpec) -> MappedResponse:
    """Map every answer to its question by field ref and score it.

    Raises `PayloadError` (422) naming the answer's path when a ref is unknown or repeated, when
    the answer type does not fit the question, or when a score is outside the question's scale.
    """
    mapped: list[MappedAnswer] = []
    scores: list[QuestionScore] = []
    seen: set[str] = set()
    for i, answer in enumerate(payload.form_response.answers):
        where = f"form_response.answers.{i}"
        ref = answer.field.ref
        question = assessment.questions.get(ref)
        if question is None:
            raise PayloadError(
                422, f"{where}.field.ref: unknown question ref {ref!r} for form "
                f"{assessment.form_id!r}; add the question to the assessment first",
                [{"loc": f"{where}.field.ref", "msg": "unknown question ref"}],
            )
        if ref in seen:
            raise PayloadError(422, f"{where}.field.ref: question {ref!r} answered twice",
                               [{"loc": f"{where}.field.ref", "msg": "duplicate answer"}])
        seen.add(ref)
        if answer.type not in COMPATIBLE[question.question_type]:
            raise PayloadError(
                422, f"{where}.type: answer type {answer.type!r} does not fit question {ref!r} "
                f"({question.question_type})",
                [{"loc": f"{where}.type", "msg": "answer type does not fit the question"}],
            )
        text, number, boolean, as_json = _values(answer)
        raw = score = None
        if question.scored and number is not None:
            assert question.scale_min is not None and question.scale_max is not None
            if not question.scale_min <= number <= question.scale_max:
                raise PayloadError(
                    422, f"{where}.number: {number} is outside the scale "
                    f"[{question.scale_min}, {question.scale_max}] of question {ref!r}",
                    [{"loc": f"{where}.number", "msg": "outside the question's scale"}],
                )
            raw, score = float(number), float(score_answer(number, question))
            scores.append(QuestionScore(
                question_id=question.id, ref=ref, raw_score=raw, score=score,
                reverse_keyed=question.reverse_keyed, scale_min=question.scale_min,
                scale_max=question.scale_max, weight=question.weight,
            ))
        mapped.append(MappedAnswer(question, answer.type, text, number, boolean, as_json, raw, score))
    total = sum(s.score * s.weight for s in scores) if scores else None
    maximum = sum(s.scale_max * s.weight for s in scores) if scores else None
    complete = all(q.ref in seen for q in assessment.questions.values() if q.required)
    return MappedResponse(tuple(mapped), tuple(scores), total, maximum, complete)
