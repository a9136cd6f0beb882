"""How the processor decides a delivery's tenant and signature (unit: the database is FAKED by
a small store that answers from a dict or raises `DatabaseUnavailable`; the same paths run
against real PostgreSQL in tests/integration/ingest/test_ingest_degraded.py and
test_ingest_hostile.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.ingest.app import Processor
from pulse_local.ingest.options import ProcessorOptions
from pulse_local.ingest.signature import sign
from pulse_local.ingest.store import DatabaseUnavailable, Store
from pulse_local.source.tenancy import ResolvedTenant

BODY = b'{"event_id": "e1"}'


class FakeStore(Store):
    """The real cache logic of `Store` over a dict instead of PostgreSQL (FAKE)."""

    def __init__(self, rows: dict[str, ResolvedTenant]) -> None:
        self.cache_seconds = 30.0
        self._tenants: dict[str, tuple[float, ResolvedTenant]] = {}
        self._known: dict[str, ResolvedTenant] = {}
        self.rows = rows
        self.down = False
        self.lookups = 0

    async def tenant(self, slug: str, *, fresh: bool = False) -> ResolvedTenant | None:
        if not fresh and (hit := self.cached_tenant(slug)) is not None:
            return hit
        self.lookups += 1
        if self.down:
            raise DatabaseUnavailable("connection refused")
        found = self.rows.get(slug)
        if found is not None:
            self._tenants[slug] = (time.monotonic() + self.cache_seconds, found)
            self._known[slug] = found
        else:
            self._tenants.pop(slug, None)
            self._known.pop(slug, None)
        return found


def _processor(store: FakeStore, tmp_path: Any) -> Processor:
    processor = Processor(Settings(state_dir=tmp_path), ProcessorOptions(), backends=None)
    processor.store = store
    return processor


def _tenant(*secrets: str) -> ResolvedTenant:
    return ResolvedTenant(uuid.UUID(int=1), "acme", tuple(secrets))


def test_a_cached_tenant_refusing_a_signature_is_asked_again(tmp_path: Any) -> None:
    store = FakeStore({"acme": _tenant("old-secret-0123456789")})
    processor = _processor(store, tmp_path)
    ok = sign("old-secret-0123456789", BODY)
    assert asyncio.run(processor._verified_tenant("acme", BODY, ok)) is not None
    assert store.lookups == 1
    assert asyncio.run(processor._verified_tenant("acme", BODY, ok)) is not None
    assert store.lookups == 1  # a verified signature is served from the cache
    # the secret rotated in the database: the cached one refuses, the fresh one verifies
    store.rows["acme"] = _tenant("new-secret-0123456789")
    new = sign("new-secret-0123456789", BODY)
    assert asyncio.run(processor._verified_tenant("acme", BODY, new)) is not None
    assert store.lookups == 2
    assert asyncio.run(processor._verified_tenant("acme", BODY, sign("wrong", BODY))) is None


def test_while_the_database_is_down_a_cached_slug_answers_as_an_unknown_one(
        tmp_path: Any) -> None:
    store = FakeStore({"acme": _tenant("secret-0123456789")})
    processor = _processor(store, tmp_path)
    ok = sign("secret-0123456789", BODY)
    assert asyncio.run(processor._verified_tenant("acme", BODY, ok)) is not None
    store.down = True
    # verified with the cached secrets: no database needed
    assert asyncio.run(processor._verified_tenant("acme", BODY, ok)) is not None
    for slug, header in (("acme", sign("wrong", BODY)), ("acme", None),
                         ("no-such-tenant", sign("wrong", BODY))):
        with pytest.raises(DatabaseUnavailable):
            asyncio.run(processor._verified_tenant(slug, BODY, header))


def test_degraded_answers_are_one_503_for_every_unverifiable_delivery(tmp_path: Any) -> None:
    store = FakeStore({"acme": _tenant("secret-0123456789")})
    processor = _processor(store, tmp_path)
    asyncio.run(store.tenant("acme"))  # resolved once: its secrets are kept
    answers = [asyncio.run(processor._degraded(slug, BODY, header)) for slug, header in (
        ("acme", sign("wrong", BODY)), ("acme", None), ("never-resolved", sign("x", BODY)))]
    assert {a.status_code for a in answers} == {503}
    assert len({(bytes(a.body), a.headers["retry-after"]) for a in answers}) == 1
