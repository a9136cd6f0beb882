"""Validation of a Pub/Sub message: bytes + attributes -> `ResponseEvent`, or why not.

An invalid message can never succeed on a retry (the bytes do not change), so the consumer
dead-letters it at once with the reason; everything else is retried by Pub/Sub.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from pulse_local.events import RESPONSE_EVENT_SCHEMA_VERSION, ResponseEvent

#: Schema versions this consumer understands.
SUPPORTED_SCHEMA_VERSIONS = frozenset({str(RESPONSE_EVENT_SCHEMA_VERSION)})


@dataclass(frozen=True)
class Invalid:
    """Why a message is not a valid `ResponseEvent`."""

    reason: str  #: short code, the ``reason`` attribute of the dead letter
    detail: str  #: human-readable explanation (``reason_detail`` attribute)


def _pydantic_detail(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts[:5]) + (f" (+{len(parts) - 5} more)" if len(parts) > 5 else "")


def decode(data: bytes, attributes: Mapping[str, str]) -> ResponseEvent | Invalid:
    """Decode one message. Never raises for bad input: returns `Invalid` with the reason.

    The ``schema_version`` attribute is checked first (consumers refuse versions they do not
    know, see `pulse_local.events`); ``tenant_id``/``event_id`` attributes, when present, must
    match the body, since subscribers route and filter on them.
    """
    version = attributes.get("schema_version")
    if version is not None and version not in SUPPORTED_SCHEMA_VERSIONS:
        return Invalid("unsupported_schema_version",
                       f"schema_version {version!r} is not one of "
                       f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}: deploy a consumer that knows it")
    try:
        event = ResponseEvent.from_message(data)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return Invalid("not_json", f"body is not JSON: {_pydantic_detail(exc)}")
        body_version = _body_schema_version(data)
        if body_version is not None and body_version not in SUPPORTED_SCHEMA_VERSIONS:
            return Invalid("unsupported_schema_version",
                           f"body schema_version {body_version!r} is not one of "
                           f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}")
        return Invalid("schema_violation", _pydantic_detail(exc))
    for name in ("tenant_id", "event_id"):
        given = attributes.get(name)
        if given is not None and given != str(getattr(event, name)):
            return Invalid("attribute_mismatch",
                           f"attribute {name}={given!r} differs from the body's "
                           f"{getattr(event, name)}")
    return event


def _body_schema_version(data: bytes) -> str | None:
    """The ``schema_version`` of a JSON object body, as a string, if there is one."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if isinstance(body, dict) and "schema_version" in body:
        return str(body["schema_version"])
    return None
