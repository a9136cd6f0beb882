"""Clients that stall mid-body or mid-headers get 408 and lose their connection (a processor of
its own with 1-second body and header timeouts)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pulse_local.config import Settings
from pulse_local.stack.process import free_port
from pulse_local.testing.slow_clients import read_until_closed, stalled_answers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def impatient(source_fixtures: Path, pulse_settings: Settings,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    from pulse_local.ingest.testing import processor_process

    log = tmp_path_factory.mktemp("impatient") / "processor.log"
    with processor_process({"PULSE_PROCESSOR_BODY_TIMEOUT": "1",
                                      "PULSE_HEADER_TIMEOUT": "1"}, free_port(), log) as url:
        parts = urlsplit(url)
        yield str(parts.hostname), int(parts.port or 80)


#: Headers and 10 of the 1,000 body bytes they announce.
STALLED_BODY = (b"POST /webhooks/typeform/tenant-0001 HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"event_id")


def test_stalled_bodies_get_408_and_the_connection_closes(
        impatient: tuple[str, int], row_counts: Any) -> None:
    before = row_counts()
    for answer in stalled_answers(impatient, [STALLED_BODY] * 20, timeout=30):
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"body_timeout" in answer
    assert row_counts() == before


def test_stalled_headers_get_408_and_the_connection_closes(
        impatient: tuple[str, int], row_counts: Any) -> None:
    before = row_counts()
    partial = [b"", b"PO", b"POST /webhooks/typeform/tenant-0001 HTTP/1.1\r\nHost: x\r\n",
               b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1"]
    for answer in stalled_answers(impatient, [partial[i % len(partial)] for i in range(20)],
                                  timeout=30):
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"headers not complete" in answer
    assert row_counts() == before
    # a keep-alive connection: the first request is served, the second stalls mid-headers
    with socket.create_connection(impatient, timeout=30) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b'"pubsub"' not in first:  # the whole JSON answer of /healthz
            chunk = conn.recv(65536)
            assert chunk, first
            first += chunk
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        second = read_until_closed(conn)
    assert first.startswith(b"HTTP/1.1 200"), first
    assert second.startswith(b"HTTP/1.1 408"), second
