"""Typeform webhook signatures.

Typeform signs the raw body with the webhook secret: header
``Typeform-Signature: sha256=<base64(HMAC-SHA256(secret, body))>``
(https://www.typeform.com/developers/webhooks/secure-your-webhooks/).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

HEADER = "Typeform-Signature"
_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value Typeform would send for `body` signed with `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return _PREFIX + base64.b64encode(digest).decode("ascii")


def webhook_headers(secret: str, body: bytes) -> dict[str, str]:
    """The headers of a Typeform delivery of the JSON ``body`` signed with ``secret``."""
    return {HEADER: sign(secret, body), "content-type": "application/json"}


def verify(secrets: Iterable[str], body: bytes, header: str | None) -> bool:
    """True when `header` is the signature of `body` under one of `secrets`.

    Compares in constant time (``hmac.compare_digest``) against every active secret, so key
    rotation works and timing does not reveal which secret or how many bytes matched.
    """
    if not header or not header.startswith(_PREFIX) or len(header) > 200:
        return False
    received = header.encode("ascii", errors="replace")
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(sign(secret, body).encode("ascii"), received)
    return ok
