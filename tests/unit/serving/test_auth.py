"""Tokens of the serving API: issue, verify, refuse; the key file; the verifier per profile.

The Google ID-token tests sign tokens with an RSA key made here and serve its public key through
a fake HTTP request object (faked: google-auth's certificate fetch); the verification itself is
google-auth's.
"""

from __future__ import annotations

import json
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from pulse_local.backends import ServingSecurity, serving_security
from pulse_local.config import Settings
from pulse_local.errors import ConfigError
from pulse_local.serving.__main__ import bind_address
from pulse_local.serving.app import create_app
from pulse_local.serving.auth import (
    CachedCertificates,
    GoogleIdTokenVerifier,
    LocalTokenVerifier,
    TokenRefused,
    issue_local_token,
    issue_token_for,
    signing_key,
    signing_key_path,
)

TENANT = uuid.UUID("11111111-2222-4333-8444-555555555555")


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(state_dir=tmp_path, **kw)


def test_the_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    key = signing_key(settings)
    path = signing_key_path(settings)
    assert path == tmp_path / "secrets" / "serving-token.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32
    assert signing_key(settings) == key


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    signing_key(settings)
    signing_key_path(settings).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        signing_key(settings)


def test_no_key_and_no_creation_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pulse-local up"):
        signing_key(_settings(tmp_path), create=False)


def test_a_tenant_token_verifies_to_its_tenant() -> None:
    key = b"k" * 32
    principal = LocalTokenVerifier(key).verify(issue_local_token(key, tenant_id=TENANT))
    assert principal.tenant_id == TENANT and not principal.operator
    assert principal.may_read(TENANT) and not principal.may_read(uuid.uuid4())


def test_an_operator_token_reads_every_tenant() -> None:
    key = b"k" * 32
    principal = LocalTokenVerifier(key).verify(
        issue_local_token(key, tenant_id=None, operator=True))
    assert principal.operator and principal.may_read(uuid.uuid4())


@pytest.mark.parametrize(("token", "reason"), [
    (lambda key: issue_local_token(b"x" * 32, tenant_id=TENANT), "signature"),
    (lambda key: issue_local_token(key, tenant_id=TENANT, ttl_seconds=10,
                                   now=time.time() - 100), "expired"),
    (lambda key: jwt.encode({"sub": "x", "tenant": str(TENANT)}, key, "HS256"), "invalid"),
    (lambda key: jwt.encode({"iss": "pulse-local", "aud": "pulse-serving", "sub": "x",
                             "iat": int(time.time()), "exp": int(time.time()) + 60}, key,
                            "HS256"), "names no tenant"),
    (lambda key: jwt.encode({"iss": "pulse-local", "aud": "pulse-serving", "sub": "x",
                             "iat": int(time.time()), "exp": int(time.time()) + 60,
                             "tenant": "tenant-0001"}, key, "HS256"), "not a UUID"),
    (lambda key: jwt.encode({"iss": "pulse-local", "aud": "pulse-serving", "sub": "x",
                             "iat": int(time.time()), "exp": int(time.time()) + 60,
                             "tenant": str(TENANT)}, key, "HS512"), "invalid"),
    (lambda key: "garbage", "invalid"),
])
def test_bad_tokens_are_refused_with_a_reason(token: Any, reason: str) -> None:
    key = b"k" * 32
    with pytest.raises(TokenRefused, match=reason):
        LocalTokenVerifier(key).verify(token(key))


