"""Real Pub/Sub and Bigtable emulators for the resources tests (local to this folder).

Both start once per session on free ports, as subprocesses in their own process group, and are
killed at teardown. Readiness is the package's own probes. Each test uses its own project id,
so tests never see each other's resources.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pulse_local.errors import ServiceUnavailable
from pulse_local.resources import bigtable_ready, pubsub_ready

STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Emulators:
    """Addresses (``host:port``) of the running emulators."""

    pubsub_host: str
    bigtable_host: str


def _sdk_root() -> Path:
    """The Google Cloud SDK directory (``CLOUDSDK_ROOT``, next to ``gcloud``, or the apt path)."""
    if root := os.environ.get("CLOUDSDK_ROOT"):
        return Path(root)
    gcloud = shutil.which("gcloud")
    if gcloud:
        return Path(gcloud).resolve().parents[1]
    return Path("/usr/lib/google-cloud-sdk")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait(name: str, proc: subprocess.Popen[bytes], probe: Callable[[], None], log: Path) -> None:
    """Call ``probe`` until it passes; fail with the emulator's log if it exits or times out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last: ServiceUnavailable | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{name} emulator exited with {proc.returncode}:\n{log.read_text()}")
        try:
            probe()
            return
        except ServiceUnavailable as exc:
            last = exc
            time.sleep(0.3)
    pytest.fail(f"{name} emulator not ready after {STARTUP_TIMEOUT}s: {last}\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the emulator's process group (the Java launcher has children)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Start the Pub/Sub and Bigtable emulators; skip when the Cloud SDK emulators are absent."""
    sdk = _sdk_root()
    pubsub_bin = sdk / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
    bigtable_bin = sdk / "platform" / "bigtable-emulator" / "cbtemulator"
    missing = [str(p) for p in (pubsub_bin, bigtable_bin) if not p.exists()]
    if missing or shutil.which("java") is None:
        pytest.skip(
            f"emulators not installed ({', '.join(missing) or 'java'}): install google-cloud-cli "
            "with the pubsub-emulator and bigtable-emulator components, and Java 17"
        )

    logs = tmp_path_factory.mktemp("emulators")
    pubsub_host = f"127.0.0.1:{_free_port()}"
    bigtable_host = f"127.0.0.1:{_free_port()}"
    host, port = pubsub_host.split(":")
    pubsub = _start([str(pubsub_bin), f"--host={host}", f"--port={port}"], logs / "pubsub.log")
    host, port = bigtable_host.split(":")
    bigtable = _start([str(bigtable_bin), "-host", host, "-port", port], logs / "bigtable.log")
    try:
        _wait(
            "bigtable",
            bigtable,
            lambda: bigtable_ready(bigtable_host, "probe", "probe"),
            logs / "bigtable.log",
        )
        _wait("pubsub", pubsub, lambda: pubsub_ready(pubsub_host, "probe"), logs / "pubsub.log")
        yield Emulators(pubsub_host=pubsub_host, bigtable_host=bigtable_host)
    finally:
        _stop(pubsub)
        _stop(bigtable)


@pytest.fixture
def project() -> str:
    """A fresh project id: the emulators keep resources per project."""
    return f"it-{uuid.uuid4().hex[:12]}"
