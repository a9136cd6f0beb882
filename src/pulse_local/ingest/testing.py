"""Helpers to run the real processor in a child process (tests and the benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pulse_local.errors import ServiceUnavailable
from pulse_local.stack.process import end_child


def wait_until_answering(url: str, timeout: float = 30.0, expect: int | None = 200) -> None:
    """Poll ``GET url`` until it answers (with `expect`, unless None); raise after `timeout`."""
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status = httpx.get(url, timeout=2.0).status_code
            if expect is None or status == expect:
                return
            last = f"status {status}"
        except httpx.TransportError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise ServiceUnavailable(f"{url} did not answer within {timeout:.0f}s ({last})")


@contextmanager
def processor_process(env: Mapping[str, str], port: int, log_path: Path,
                      expect_health: int | None = 200) -> Iterator[str]:
    """Run ``python -m pulse_local.ingest`` on `port` with `env`; yield its base URL."""
    child_env = {**os.environ, **env, "PULSE_PROCESSOR_PORT": str(port)}
    host = child_env.get("PULSE_HOST", "127.0.0.1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pulse_local.ingest"], env=child_env,
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{host}:{port}"
    try:
        try:
            wait_until_answering(f"{base}/healthz", expect=expect_health)
        except ServiceUnavailable as exc:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServiceUnavailable(f"{exc}; processor log {log_path}:\n{tail}") from None
        yield base
    finally:
        end_child(proc)
