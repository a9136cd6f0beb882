"""``typeform-processor``: the FastAPI app that turns Typeform webhooks into rows and events.

``POST /webhooks/typeform/{tenant_slug}``, in this order (the first failing step answers):

====  =====================================================================================
415   a ``Content-Encoding`` other than identity (compressed bodies are never inflated)
413   body larger than ``max_body_bytes`` (Content-Length or actual bytes)
408   body not complete within ``body_timeout`` seconds (the connection is closed)
503   database down, and the body does not verify with secrets this process kept: a slug
      unknown or not resolved before, or a missing/wrong ``Typeform-Signature`` (secrets
      from the cache that refuse a signature are checked against the database again, so a
      cached slug reaches this too): the same answer for all, nothing stored or archived
401   unknown tenant slug, or missing/wrong ``Typeform-Signature``: the same answer for both,
      so a caller cannot learn which slugs exist (nothing stored, nothing archived)
400   not UTF-8 / malformed JSON (including nesting deeper than the parser's recursion limit)
202   database down while resolving a tenant resolved before (its secrets are kept): the
      signature verified and the body valid, it is archived under ``pending_prefix``;
      `pulse-local replay --pending` applies it once the database is back
422   JSON that breaks the schema (the field path is named), NUL characters, unknown form,
      unknown question ref, answer type or value that does not fit the question,
      ``submitted_at`` outside [2000-01-01, 2100-01-01) UTC, answer values nested too deep
202   database down after the signature verified (form lookup, write): the same
503   event not published within ``publish_timeout`` (stored; the retry publishes it)
200   stored (``created`` / ``revised``), or already stored (``duplicate``; the same event is
      re-published) or superseded by a newer revision (``stale``: the event of the revision
      that body was stored at is re-published, nothing when it never was stored)
====  =====================================================================================

Every accepted (signed and valid) delivery is archived before the database write.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import pulse_local.ingest.signature as signature  # noqa: PLR0402 (no package import: circle)
from pulse_local.backends import Backends, for_profile
from pulse_local.config import Settings, load_options
from pulse_local.events import RESPONSE_EVENTS_TOPIC, ResponseEvent, response_event_id
from pulse_local.ingest.grouping import Grouper, Outcome
from pulse_local.ingest.models import PayloadError, TypeformWebhook, validate_body
from pulse_local.ingest.options import ProcessorOptions
from pulse_local.ingest.scoring import AssessmentSpec, MappedResponse, map_answers
from pulse_local.ingest.store import DatabaseUnavailable, Store, StoreRejected, WriteResult
from pulse_local.runtime import settle_garbage_collector
from pulse_local.source.tenancy import ResolvedTenant

log = logging.getLogger("pulse_local.ingest")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


#: Archive appends (and, apart, event publishes) running at once. With one, a request waited
#: for the call in flight before its own; measured at 16 clients, three alternating pairs:
#: 1 -> 2 gave 295 -> 456, 398 -> 449 and 363 -> 403 webhooks/s (p95 105/61/81 -> 49/51/55 ms).
#: Appends to one file are serialized by the archive; events carry no ordering key.
SIDE_CALLS_IN_FLIGHT = 2


class TooLarge(Exception):
    """The body exceeds the limit."""


def _error(status: int, code: str, detail: str, errors: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    content: dict[str, Any] = {"error": code, "detail": detail}
    if errors:
        content["errors"] = errors
    return JSONResponse(content, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refusing (`TooLarge`) as soon as it is known to exceed `limit` bytes; a body
    not complete after `timeout` seconds raises `TimeoutError`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


#: A secret no tenant has: an unknown slug's body is checked against it, so that answer costs
#: what a wrong signature costs.
_NO_TENANT_SECRET = secrets.token_hex(32)


def _bad_signature(body: bytes, header: str | None, *, checked: bool = False) -> JSONResponse:
    """The one answer for an unknown tenant and a wrong signature (401): the same status, body
    and (an HMAC over the body either way) about the same work."""
    if not checked:
        signature.verify((_NO_TENANT_SECRET,), body, header)
    return _error(401, "bad_signature",
                  f"missing or invalid {signature.HEADER} header: sign the raw body with the "
                  "tenant's webhook secret (sha256=<base64 HMAC-SHA256>) and post it to the "
                  "tenant's URL")


def build_event(tenant: ResolvedTenant, assessment: AssessmentSpec, payload: TypeformWebhook,
                mapped: MappedResponse, result: WriteResult) -> ResponseEvent:
    """The event of one stored response revision (deterministic: same revision, same event)."""
    fr = payload.form_response
    return ResponseEvent(
        event_id=response_event_id(result.response_id, result.revision),
        tenant_id=tenant.id, user_id=result.user_id, response_id=result.response_id,
        revision=result.revision, assessment_id=assessment.id, form_id=fr.form_id,
        run_id=result.run_id, typeform_token=fr.token, submitted_at=fr.submitted_at,
        is_complete=mapped.is_complete, answer_count=len(mapped.answers), scores=mapped.scores,
        total_score=mapped.total_score, max_score=mapped.max_score,
    )


class Processor:
    """The request handling, independent of FastAPI wiring (one per app)."""

    def __init__(self, settings: Settings, options: ProcessorOptions, backends: Backends | None):
        self.settings = settings
        self.options = options
        self._backends = backends
        self.store = Store(
            settings.app_dsn(), min_size=options.pool_min_size, max_size=options.pool_max_size,
            timeout=options.pool_timeout, connect_timeout=options.connect_timeout,
            cache_seconds=options.cache_seconds,
        )
        #: Archive appends and event publishes of concurrent requests, one call per group.
        self.archiving: Grouper[tuple[str, str, dict[str, Any]], str] = Grouper(
            self._append, linger=options.archive_linger, in_flight=SIDE_CALLS_IN_FLIGHT)
        self.publishing: Grouper[tuple[bytes, dict[str, str]], str] = Grouper(
            self._publish, linger=options.publish_linger, in_flight=SIDE_CALLS_IN_FLIGHT)

    @property
    def backends(self) -> Backends:
        if self._backends is None:
            self._backends = for_profile(self.settings)
        return self._backends

    def _append(self, items: list[tuple[str, str, dict[str, Any]]]) -> list[Outcome[str]]:
        """Append archive records, one `RawArchive.append` per (prefix, day) in the group; a
        failed append fails only its own records."""
        by_place: dict[tuple[str, str], list[int]] = {}
        for index, (prefix, day, _) in enumerate(items):
            by_place.setdefault((prefix, day), []).append(index)
        outcomes: list[Outcome[str]] = [RuntimeError("not appended")] * len(items)
        for (prefix, day), indexes in by_place.items():
            try:
                uri: Outcome[str] = self.backends.archive.append(
                    prefix, day, [items[i][2] for i in indexes])
            except Exception as exc:  # noqa: BLE001 - disk full, GCS down: those requests 503
                uri = exc
            for i in indexes:
                outcomes[i] = uri
        return outcomes

    async def _publish(self, items: list[tuple[bytes, dict[str, str]]]) -> list[str]:
        """Publish a group of events in as few Publish calls as the service allows, on the
        event loop, each call bounded by the publish deadline (retries included)."""
        return await self.backends.bus.apublish_many(RESPONSE_EVENTS_TOPIC, items,
                                                     timeout=self.options.publish_timeout)

    async def _publish_event(self, event: ResponseEvent) -> str | None:
        """Publish one event within `ProcessorOptions.publish_timeout`; the cause of a
        failure (never empty), None once Pub/Sub confirmed it."""
        limit = self.options.publish_timeout
        try:
            await asyncio.wait_for(
                self.publishing.submit((event.to_message(), event.attributes())), timeout=limit)
        except TimeoutError:
            return f"Pub/Sub did not confirm the publish within {limit:g} s"
        except Exception as exc:  # noqa: BLE001 - any publish failure: 503, retried
            return f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        return None

    async def _archive(self, prefix: str, record: dict[str, Any]) -> JSONResponse | None:
        """Append to the raw archive; a 503 answer when the archive itself fails."""
        now = datetime.now(UTC)
        record = {"received_at": now.isoformat(), **record}
        try:
            await self.archiving.submit((prefix, now.date().isoformat(), record))
        except Exception as exc:  # noqa: BLE001 - disk full, GCS down...: 503, Typeform retries
            log.error("archiving to %s failed: %s", prefix, exc)
            return _error(503, "archive_unavailable", f"raw archive unavailable: {exc}"[:300],
                          headers={"Retry-After": str(self.options.retry_after_seconds)})
        return None

    async def _verified_tenant(self, slug: str, body: bytes,
                               header: str | None) -> ResolvedTenant | None:
        """The tenant of `slug` when the body's signature verifies with its secrets, None for
        an unknown slug or a wrong signature (an HMAC computed either way).

        Secrets from the cache that refuse the signature are not trusted with the answer: the
        database is asked again, so a rotated secret takes effect at once, and while the
        database is down a wrong signature raises `DatabaseUnavailable` exactly as an unknown
        or uncached slug does (otherwise 401 for a cached slug vs 503 for any other would tell
        a caller which slugs exist)."""
        cached = self.store.cached_tenant(slug)
        tenant = cached or await self.store.tenant(slug)
        if tenant is None:
            signature.verify((_NO_TENANT_SECRET,), body, header)  # the same work either way
            return None
        if signature.verify(tenant.secrets, body, header):
            return tenant
        if cached is None:
            return None
        tenant = await self.store.tenant(slug, fresh=True)
        return tenant if tenant is not None and signature.verify(tenant.secrets, body,
                                                                 header) else None

    def _unverifiable(self) -> JSONResponse:
        """The one answer while the database is down to anything that does not verify with
        secrets this process kept: an unknown or never-resolved slug, a wrong or missing
        signature (503: indistinguishable, nothing stored, nothing archived)."""
        return _error(503, "database_unavailable",
                      "database unavailable and the delivery cannot be verified without it: "
                      "nothing was stored, retry later",
                      headers={"Retry-After": str(self.options.retry_after_seconds)})

    async def _degraded(self, slug: str, body: bytes, header: str | None) -> JSONResponse:
        """The database is down: verify with the tenant's secrets as last resolved; archive a
        verified, valid body under ``pending_prefix`` (202, applied later by `pulse-local
        replay --pending`). Anything else gets the same 503, whether the slug is unknown, was
        never resolved by this process or the signature is wrong: nothing is kept, and the
        answer does not tell which slugs exist."""
        tenant = self.store.known_tenant(slug)
        if tenant is None:
            signature.verify((_NO_TENANT_SECRET,), body, header)  # the same work either way
            return self._unverifiable()
        if not signature.verify(tenant.secrets, body, header):
            return self._unverifiable()
        try:
            payload = validate_body(body)  # no database needed
        except PayloadError as exc:
            code = "malformed_json" if exc.status == 400 else "invalid_payload"
            return _error(exc.status, code, exc.message, exc.errors)
        return await self._pend(slug, tenant, payload.event_id, header, body)

    async def _pend(self, slug: str, tenant: ResolvedTenant, event_id: str, header: str | None,
                    body: bytes) -> JSONResponse:
        """Archive a verified, valid delivery the database could not take under
        ``pending_prefix``: 202, `pulse-local replay --pending` applies it (503 when the
        archive fails too)."""
        failed = await self._archive(self.options.pending_prefix, {
            "tenant": slug, "tenant_id": str(tenant.id), "verified": True,
            "event_id": event_id, "signature": header, **self._raw(body)})
        if failed is not None:
            return failed
        return JSONResponse({"outcome": "pending", "event_id": event_id,
                             "detail": "database unavailable: the verified delivery is "
                             "archived and applied by `pulse-local replay --pending`"},
                            status_code=202)

    @staticmethod
    def _raw(body: bytes) -> dict[str, str]:
        try:
            return {"body": body.decode("utf-8")}
        except UnicodeDecodeError:
            import base64

            return {"body_base64": base64.b64encode(body).decode("ascii")}

    async def handle(self, slug: str, request: Request) -> JSONResponse:
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return _error(415, "unsupported_encoding",
                          f"Content-Encoding {encoding[:40]!r} is not accepted: send the body "
                          "uncompressed (the signature is over the raw bytes)")
        try:
            body = await _read_body(request, self.options.max_body_bytes,
                                    self.options.body_timeout)
        except TooLarge:
            return _error(413, "payload_too_large",
                          f"body exceeds {self.options.max_body_bytes} bytes")
        except TimeoutError:
            return _error(408, "body_timeout", f"the body did not arrive within "
                          f"{self.options.body_timeout:g} s", headers={"Connection": "close"})
        header = request.headers.get(signature.HEADER)
        if not _SLUG.match(slug):
            return _bad_signature(body, header)
        try:
            tenant = await self._verified_tenant(slug, body, header)
        except DatabaseUnavailable as exc:
            log.warning("database unavailable resolving tenant %s: %s", slug, exc)
            return await self._degraded(slug, body, header)
        if tenant is None:
            return _bad_signature(body, header, checked=True)
        try:
            payload = validate_body(body)
            if (assessment := await self.store.assessment(tenant.id,
                                                          payload.form_response.form_id)) is None:
                return _error(422, "unknown_form",
                              f"form_response.form_id: unknown form "
                              f"{payload.form_response.form_id!r} for tenant {slug!r}; "
                              "create the assessment first")
            mapped = map_answers(payload, assessment)
        except PayloadError as exc:
            code = "malformed_json" if exc.status == 400 else "invalid_payload"
            return _error(exc.status, code, exc.message, exc.errors)
        except DatabaseUnavailable as exc:
            log.warning("database unavailable loading form: %s", exc)
            return await self._pend(slug, tenant, payload.event_id, header, body)
        failed = await self._archive(self.options.archive_prefix, {
            "tenant": slug, "tenant_id": str(tenant.id), "verified": True,
            "event_id": payload.event_id, "signature": header, **self._raw(body)})
        if failed is not None:
            return failed
        sha = hashlib.sha256(body).hexdigest()
        try:
            result = await self.store.write(tenant, assessment, payload, mapped, sha)
        except DatabaseUnavailable as exc:
            log.warning("database unavailable writing response: %s", exc)
            return await self._pend(slug, tenant, payload.event_id, header, body)
        except StoreRejected as exc:
            return _error(422, "rejected_by_database", str(exc))
        event_id = None
        # A stale body stored earlier publishes its own revision's event again: its first
        # publish may have failed (the consumer drops a repeat by event id).
        if result.outcome != "stale" or result.stored_earlier:
            event = build_event(tenant, assessment, payload, mapped, result)
            event_id = str(event.event_id)
            if (cause := await self._publish_event(event)) is not None:
                log.error("publishing %s failed: %s", event_id, cause)
                return _error(503, "publish_failed",
                              f"stored as response {result.response_id} but publishing the event "
                              f"failed ({cause}); a retry re-publishes the same event"[:500],
                              headers={"Retry-After": str(self.options.retry_after_seconds)})
        return JSONResponse({
            "response_id": str(result.response_id), "revision": result.revision,
            "outcome": result.outcome, "event_id": event_id,
        })


def create_app(settings: Settings, options: ProcessorOptions | None = None,
               backends: Backends | None = None) -> FastAPI:
    """The processor app. Backends default to `for_profile(settings)` (built on first use)."""
    processor = Processor(settings, options or load_options(ProcessorOptions), backends)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await processor.store.open()
        settle_garbage_collector()
        try:
            yield
        finally:
            await processor.store.close()
            if processor._backends is not None:
                await processor._backends.bus.aclose()

    app = FastAPI(title="typeform-processor", lifespan=lifespan, openapi_url=None)
    app.state.processor = processor

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Healthy only when both dependencies answer: the database (a query) and Pub/Sub
        (GetTopic of the events topic), each within its deadline; 503 names the one down."""
        retry = {"Retry-After": str(processor.options.retry_after_seconds)}
        try:
            await processor.store.ping()
        except DatabaseUnavailable as exc:
            return _error(503, "database_unavailable", f"database check failed: {exc}"[:300],
                          headers=retry)
        from google.api_core.exceptions import PermissionDenied

        limit = min(processor.options.publish_timeout, 2.0)
        try:
            await asyncio.wait_for(processor.backends.bus.acheck(RESPONSE_EVENTS_TOPIC, limit),
                                   timeout=limit + 0.5)
        except PermissionDenied:
            # Pub/Sub answered: on GCP a publisher-only account may not read the topic
            return JSONResponse({"status": "ok", "database": "ok", "pubsub": "ok"})
        except Exception as exc:  # noqa: BLE001 - any failure of the check: Pub/Sub is down
            cause = (f"no answer within {limit:g} s" if isinstance(exc, TimeoutError)
                     else f"{type(exc).__name__}: {exc}")
            return _error(503, "pubsub_unavailable", f"Pub/Sub check failed: {cause}"[:300],
                          headers=retry)
        return JSONResponse({"status": "ok", "database": "ok", "pubsub": "ok"})

    async def typeform_webhook(request: Request) -> JSONResponse:
        return await processor.handle(request.path_params["tenant_slug"], request)

    # A plain Starlette route: the handler reads the raw body itself (the signature is over
    # the bytes), so FastAPI's parameter resolution would only add CPU to every webhook.
    app.add_route("/webhooks/typeform/{tenant_slug}", typeform_webhook, methods=["POST"])

    return app
