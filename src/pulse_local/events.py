"""Versioned events the pipeline publishes on Pub/Sub.

``ResponseEvent`` is published by the webhook processor on topic ``response-events`` for every
stored response revision (and re-published, with the same ``event_id``, when the same delivery
arrives again: consumers deduplicate by ``event_id``). Message attributes repeat
``schema_version``, ``tenant_id`` and ``event_id`` so subscribers can filter and route without
decoding the body.

Compatibility rule: adding an optional field keeps ``schema_version``; renaming, removing or
changing the meaning of a field bumps it (consumers read the attribute and refuse what they do
not know).
"""

from __future__ import annotations

import uuid
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

RESPONSE_EVENTS_TOPIC = "response-events"
RESPONSE_EVENT_SCHEMA_VERSION: Final = 1
#: Namespace of deterministic event ids: uuid5(namespace, f"{response_id}:{revision}").
EVENT_NAMESPACE = uuid.UUID("6f1c1d0e-5a8b-4c0e-9a52-7d1f3c2b9e41")


def response_event_id(response_id: uuid.UUID, revision: int) -> uuid.UUID:
    """The event id of one revision of one response: the same delivery always maps to it."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{response_id}:{revision}")


class QuestionScore(BaseModel):
    """The score of one scored question of a response."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question_id: uuid.UUID
    ref: str
    raw_score: float = Field(description="The answer as given on the question's scale.")
    score: float = Field(description="After reverse keying: scale_min + scale_max - raw.")
    reverse_keyed: bool
    scale_min: int
    scale_max: int
    weight: float = 1.0


class ResponseEvent(BaseModel):
    """One stored revision of a Typeform response, scored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = RESPONSE_EVENT_SCHEMA_VERSION
    event_id: uuid.UUID
    event_type: Literal["response.stored"] = "response.stored"
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    response_id: uuid.UUID
    revision: int = Field(ge=1)
    assessment_id: uuid.UUID
    form_id: str
    run_id: uuid.UUID | None
    typeform_token: str
    submitted_at: AwareDatetime
    is_complete: bool
    answer_count: int = Field(ge=0)
    scores: tuple[QuestionScore, ...]
    total_score: float | None = Field(description="Weighted sum of scores; None if no scores.")
    max_score: float | None = Field(description="Weighted sum of scale_max of scored answers.")

    def attributes(self) -> dict[str, str]:
        """Pub/Sub message attributes (strings only)."""
        return {
            "schema_version": str(self.schema_version),
            "tenant_id": str(self.tenant_id),
            "event_id": str(self.event_id),
            "event_type": self.event_type,
        }

    def to_message(self) -> bytes:
        """The message body: compact JSON, UTF-8."""
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_message(cls, data: bytes) -> ResponseEvent:
        """Decode a message body (raises pydantic.ValidationError on a foreign schema)."""
        return cls.model_validate_json(data)


__all__ = [
    "EVENT_NAMESPACE",
    "RESPONSE_EVENTS_TOPIC",
    "RESPONSE_EVENT_SCHEMA_VERSION",
    "QuestionScore",
    "ResponseEvent",
    "response_event_id",
]
