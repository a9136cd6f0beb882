"""Fixtures of the streaming tests: a private Pub/Sub emulator per test (see
`pulse_local.streaming.emulator` for why) next to the session's Bigtable emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.stack.process import free_port
from pulse_local.streaming.emulator import PubSubEmulator


@pytest.fixture()
def own_pubsub(pulse_stack: Any, pulse_settings: Settings, tmp_path: Path
               ) -> Iterator[PubSubEmulator]:
    """A fresh Pub/Sub emulator with the declared resources (retry backoff dropped)."""
    emulator = PubSubEmulator(pulse_settings.host, free_port(), pulse_settings.project,
                              tmp_path / "pubsub.log")
    emulator.start()
    emulator.apply(drop_retry_policy=True)
    yield emulator
    emulator.stop()


@pytest.fixture()
def stream_settings(pulse_settings: Settings, own_pubsub: PubSubEmulator,
                    monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings (and environment) pointing Pub/Sub at the private emulator."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", own_pubsub.address)
    monkeypatch.setenv("PULSE_PUBSUB_PORT", str(own_pubsub.port))
    return pulse_settings.model_copy(update={"pubsub_emulator_host": own_pubsub.address,
                                             "pubsub_port": own_pubsub.port})


@pytest.fixture()
def publisher(stream_settings: Settings) -> Iterator[Any]:
    from pulse_local.streaming.testing import fast_publisher

    client = fast_publisher()
    yield client
    client.transport.close()


@pytest.fixture()
def spawn_consumer(stream_settings: Settings, tmp_path: Path
                   ) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``python -m pulse_local.streaming consume`` children; all killed at teardown."""
    children: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"consumer-{len(children)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "pulse_local.streaming", "consume", *args],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        children.append(proc)
        return proc

    yield spawn
    for proc in children:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.25) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
