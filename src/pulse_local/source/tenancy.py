"""The tenant of a transaction: the only place that sets ``pulse.tenant_id``.

Row-level security policies compare ``tenant_id`` with ``app_current_tenant()``, which reads the
transaction-local setting ``pulse.tenant_id``. Application code opens a transaction through
:func:`tenant` (sync) or :func:`atenant` (asyncio)::

    with psycopg.connect(settings.app_dsn()) as conn, tenant(conn, tenant_id):
        conn.execute("select count(*) from responses")   # only this tenant's rows

The setting is ``set_config(..., is_local => true)``: it ends with the transaction, so a pooled
connection never carries a tenant into the next request. Without a tenant every query sees
zero rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import psycopg

_SET_TENANT = "select set_config('pulse.tenant_id', %s, true)"
_SET_SLUG = "select set_config('pulse.lookup_slug', %s, true)"
_ORG_BY_SLUG = "select id from organizations where slug = %s"
_SECRETS = "select secret from webhook_secrets where active order by created_at desc"


def _tenant_text(tenant_id: uuid.UUID | str) -> str:
    """Canonical text of a tenant id; refuses anything that is not a UUID."""
    try:
        return str(tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(str(tenant_id)))
    except ValueError:
        raise ValueError(f"tenant id must be a UUID, got {tenant_id!r}") from None


@contextmanager
def tenant(conn: psycopg.Connection, tenant_id: uuid.UUID | str) -> Iterator[psycopg.Connection]:
    """Run the block in a transaction whose tenant is `tenant_id` (commits on success)."""
    text = _tenant_text(tenant_id)
    with conn.transaction():
        conn.execute(_SET_TENANT, (text,))
        yield conn


@asynccontextmanager
async def atenant(
    conn: psycopg.AsyncConnection, tenant_id: uuid.UUID | str
) -> AsyncIterator[psycopg.AsyncConnection]:
    """Asyncio flavour of :func:`tenant`."""
    text = _tenant_text(tenant_id)
    async with conn.transaction():
        await conn.execute(_SET_TENANT, (text,))
        yield conn


@asynccontextmanager
async def atenant_pipeline(
    conn: psycopg.AsyncConnection, tenant_id: uuid.UUID | str
) -> AsyncIterator[psycopg.AsyncConnection]:
    """Queue the block's statements behind the tenant setting; send them in ONE round trip.

    The connection must be in autocommit mode: then the setting and the statements up to the
    pipeline's Sync are one implicit transaction (PostgreSQL's extended protocol), so the
    setting applies to them and ends with them, and a failing statement rolls them all back.
    Results are read after the block (``await cursor.fetchone()``). Costs about half the
    client CPU of :func:`atenant` in a pipeline, which also sends BEGIN and COMMIT.
    """
    async with atenants_pipeline(conn) as as_tenant:
        await as_tenant(tenant_id)
        yield conn


@asynccontextmanager
async def atenants_pipeline(
    conn: psycopg.AsyncConnection,
) -> AsyncIterator[Callable[[uuid.UUID | str], Awaitable[None]]]:
    """Queue statements of several tenants in turn; send them in ONE round trip, as ONE
    implicit transaction (all or nothing): ``await as_tenant(t)`` queues the tenant setting
    for the statements queued after it, up to the next call.

    Same rules as :func:`atenant_pipeline` (autocommit connection; results read after the
    block). Statements queued before the first ``as_tenant`` see no rows.
    """
    if not conn.autocommit:
        raise ValueError("a tenant pipeline needs an autocommit connection (without it the "
                         "statements would join an open transaction); use atenant instead")

    async def as_tenant(tenant_id: uuid.UUID | str) -> None:
        await conn.execute(_SET_TENANT, (_tenant_text(tenant_id),))

    async with conn.pipeline():
        yield as_tenant


@dataclass(frozen=True)
class ResolvedTenant:
    """What the processor needs to know about the tenant named in a webhook URL."""

    id: uuid.UUID
    slug: str
    secrets: tuple[str, ...]


async def resolve_tenant(conn: psycopg.AsyncConnection, slug: str) -> ResolvedTenant | None:
    """Look a tenant up by slug and read its active webhook secrets (None when unknown).

    Uses the ``lookup_by_slug`` policy of ``organizations`` (one row, only when its slug is
    known), then reads the secrets under that tenant's context.
    """
    async with conn.transaction():
        await conn.execute(_SET_SLUG, (slug,))
        row = await (await conn.execute(_ORG_BY_SLUG, (slug,))).fetchone()
        if row is None:
            return None
        tenant_id: uuid.UUID = row[0]
        await conn.execute(_SET_SLUG, ("",))
        await conn.execute(_SET_TENANT, (str(tenant_id),))
        secrets = [r[0] for r in await (await conn.execute(_SECRETS)).fetchall()]
    return ResolvedTenant(id=tenant_id, slug=slug, secrets=tuple(secrets))
