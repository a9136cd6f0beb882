"""A time limit on a request's headers for the HTTP services (processor, serving API).

uvicorn (0.54) limits the idle time between requests (keep-alive) but not the time a client
takes to send a request's headers: a connection that sends half a request line and stalls
stays open for ever, and a few hundred of them hold the service's sockets. `HeaderTimeout`
is uvicorn's httptools protocol with a timer armed when a connection opens and whenever a
request begins, cancelled when its headers are complete; on expiry the client gets
``408 Request Timeout`` and the connection is closed. The body has its own limit in the
processor (``PULSE_PROCESSOR_BODY_TIMEOUT``).

    uvicorn.run(app, http=HeaderTimeout, ...)   # PULSE_HEADER_TIMEOUT seconds, default 10
"""

from __future__ import annotations

import asyncio
import os
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pulse_local.errors import ConfigError

#: The environment variable (read by every worker process) and its default, in seconds.
HEADER_TIMEOUT_VARIABLE = "PULSE_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0

_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                     b"content-length: 37\r\nconnection: close\r\n\r\n"
                     b"request headers not complete in time\n")


@cache
def header_timeout() -> float:
    """``PULSE_HEADER_TIMEOUT`` in seconds (0 < t <= 300), or the default; `ConfigError`
    naming the variable otherwise."""
    raw = os.environ.get(HEADER_TIMEOUT_VARIABLE)
    if raw is None:
        return DEFAULT_HEADER_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 300:
        raise ConfigError(f"{HEADER_TIMEOUT_VARIABLE}={raw!r}: seconds a client may take to send "
                          "a request's headers, more than 0 and at most 300 (unset: 10)")
    return value


class HeaderTimeout(HttpToolsProtocol):
    """uvicorn's httptools protocol that closes a connection whose request headers are not
    complete within `header_timeout()` seconds (answering 408)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(header_timeout(), self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a client that connects and sends nothing, or half a request line

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # each request of a keep-alive connection

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # idle until the next request is the keep-alive timer's business
        self._disarm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
