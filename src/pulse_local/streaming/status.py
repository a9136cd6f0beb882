"""The consumer service's heartbeat file: where it is, and the readiness check that reads it.

The service (`pulse_local.streaming.consumer.serve`) rewrites the file every few seconds with
its pid, whether its streams are open and its report; `consumer_ready` (the stack's probe) and
the monitoring's ``streaming:consumer`` check read it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pulse_local.config import Settings
from pulse_local.errors import ServiceUnavailable

#: The readiness/heartbeat file of the long-running service, under ``state_dir/run``.
STATUS_FILE = "streaming-consumer.status.json"


def status_path(settings: Settings) -> Path:
    """The heartbeat file of the long-running consumer service."""
    return settings.state_dir / "run" / STATUS_FILE


def consumer_ready(settings: Settings, max_age: float = 15.0) -> None:
    """Probe: the consumer service has a live process with open streams (heartbeat file fresher
    than ``max_age`` s). Raises `ServiceUnavailable` saying what to do otherwise."""
    import psutil

    path = status_path(settings)
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        raise ServiceUnavailable(
            f"the streaming consumer has not reported yet ({path} missing): start it with "
            "`python -m pulse_local.streaming consume` (or `pulse-local up`)") from None
    except ValueError as exc:
        raise ServiceUnavailable(f"{path} is unreadable ({exc}); restart the consumer") from None
    age = time.time() - float(status.get("updated_at", 0))
    if status.get("stopped") or not psutil.pid_exists(int(status.get("pid", -1))):
        raise ServiceUnavailable(
            f"the streaming consumer (pid {status.get('pid')}) has stopped: restart it with "
            "`python -m pulse_local.streaming consume`")
    if age > max_age:
        raise ServiceUnavailable(
            f"the streaming consumer's heartbeat is {age:.0f} s old: it is stuck; see its log")
    if not status.get("subscribed"):
        raise ServiceUnavailable(
            "the streaming consumer runs but has no open stream (Pub/Sub down or subscription "
            f"missing; last errors: {status.get('errors', [])[-1:]})")
