"""A private Pub/Sub emulator process (tests and the benchmark): start, stop, restart.

Also works around a defect of the emulator build we run (0.8.20): a stream that the client
closes (cancel or a killed process) is never unregistered on the server (``NoSuchMethodError``
in its gRPC ``onRstStreamRead``), so the emulator keeps handing messages to the dead stream
until their 10 s lease expires. Tests that restart consumers therefore use their own emulator.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from pulse_local.errors import ServiceUnavailable


class PubSubEmulator:
    """``cloud-pubsub-emulator --host --port`` as a child process."""

    def __init__(self, host: str, port: int, project: str, log_path: Path) -> None:
        self.host, self.port, self.project, self.log_path = host, port, project, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until ``ListTopics`` answers."""
        from pulse_local.resources import pubsub_ready
        from pulse_local.stack import tools

        binary = tools.pubsub_emulator(tools.gcloud_sdk_root(None))
        env = {**os.environ,
               "JAVA_TOOL_OPTIONS": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(binary), f"--host={self.host}",
                                          f"--port={self.port}"], stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                pubsub_ready(self.address, self.project, timeout=1.0)
                return
            except ServiceUnavailable:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"Pub/Sub emulator on {self.address} did not start; see {self.log_path}"
                    ) from None
                time.sleep(0.2)

    def apply(self, *, drop_retry_policy: bool = False) -> None:
        """Apply ``emulators/pubsub/resources.yaml`` (optionally without retry backoff, so
        redeliveries are immediate in tests)."""
        from pulse_local import resources as r

        declarations = r.load_pubsub()
        if drop_retry_policy:
            declarations = declarations.model_copy(update={"subscriptions": [
                s.model_copy(update={"retry_policy": None}) for s in declarations.subscriptions]})
        publisher, subscriber = r.pubsub_clients(self.address)
        try:
            r.apply_pubsub(declarations, publisher, subscriber, self.project, "local")
        finally:
            r.close_pubsub_clients(publisher, subscriber)

    def stop(self) -> None:
        """Kill the emulator (its JVM and children) and wait for it."""
        import signal

        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
