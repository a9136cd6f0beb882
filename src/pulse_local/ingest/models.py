"""Pydantic models of Typeform's ``form_response`` webhook payload (the parts we use).

Reference: https://www.typeform.com/developers/webhooks/example-payload/ . Unknown keys are
ignored (Typeform adds keys over time); the keys we rely on are validated strictly, so a broken
payload is refused with the path of the offending field.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

AnswerType = Literal[
    "text", "choice", "choices", "number", "boolean", "email", "url", "file_url", "date",
    "phone_number", "payment",
]
#: Which key holds the value of each answer type.
VALUE_KEY: dict[str, str] = {t: t for t in AnswerType.__args__}  # type: ignore[attr-defined]


#: The window of ``submitted_at`` the processor accepts: [2000-01-01, 2100-01-01) UTC. Inside
#: what every later stage can store and key (Bigtable's reversed keys hold 1970..2286, see
#: `pulse_local.streaming.keys`), and wide enough for any real survey: a submission outside it
#: is refused at intake (422) rather than stored in Postgres and dead-lettered downstream.
SUBMITTED_AT_MIN = datetime(2000, 1, 1, tzinfo=UTC)
SUBMITTED_AT_MAX = datetime(2100, 1, 1, tzinfo=UTC)
#: Deepest nesting accepted inside a free-form answer value (``payment``), which is stored as
#: jsonb: deeper documents are refused (422); bodies nested beyond Python's recursion limit
#: fail parsing (400).
MAX_VALUE_DEPTH = 16


def json_depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (scalars 0, ``[]`` 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
    return deepest


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class AnswerField(_Model):
    """The form field an answer belongs to; ``ref`` maps it to a question."""

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=64)
    ref: str = Field(
        min_length=1, max_length=255,
        description="Required: questions are matched by ref (set refs on the Typeform form).",
    )


class Choice(_Model):
    id: str | None = None
    ref: str | None = None
    label: str | None = None
    other: str | None = None

    @model_validator(mode="after")
    def _has_value(self) -> Choice:
        if self.label is None and self.other is None:
            raise ValueError("a choice needs a label or an other value")
        return self


class Choices(_Model):
    ids: list[str] | None = None
    refs: list[str] | None = None
    labels: list[str] = Field(default_factory=list, max_length=1000)
    other: str | None = None


class Answer(_Model):
    """One answer: ``type`` names the key that carries the value (``number``, ``text``, ...)."""

    type: AnswerType
    field: AnswerField
    text: str | None = None
    choice: Choice | None = None
    choices: Choices | None = None
    number: StrictInt | StrictFloat | None = None
    boolean: StrictBool | None = None
    email: str | None = None
    url: str | None = None
    file_url: str | None = None
    date: str | None = None
    phone_number: str | None = None
    payment: dict[str, Any] | None = None

    @field_validator("payment")
    @classmethod
    def _shallow(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and json_depth(value) > MAX_VALUE_DEPTH:
            raise ValueError(f"nested deeper than {MAX_VALUE_DEPTH} levels")
        return value

    @model_validator(mode="after")
    def _value_present(self) -> Answer:
        if getattr(self, VALUE_KEY[self.type]) is None:
            raise ValueError(f"an answer of type {self.type!r} needs a {self.type!r} value")
        return self


class DefinitionField(_Model):
    id: str
    type: str
    ref: str | None = None
    title: str | None = None


class Definition(_Model):
    id: str | None = None
    title: str | None = None
    fields: list[DefinitionField] = Field(default_factory=list, max_length=1000)


class FormResponse(_Model):
    form_id: str = Field(min_length=1, max_length=64)
    token: str = Field(min_length=1, max_length=128)
    landed_at: AwareDatetime | None = None
    submitted_at: AwareDatetime
    hidden: dict[str, str] = Field(default_factory=dict, max_length=100)
    definition: Definition | None = None
    answers: list[Answer] = Field(default_factory=list, max_length=1000)

    @field_validator("submitted_at")
    @classmethod
    def _keyable(cls, value: datetime) -> datetime:
        if not SUBMITTED_AT_MIN <= value < SUBMITTED_AT_MAX:
            raise ValueError(f"must be from {SUBMITTED_AT_MIN:%Y-%m-%d} to before "
                             f"{SUBMITTED_AT_MAX:%Y-%m-%d} (UTC), got {value.isoformat()}")
        return value


class TypeformWebhook(_Model):
    """The whole webhook body."""

    event_id: str = Field(min_length=1, max_length=128)
    event_type: Literal["form_response"]
    form_response: FormResponse


class PayloadError(ValueError):
    """A payload we refuse; `status` is the HTTP status, `errors` lists ``{loc, msg}``."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Decode a body as strict JSON (UTF-8, no NaN/Infinity); `PayloadError` 400 otherwise."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise PayloadError(400, f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(400, f"malformed JSON: {exc.msg} at line {exc.lineno} col {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise PayloadError(400, f"malformed JSON: {exc}"[:300]) from None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def find_nul(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) PostgreSQL cannot store, or None.

    PostgreSQL text and jsonb cannot hold U+0000, and UTF-8 cannot encode unpaired surrogates
    (``"\\ud800"`` in JSON), so such payloads are refused (422) rather than silently altered.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return where or "(body)"
        elif isinstance(item, dict):
            for key, sub in item.items():
                sub_path = f"{where}.{key}" if where else str(key)
                if _UNSTORABLE.search(key):
                    return sub_path
                stack.append((sub, sub_path))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}.{i}" if where else str(i)) for i, sub in enumerate(item))
    return None


#: The only ways a UTF-8 JSON body can hold U+0000 or a surrogate: ``\u0000`` and ``\uD8..``
#: to ``\uDF..`` escapes (raw NUL bytes are refused by the parser, raw surrogates by UTF-8).
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def validate_body(body: bytes) -> TypeformWebhook:
    """`parse_json` then `validate_payload`; the walk for NUL characters and surrogates is
    skipped when the body has no escape that could decode to one (`_UNSTORABLE_ESCAPE`)."""
    return validate_payload(parse_json(body),
                            may_hold_unstorable=_UNSTORABLE_ESCAPE.search(body) is not None)


def validate_payload(document: Any, *, may_hold_unstorable: bool = True) -> TypeformWebhook:
    """Validate a decoded JSON document; `PayloadError` 422 naming the field path otherwise."""
    if not isinstance(document, dict):
        raise PayloadError(422, f"the body must be a JSON object, got {type(document).__name__}",
                           [{"loc": "(body)", "msg": "expected an object"}])
    nul = find_nul(document) if may_hold_unstorable else None
    if nul is not None:
        raise PayloadError(
            422, f"{nul}: contains a NUL character (U+0000) or an unpaired surrogate, which the "
            "database cannot store; remove it",
            [{"loc": nul, "msg": "NUL character or unpaired surrogate not allowed"}],
        )
    try:
        return TypeformWebhook.model_validate(document)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]) or "(body)", "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PayloadError(422, f"{first['loc']}: {first['msg']}{more}", errors[:20]) from None
