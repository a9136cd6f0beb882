"""Clients that stall: connections that send part of a request, then nothing. Tests of a
server's header and body timeouts (a 408, then the connection closed) use them::

    answers = stalled_answers(("127.0.0.1", port), [b"GET /x", b"POST /y HTTP/1.1\\r\\nHo"])
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers)
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

#: Longer than any timeout a test expects the server to apply: a socket that waits this long
#: fails the read (``TimeoutError``) instead of hanging the test.
READ_TIMEOUT_S = 60.0


def stall(address: tuple[str, int], data: bytes, timeout: float = READ_TIMEOUT_S) -> socket.socket:
    """A connection to `address` that sent `data` (maybe nothing) and will send no more."""
    conn = socket.create_connection(address, timeout=timeout)
    conn.sendall(data)
    return conn


def read_until_closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout
    fails the read if it never does)."""
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


def stalled_answers(address: tuple[str, int], partials: Sequence[bytes],
                    timeout: float = READ_TIMEOUT_S) -> list[bytes]:
    """Open one connection per item of `partials`, all at once, each sending its item; then
    what the server answered on each until it closed it. Every connection is closed after."""
    stalled: list[socket.socket] = []
    try:
        for data in partials:
            stalled.append(stall(address, data, timeout))
        return [read_until_closed(conn) for conn in stalled]
    finally:
        for conn in stalled:
            conn.close()