def test_issuing_needs_exactly_one_of_tenant_and_operator(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        issue_local_token(b"k" * 32, tenant_id=TENANT, operator=True)
    with pytest.raises(ConfigError, match="exactly one"):
        issue_token_for(_settings(tmp_path), None)
    with pytest.raises(ConfigError, match="--ttl"):
        issue_token_for(_settings(tmp_path), str(TENANT), ttl_seconds=10**6)
    with pytest.raises(ConfigError, match="print-identity-token"):
        issue_token_for(_settings(tmp_path, profile="gcp"), str(TENANT))
    token = issue_token_for(_settings(tmp_path), str(TENANT), ttl_seconds=30)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tenant"] == str(TENANT) and claims["exp"] - claims["iat"] == 30


def test_the_profile_chooses_the_verifier_and_the_docs(tmp_path: Path) -> None:
    local = serving_security(_settings(tmp_path))
    assert isinstance(local.verifier, LocalTokenVerifier) and local.docs
    with pytest.raises(ConfigError, match="PULSE_SERVING_AUDIENCE"):
        serving_security(_settings(tmp_path, profile="gcp"))
    gcp = serving_security(_settings(tmp_path, profile="gcp", serving_audience="https://s"))
    assert isinstance(gcp.verifier, GoogleIdTokenVerifier) and not gcp.docs
    assert serving_security(_settings(tmp_path, profile="gcp", serving_audience="https://s",
                                      serving_docs=True)).docs


def test_docs_routes_exist_only_when_allowed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    verifier = LocalTokenVerifier(b"k" * 32)
    closed = TestClient(create_app(settings, ServingSecurity(verifier, docs=False)))
    assert [closed.get(p).status_code for p in ("/docs", "/openapi.json")] == [404, 404]
    opened = TestClient(create_app(settings, ServingSecurity(verifier, docs=True)))
    assert opened.get("/openapi.json").status_code == 200
    # refusals come before any store is touched (the app's lifespan is not even started here)
    assert opened.get(f"/v1/tenants/{TENANT}/counters").status_code == 401


def test_the_container_listens_on_port_on_every_interface(tmp_path: Path) -> None:
    settings = _settings(tmp_path, serving_port=9999)
    assert bind_address(settings, {}) == ("127.0.0.1", 9999)
    assert bind_address(settings, {"PORT": "8080"}) == ("0.0.0.0", 8080)


# Google ID tokens --------------------------------------------------------------------------------

@dataclass
class _Response:
    status: int
    data: bytes
    headers: dict[str, str]


@pytest.fixture(scope="module")
def google_keys() -> tuple[Any, Any]:
    """A signer and a fake certificate endpoint serving its public key (faked: Google's)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.auth import crypt

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    body = json.dumps({"kid-1": public.decode()}).encode()

    def request(url: str, method: str = "GET", **_: Any) -> _Response:
        return _Response(200, body, {})

    return crypt.RSASigner.from_string(pem, key_id="kid-1"), request


def _google_token(signer: Any, **claims: Any) -> str:
    from google.auth import jwt as gjwt

    now = int(time.time())
    payload = {"iss": "https://accounts.google.com", "aud": "https://serving", "iat": now,
               "exp": now + 300, "sub": "1234", **claims}
    return gjwt.encode(signer, payload).decode()


def test_google_tokens_name_the_tenant_by_claim(google_keys: tuple[Any, Any]) -> None:
    signer, request = google_keys
    verifier = GoogleIdTokenVerifier("https://serving", "pulse_tenant",
                                     frozenset({"ops@example.com"}),
                                     request=CachedCertificates(request),
                                     certs_url="https://certs.test")
    tenant = verifier.verify(_google_token(signer, pulse_tenant=str(TENANT)))
    assert tenant.tenant_id == TENANT and not tenant.operator
    ops = verifier.verify(_google_token(signer, email="ops@example.com", email_verified=True))
    assert ops.operator
    with pytest.raises(TokenRefused, match="names no tenant"):
        verifier.verify(_google_token(signer, email="ops@example.com", email_verified=False))
    with pytest.raises(TokenRefused, match="audience|Audience"):
        verifier.verify(_google_token(signer, aud="https://other", pulse_tenant=str(TENANT)))
    with pytest.raises(TokenRefused, match="issuer"):
        verifier.verify(_google_token(signer, iss="https://evil", pulse_tenant=str(TENANT)))
    with pytest.raises(TokenRefused, match="expired|Expired|Token used too late"):
        verifier.verify(_google_token(signer, iat=int(time.time()) - 7200,
                                      exp=int(time.time()) - 3600, pulse_tenant=str(TENANT)))


def test_certificates_are_fetched_once_per_max_age() -> None:
    calls: list[str] = []
    now = [1000.0]

    def request(url: str, method: str = "GET", **_: Any) -> _Response:
        calls.append(url)
        return _Response(200, b"{}", {"Cache-Control": "public, max-age=600, must-revalidate"})

    cached = CachedCertificates(request, clock=lambda: now[0])
    for _ in range(3):
        cached("https://certs")
    assert calls == ["https://certs"]
    now[0] += 601
    cached("https://certs")
    assert calls == ["https://certs"] * 2
    failing = CachedCertificates(lambda url, method="GET", **_: _Response(500, b"", {}))
    assert failing("https://certs").status == 500
