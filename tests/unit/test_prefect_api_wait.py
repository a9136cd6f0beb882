"""The deployments server's wait for Prefect's API, against tiny local HTTP servers (not Prefect)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pulse_local.errors import PulseError
from pulse_local.orchestration import _wait_for_prefect_api


def _server(body: object) -> ThreadingHTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = json.dumps(body).encode()
            self.send_response(200 if self.path.endswith("/health") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def serving() -> Iterator[list[ThreadingHTTPServer]]:
    servers: list[ThreadingHTTPServer] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def test_returns_once_health_answers_true(serving: list[ThreadingHTTPServer]) -> None:
    serving.append(_server(True))
    port = serving[0].server_address[1]
    _wait_for_prefect_api(f"http://127.0.0.1:{port}/api", api_wait=30)


def test_a_health_that_is_not_true_times_out_naming_it(serving: list[ThreadingHTTPServer]) -> None:
    serving.append(_server({"status": "starting"}))
    port = serving[0].server_address[1]
    with pytest.raises(PulseError, match=r"did not answer true.*pulse-local logs prefect"):
        _wait_for_prefect_api(f"http://127.0.0.1:{port}/api", api_wait=0.3)


def test_a_closed_port_times_out_naming_the_url() -> None:
    with socket.socket() as probe:  # a port nobody listens on once this socket closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PulseError, match=rf"127.0.0.1:{port}/api.*did not accept connections"):
        _wait_for_prefect_api(f"http://127.0.0.1:{port}/api", api_wait=0.3)
