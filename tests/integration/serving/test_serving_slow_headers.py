"""The serving API closes connections whose request headers never complete (408), like the
processor (the session's serving service, default PULSE_HEADER_TIMEOUT of 10 s)."""

from __future__ import annotations

from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.testing.slow_clients import stalled_answers

pytestmark = pytest.mark.integration


def test_stalled_headers_get_408_and_the_connection_closes(pulse_stack: Any,
                                                           pulse_settings: Settings) -> None:
    address = (pulse_settings.host, pulse_settings.serving_port)
    partial = [b"", b"GET /v1/tenants/", b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthoriz"]
    for answer in stalled_answers(address, partial * 3):
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"headers not complete" in answer
