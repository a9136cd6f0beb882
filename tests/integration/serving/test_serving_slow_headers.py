"""The serving API closes connections whose request headers never complete (408), like the
processor (the session's serving service, default PULSE_HEADER_TIMEOUT of 10 s)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from pulse_local.config import Settings

pytestmark = pytest.mark.integration


def test_stalled_headers_get_408_and_the_connection_closes(pulse_stack: Any,
                                                           pulse_settings: Settings) -> None:
    address = (pulse_settings.host, pulse_settings.serving_port)
    partial = [b"", b"GET /v1/tenants/", b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthoriz"]
    stalled = []
    for data in partial * 3:
        conn = socket.create_connection(address, timeout=60)
        conn.sendall(data)
        stalled.append(conn)
    answers = []
    try:
        for conn in stalled:
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
            answers.append(received)
    finally:
        for conn in stalled:
            conn.close()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"headers not complete" in answer
