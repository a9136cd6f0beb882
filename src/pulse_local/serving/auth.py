"""Who may read what: bearer tokens of the serving API, issued and verified.

A token names exactly one tenant (claim ``tenant``, a UUID) or the operator role (claim
``role = "operator"``), never both. Two verifiers, chosen by profile in
`pulse_local.backends.serving_security`:

- ``local``: HS256 JWTs (PyJWT) signed with a random key the stack keeps in its state directory
  (``secrets/serving-token.key``, mode 0600, made on first need). ``pulse-local token`` issues
  them.
- ``gcp``: Google-signed ID tokens (Cloud Run invoker, IAP or API Gateway in front), verified
  with google-auth against ``PULSE_SERVING_AUDIENCE``; the tenant is read from the claim
  ``PULSE_SERVING_TENANT_CLAIM`` and operators are the e-mails of ``PULSE_SERVING_OPERATORS``.

Every refusal is a `TokenRefused` whose message says why (it becomes the body of a 401).
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pulse_local import secret_files
from pulse_local.config import Settings
from pulse_local.errors import ConfigError, GcpSettingMissing

#: Issuer and audience of locally issued tokens (a token of another stack fails its signature).
LOCAL_ISSUER = "pulse-local"
LOCAL_AUDIENCE = "pulse-serving"
#: The only algorithm a local token may use (never ``none``, never one the token picks).
LOCAL_ALGORITHM = "HS256"
#: Longest lifetime ``pulse-local token`` grants (a day): tokens are meant to be short-lived.
MAX_TTL_SECONDS = 86_400
OPERATOR = "operator"


class TokenRefused(Exception):
    """The bearer token cannot be accepted; the message says why (answered as 401)."""


@dataclass(frozen=True)
class Principal:
    """The caller a verified token names: one tenant, or the operator role (every tenant)."""

    subject: str
    tenant_id: uuid.UUID | None
    operator: bool = False

    def may_read(self, tenant_id: uuid.UUID) -> bool:
        """True when this caller may read ``tenant_id``'s rows."""
        return self.operator or self.tenant_id == tenant_id


class TokenVerifier(Protocol):
    """Capability: turn a bearer token into a `Principal` or raise `TokenRefused`."""

    #: True when `verify` may block on I/O (then the app calls it off the event loop).
    blocking: bool

    def verify(self, token: str) -> Principal:
        ...


def _principal(subject: str, tenant: object, operator: bool) -> Principal:
    """The principal of verified claims; refuses a token naming no tenant, or both."""
    if operator:
        if tenant not in (None, ""):
            raise TokenRefused("token names a tenant and the operator role: it must name one")
        return Principal(subject=subject, tenant_id=None, operator=True)
    if not isinstance(tenant, str) or not tenant:
        raise TokenRefused("token names no tenant (claim missing)")
    try:
        return Principal(subject=subject, tenant_id=uuid.UUID(tenant))
    except ValueError:
        raise TokenRefused(f"token's tenant {tenant!r} is not a UUID") from None


# Local tokens ----------------------------------------------------------------------------------

def signing_key_path(settings: Settings) -> Path:
    """Where the stack keeps the key that signs local tokens."""
    return settings.serving_token_key_file or settings.state_dir / "secrets" / "serving-token.key"


def signing_key(settings: Settings, *, create: bool = True) -> bytes:
    """The local signing key: 32 random bytes, hex in a 0600 file, made on first need.

    Made with ``O_EXCL`` so two processes starting at once agree on one key. A key file that
    other users may read is refused (anyone who reads it can mint tokens for every tenant).
    """
    if settings.profile == "gcp":
        raise GcpSettingMissing(
            "no local token signing key on PULSE_PROFILE=gcp: the serving API there verifies "
            "Google-signed ID tokens (set PULSE_SERVING_AUDIENCE); work offline with "
            "PULSE_PROFILE=local")
    path = signing_key_path(settings)
    if create:
        secret_files.create_once(path, lambda: secrets.token_hex(32))
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"no token signing key at {path}: start the stack (`pulse-local up`) "
                          "or issue a token (`pulse-local token --tenant SLUG`)") from None
    if mode & 0o077:
        raise ConfigError(f"token signing key {path} has mode {mode:o}, readable by others: "
                          f"run `chmod 600 {path}` (or delete it to make a new key)")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 32:
        raise ConfigError(f"token signing key {path} is not 64 hex digits: delete it, a new one "
                          "is made on next `pulse-local up`")
    return key


def issue_local_token(key: bytes, *, tenant_id: uuid.UUID | None, operator: bool = False,
                      ttl_seconds: int = 900, subject: str | None = None,
                      now: float | None = None) -> str:
    """A token for one tenant (or the operator role) that expires after ``ttl_seconds``."""
    import jwt

    if operator == (tenant_id is not None):
        raise ValueError("a token names exactly one of: a tenant, the operator role")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl must be 1..{MAX_TTL_SECONDS} seconds, got {ttl_seconds}")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "iat": issued, "nbf": issued,
        "exp": issued + ttl_seconds, "jti": uuid.uuid4().hex,
        "sub": subject or (OPERATOR if operator else f"tenant:{tenant_id}"),
    }
    if operator:
        claims["role"] = OPERATOR
    else:
        claims["tenant"] = str(tenant_id)
    return jwt.encode(claims, key, algorithm=LOCAL_ALGORITHM)


