"""Database unavailable: a tenant whose secrets the processor does not have gets 503 +
Retry-After and nothing is kept; a verified delivery is archived as pending (202), nothing
written. (With the stack's own PostgreSQL stopped and `replay --pending`:
tests/integration/ingest/test_ingest_degraded.py.)

The shared session Postgres is never stopped: the processor under test reaches it through a
small TCP proxy that the test cuts, or through a DSN on a closed port.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pulse_local.ingest.signature import HEADER, webhook_headers
from pulse_local.ingest.testing import processor_process
from pulse_local.stack.process import free_port

pytestmark = pytest.mark.integration


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream address until `cut()` drops everything."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # listener closed by cut()
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            return  # the other side (or cut()) closed the socket
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    continue

    def cut(self) -> None:
        """Close the listener and every proxied connection (the database 'goes away')."""
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    continue
                s.close()


def _archived(settings: Any, prefix: str) -> list[dict[str, Any]]:
    root = settings.raw_bucket_dir / prefix
    return [json.loads(line) for p in root.rglob("*.jsonl") for line in p.read_text().splitlines()]


def _signed(body: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, webhook_headers(secret, raw)


@pytest.fixture()
def closed_port_processor(source_fixtures: Path, pulse_settings: Any,
                          tmp_path: Path) -> Iterator[str]:
    dsn = (f"postgresql://{pulse_settings.db_app_user}:{pulse_settings.app_password()}"
           f"@127.0.0.1:{free_port()}/{pulse_settings.db_name}")
    env = {"PULSE_DATABASE_URL": dsn, "PULSE_PROCESSOR_POOL_TIMEOUT": "0.5",
           "PULSE_PROCESSOR_RETRY_AFTER_SECONDS": "7"}
    with processor_process(env, free_port(), tmp_path / "p.log", expect_health=503) as url:
        yield url


def test_database_down_at_tenant_lookup(closed_port_processor: str, make_webhook: Any,
                                        tenants: Any, pulse_settings: Any) -> None:
    health = httpx.get(f"{closed_port_processor}/healthz", timeout=10)
    assert health.status_code == 503 and "Retry-After" in health.headers
    payload = make_webhook()
    raw, headers = _signed(payload, tenants["tenant-0001"]["webhook_secret"])
    response = httpx.post(f"{closed_port_processor}/webhooks/typeform/tenant-0001",
                          content=raw, headers=headers, timeout=10)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert "cannot be verified" in response.json()["detail"]
    # never resolved by this process: its secrets are unknown, the body cannot be verified
    # and is not kept anywhere
    for prefix in ("typeform/pending", "typeform/webhooks"):
        assert not [r for r in _archived(pulse_settings, prefix) if r.get("body") == raw.decode()]


def test_database_lost_before_the_write(source_fixtures: Path, pulse_settings: Any,
                                        make_webhook: Any, tenants: Any, pg_admin: Any,
                                        tmp_path: Path) -> None:
    proxy = TcpProxy((pulse_settings.host, pulse_settings.postgres_port))
    dsn = (f"postgresql://{pulse_settings.db_app_user}:{pulse_settings.app_password()}"
           f"@127.0.0.1:{proxy.port}/{pulse_settings.db_name}")
    env = {"PULSE_DATABASE_URL": dsn, "PULSE_PROCESSOR_POOL_TIMEOUT": "1",
           "PULSE_PROCESSOR_CACHE_SECONDS": "600", "PULSE_PROCESSOR_POOL_MIN_SIZE": "1"}
    secret = tenants["tenant-0001"]["webhook_secret"]
    with processor_process(env, free_port(), tmp_path / "p.log") as url:
        warm, headers = _signed(make_webhook(), secret)  # caches tenant and form
        assert httpx.post(f"{url}/webhooks/typeform/tenant-0001", content=warm,
                          headers=headers, timeout=10).status_code == 200
        proxy.cut()
        payload = make_webhook()
        raw, headers = _signed(payload, secret)
        response = httpx.post(f"{url}/webhooks/typeform/tenant-0001", content=raw,
                              headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "pending"
    token = payload["form_response"]["token"]
    assert pg_admin.execute("select count(*) from responses where typeform_token = %s",
                            (token,)).fetchone()[0] == 0
    archived = _archived(pulse_settings, "typeform/webhooks")
    assert [r["verified"] for r in archived if r.get("event_id") == payload["event_id"]] == [True]
    pending = [r for r in _archived(pulse_settings, "typeform/pending")
               if r.get("event_id") == payload["event_id"]]
    assert len(pending) == 1 and pending[0]["verified"] is True
    assert pending[0]["signature"] == headers[HEADER] and pending[0]["body"] == raw.decode()
