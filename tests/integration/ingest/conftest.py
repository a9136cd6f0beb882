"""Fixtures: the session stack migrated and seeded, and the real processor over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulse_local.config import Settings


@pytest.fixture(scope="session")
def source_fixtures(pulse_stack: Any, pulse_settings: Settings,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Schema migrated and a small fixture set (2 tenants) seeded; returns its directory."""
    from pulse_local.source.fixtures import generate
    from pulse_local.source.migrations import migrate
    from pulse_local.source.seed import seed_reference_data

    migrate(pulse_settings)
    out = tmp_path_factory.mktemp("fixtures")
    generate(2, 7, out)
    seed_reference_data(pulse_settings, out)
    return out


@pytest.fixture(scope="session")
def tenants(source_fixtures: Path) -> dict[str, dict[str, Any]]:
    """Fixture organizations by slug (id, webhook_secret, ...)."""
    orgs = json.loads((source_fixtures / "organizations.json").read_text())
    return {o["slug"]: o for o in orgs}


@pytest.fixture(scope="session")
def processor(source_fixtures: Path, pulse_settings: Settings,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of `python -m pulse_local.ingest` running against the session stack."""
    from pulse_local.ingest.testing import processor_process

    log = tmp_path_factory.mktemp("processor") / "processor.log"
    with processor_process({"PULSE_PROCESSOR_CACHE_SECONDS": "2"},
                           pulse_settings.processor_port, log) as url:
        yield url


@pytest.fixture(scope="session")
def forms(source_fixtures: Path, tenants: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Fixture assessments (with questions) by tenant slug."""
    slug_of = {o["id"]: slug for slug, o in tenants.items()}
    by_slug: dict[str, list[dict[str, Any]]] = {}
    for a in json.loads((source_fixtures / "assessments.json").read_text()):
        by_slug.setdefault(slug_of[a["tenant_id"]], []).append(a)
    return by_slug


def _answer(q: dict[str, Any], value: int) -> dict[str, Any]:
    field = {"id": q["field_id"], "ref": q["ref"], "type": q["question_type"]}
    match q["question_type"]:
        case "opinion_scale" | "rating":
            lo, hi = q["scale_min"], q["scale_max"]
            return {"type": "number", "number": lo + value % (hi - lo + 1), "field": field}
        case "yes_no":
            return {"type": "boolean", "boolean": bool(value % 2), "field": field}
        case "multiple_choice":
            return {"type": "choice", "choice": {"label": "Good"}, "field": field}
        case _:
            return {"type": "text", "text": f"comment {value}", "field": field}


@pytest.fixture(scope="session")
def make_webhook(forms: dict[str, list[dict[str, Any]]]) -> Any:
    """Build a valid Typeform payload (dict) for a tenant's first form."""
    import uuid

    def build(slug: str = "tenant-0001", token: str | None = None, value: int = 3,
              submitted_at: str = "2024-09-05T10:00:00Z", user: str | None = None,
              form: int = 0) -> dict[str, Any]:
        assessment = forms[slug][form]
        number = slug.split("-")[1]
        return {
            "event_id": uuid.uuid4().hex, "event_type": "form_response",
            "form_response": {
                "form_id": assessment["typeform_form_id"], "token": token or uuid.uuid4().hex,
                "landed_at": "2024-09-05T09:58:00Z", "submitted_at": submitted_at,
                "hidden": {"user_id": user or f"u{number}-00001"},
                "definition": {"id": assessment["typeform_form_id"], "title": assessment["title"],
                               "fields": [{"id": q["field_id"], "ref": q["ref"],
                                           "type": q["question_type"], "title": q["title"]}
                                          for q in assessment["questions"]]},
                "answers": [_answer(q, value + i) for i, q in enumerate(assessment["questions"])],
            },
        }

    return build


@pytest.fixture(scope="session")
def post(processor: str, tenants: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """POST a body (dict -> JSON, or raw bytes) to the processor, signed unless told not to."""
    import httpx

    from pulse_local.ingest.signature import HEADER, sign

    client = httpx.Client(base_url=processor, timeout=30)

    def send(slug: str, body: dict[str, Any] | bytes, *, signed: bool = True,
             secret: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        all_headers = {"content-type": "application/json", **(headers or {})}
        if signed:
            all_headers[HEADER] = sign(secret or tenants[slug]["webhook_secret"], raw)
        return client.post(f"/webhooks/typeform/{slug}", content=raw, headers=all_headers)

    yield send
    client.close()


@pytest.fixture()
def row_counts(pg_admin: Any) -> Any:
    """Callable returning row counts of the tables the processor writes (as the owner)."""

    def count() -> dict[str, int]:
        return {t: pg_admin.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("responses", "answers", "webhook_deliveries")}

    return count