class LocalTokenVerifier:
    """Verifies tokens issued by `issue_local_token` with the stack's key (PyJWT)."""

    blocking = False

    def __init__(self, key: bytes) -> None:
        self._key = key

    def verify(self, token: str) -> Principal:
        import jwt

        try:
            claims = jwt.decode(token, self._key, algorithms=[LOCAL_ALGORITHM],
                                audience=LOCAL_AUDIENCE, issuer=LOCAL_ISSUER,
                                options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token expired: issue a new one with "
                               "`pulse-local token --tenant SLUG`") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("token signature does not verify (signed by another key?)") \
                from None
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(f"invalid token: {exc}") from None
        return _principal(str(claims["sub"]), claims.get("tenant"),
                          claims.get("role") == OPERATOR)


# Google ID tokens (gcp) ------------------------------------------------------------------------

class CachedCertificates:
    """A google-auth request callable that keeps each successful GET for the ``max-age`` its
    ``Cache-Control`` allows (Google's certificate endpoints send one; at most a day), so a
    verification does not fetch Google's certificates every time."""

    MAX_SECONDS = 86_400.0

    def __init__(self, request: Any, clock: Any = time.monotonic) -> None:
        self._request, self._clock = request, clock
        self._cache: dict[str, tuple[float, Any]] = {}

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        if method != "GET":
            return self._request(url, method=method, **kwargs)
        now = self._clock()
        cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            return cached[1]
        response = self._request(url, method=method, **kwargs)
        seconds = _max_age(getattr(response, "headers", {}) or {})
        if response.status == 200 and seconds > 0:
            self._cache[url] = (now + min(seconds, self.MAX_SECONDS), response)
        return response


def _max_age(headers: Any) -> float:
    """``max-age`` of a ``Cache-Control`` header in seconds (0 when absent or not a number)."""
    value = next((v for k, v in dict(headers).items() if k.lower() == "cache-control"), "")
    for part in str(value).split(","):
        name, _, number = part.strip().partition("=")
        if name.lower() == "max-age" and number.isdigit():
            return float(number)
    return 0.0


class GoogleIdTokenVerifier:
    """Verifies Google-signed ID tokens (google-auth) for ``audience``; the tenant is the
    claim ``tenant_claim``; operators are the verified e-mails in ``operators``.

    ``request`` and ``certs_url`` default to google-auth's HTTP transport and Google's public
    certificates (tests pass their own)."""

    blocking = True  # fetches Google's certificates over HTTP

    def __init__(self, audience: str, tenant_claim: str, operators: frozenset[str], *,
                 request: Any = None, certs_url: str | None = None) -> None:
        self.audience, self.tenant_claim, self.operators = audience, tenant_claim, operators
        self._request, self._certs_url = request, certs_url

    def _transport(self) -> Any:
        if self._request is None:
            import google.auth.transport.requests

            self._request = CachedCertificates(google.auth.transport.requests.Request())
        return self._request

    def verify(self, token: str) -> Principal:
        from google.auth import exceptions as gexc
        from google.oauth2 import id_token

        kwargs: dict[str, Any] = {"audience": self.audience}
        if self._certs_url is not None:
            kwargs["certs_url"] = self._certs_url
        try:
            claims = id_token.verify_token(token, self._transport(), **kwargs)
        except (ValueError, gexc.GoogleAuthError) as exc:
            # google-auth raises ValueError for bad signatures, audiences and expiry alike
            raise TokenRefused(f"invalid Google ID token: {exc}") from None
        if claims.get("iss") not in ("accounts.google.com", "https://accounts.google.com"):
            raise TokenRefused(f"token issuer {claims.get('iss')!r} is not Google")
        email = claims.get("email") if claims.get("email_verified") else None
        operator = email is not None and email in self.operators
        tenant = None if operator else claims.get(self.tenant_claim)
        return _principal(str(claims.get("sub", "")), tenant, operator)


def tenant_id_for(settings: Settings, tenant: str) -> uuid.UUID:
    """The tenant id of a slug (looked up in the source database as the application role,
    through the ``lookup_by_slug`` policy) or of a UUID given as is."""
    try:
        return uuid.UUID(tenant)
    except ValueError:
        pass
    import psycopg

    from pulse_local.errors import ServiceUnavailable

    try:
        with psycopg.connect(settings.app_dsn(), connect_timeout=5) as conn, conn.transaction():
            conn.execute("select set_config('pulse.lookup_slug', %s, true)", (tenant,))
            row = conn.execute("select id from organizations where slug = %s",
                               (tenant,)).fetchone()
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(f"cannot look tenant {tenant!r} up, the database does not "
                                 f"answer ({exc}): start the stack with `pulse-local up`, or "
                                 "pass the tenant's UUID") from None
    if row is None:
        raise ConfigError(f"no tenant with slug {tenant!r}: list them with `psql` "
                          "(`select slug from organizations`) or seed fixtures with "
                          "`pulse-local fixtures seed`")
    return uuid.UUID(str(row[0]))


def issue_token_for(settings: Settings, tenant: str | None, *, operator: bool = False,
                    ttl_seconds: int | None = None) -> str:
    """What `pulse-local token` prints: a local token for ``tenant`` (slug or UUID) or the
    operator role, signed with the stack's key (made if missing). Local profile only."""
    if settings.profile != "local":
        raise ConfigError("on gcp the serving API accepts Google ID tokens, not local ones: "
                          "`gcloud auth print-identity-token --audiences=$PULSE_SERVING_AUDIENCE`")
    if operator == (tenant is not None):
        raise ConfigError("pass exactly one of --tenant SLUG and --operator")
    tenant_id = None if tenant is None else tenant_id_for(settings, tenant)
    ttl = ttl_seconds if ttl_seconds is not None else settings.serving_token_ttl
    if not 1 <= ttl <= MAX_TTL_SECONDS:
        raise ConfigError(f"--ttl must be 1..{MAX_TTL_SECONDS} seconds, got {ttl}")
    return issue_local_token(signing_key(settings), tenant_id=tenant_id, operator=operator,
                             ttl_seconds=ttl)
