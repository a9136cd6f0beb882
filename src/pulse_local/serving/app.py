"""The serving API (FastAPI): tenant-scoped reads of the Bigtable event store.

Default deny: every ``/v1`` route needs ``Authorization: Bearer <token>`` (see
`pulse_local.serving.auth`). No token, or one that does not verify or has expired: 401. A token
of another tenant than the path's: 403. Both carry the reason and no data. ``/healthz`` is
open (it returns no tenant data); ``/docs`` and ``/openapi.json`` exist only where the profile
allows (`pulse_local.backends.serving_security`).

The tenant is the first path segment after ``/v1/tenants/`` (a UUID) and the key prefix of
every read. When a gateway forwards the caller's tenant in ``X-Tenant-Id``, it must match the
path, otherwise the request is refused (403).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from pulse_local.config import Settings
from pulse_local.serving import queries
from pulse_local.serving.auth import Principal, TokenRefused, TokenVerifier
from pulse_local.serving.models import Aggregates, Health, LiveCounters, RecentEvents
from pulse_local.streaming.keys import Dimension, Granularity

if TYPE_CHECKING:
    from pulse_local.backends import ServingSecurity

TenantId = Annotated[uuid.UUID, Path(description="The tenant: prefix of every key read.")]


def _tenant(tenant_id: TenantId,
            x_tenant_id: Annotated[str | None, Header()] = None) -> uuid.UUID:
    """The path's tenant, refused when the gateway's ``X-Tenant-Id`` names another one."""
    if x_tenant_id is not None and x_tenant_id.strip().lower() != str(tenant_id):
        raise HTTPException(403, f"X-Tenant-Id {x_tenant_id!r} may not read tenant {tenant_id}")
    return tenant_id


Tenant = Annotated[uuid.UUID, Depends(_tenant)]


def _store(request: Request) -> queries.ServingStore:
    return request.app.state.store


Store = Annotated[queries.ServingStore, Depends(_store)]

_bearer = HTTPBearer(auto_error=False, description="`pulse-local token --tenant SLUG` locally; "
                     "a Google ID token on gcp.")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={
        "WWW-Authenticate": 'Bearer error="invalid_token"'})


async def _authorize(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None,
                                            Depends(_bearer)]) -> Principal:
    """The verified caller, allowed to read the path's tenant; 401 or 403 otherwise.

    Runs before the path is validated, so an unauthenticated caller learns nothing about it."""
    if credentials is None:
        raise _unauthorized("missing bearer token: send `Authorization: Bearer <token>` "
                            "(locally: `pulse-local token --tenant SLUG`)")
    verifier: TokenVerifier = request.app.state.verifier
    try:
        if verifier.blocking:
            principal = await run_in_threadpool(verifier.verify, credentials.credentials)
        else:
            principal = verifier.verify(credentials.credentials)
    except TokenRefused as exc:
        raise _unauthorized(str(exc)) from None
    raw = request.path_params.get("tenant_id", "")
    try:
        wanted = uuid.UUID(raw)
    except ValueError:
        if principal.operator:
            return principal  # the route answers 422 for the malformed id
        raise HTTPException(403, f"token for tenant {principal.tenant_id} may not read "
                                 f"tenant {raw!r}") from None
    if not principal.may_read(wanted):
        raise HTTPException(403, f"token for tenant {principal.tenant_id} may not read "
                                 f"tenant {wanted}")
    return principal


def create_app(settings: Settings, security: ServingSecurity | None = None) -> FastAPI:
    """The serving app; its Bigtable client lives as long as the app. ``security`` defaults
    to the profile's (`pulse_local.backends.serving_security`)."""
    from pulse_local.backends import serving_security

    security = security or serving_security(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = queries.ServingStore.for_settings(settings)
        try:
            yield
        finally:
            app.state.store.close()

    docs: dict[str, Any] = ({} if security.docs
                            else {"docs_url": None, "redoc_url": None, "openapi_url": None})
    app = FastAPI(title="Pulse serving", version="1", lifespan=lifespan, **docs)
    app.state.verifier = security.verifier
    api = APIRouter(dependencies=[Depends(_authorize)], responses={
        401: {"description": "No token, or one that does not verify or has expired."},
        403: {"description": "The token's tenant is not the path's."}})

    @app.get("/healthz", response_model=Health)
    async def healthz(store: Store) -> Health:
        try:
            await run_in_threadpool(queries.live_counters, store, uuid.UUID(int=0))
        except Exception as exc:  # noqa: BLE001 - the health answer carries the reason
            raise HTTPException(503, f"Bigtable unreachable: {exc}") from None
        return Health(status="ok", bigtable="ok")

    @api.get("/v1/tenants/{tenant_id}/users/{user_id}/events", response_model=RecentEvents)
    async def user_events(
        tenant: Tenant, store: Store,
        user_id: Annotated[str, Path(description="A user UUID, or `anonymous`.")],
        start: Annotated[datetime | None, Query(description="Inclusive, ISO 8601 with zone.")]
        = None,
        end: Annotated[datetime | None, Query(description="Exclusive.")] = None,
        limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 50,
    ) -> RecentEvents:
        user = _user(user_id)
        for name, value in (("start", start), ("end", end)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(422, f"{name} needs a time zone, e.g. 2024-05-01T00:00:00Z")
        try:
            return await run_in_threadpool(queries.recent_events, store, tenant, user,
                                           start=start, end=end, limit=limit)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @api.get("/v1/tenants/{tenant_id}/aggregates/{dimension}", response_model=Aggregates)
    async def dimension_aggregates(
        tenant: Tenant, store: Store, dimension: Dimension,
        start: Annotated[date, Query(description="First day (UTC), inclusive.")],
        end: Annotated[date, Query(description="Last day (UTC), inclusive.")],
        value: Annotated[str | None, Query(description="One value of the dimension.")] = None,
        granularity: Annotated[str, Query(pattern="^(day|hour)$")] = "day",
    ) -> Aggregates:
        gran = Granularity.DAY if granularity == "day" else Granularity.HOUR
        try:
            return await run_in_threadpool(queries.aggregates, store, tenant, dimension,
                                           start=start, end=end, value=value, granularity=gran)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @api.get("/v1/tenants/{tenant_id}/counters", response_model=LiveCounters)
    async def counters(tenant: Tenant, store: Store) -> LiveCounters:
        return await run_in_threadpool(queries.live_counters, store, tenant)

    app.include_router(api)
    return app


def _user(user_id: str) -> uuid.UUID | None:
    if user_id == "anonymous":
        return None
    try:
        return uuid.UUID(user_id)
    except ValueError:
        raise HTTPException(422, f"user_id {user_id!r} is not a UUID (or `anonymous`)") from None
