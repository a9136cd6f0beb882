"""Secrets stay out of what other local users can read: command lines (`ps`), the stack's logs
and `status --json`, and the serving token key stays private."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psutil
import pytest

from pulse_local.config import Settings
from pulse_local.stack import process

pytestmark = pytest.mark.integration


def _secrets(settings: Settings) -> list[str]:
    """Strings that must appear nowhere public: the generated passwords, the Prefect API's
    auth string, the token key, the webhook secrets."""
    from pulse_local.testing.secret_scan import stack_secrets

    found = stack_secrets(settings)
    assert {"db admin password", "db app password", "prefect auth string"} <= set(found)
    return list(found.values())


def test_no_stack_process_has_a_secret_on_its_command_line(pulse_stack: Any,
                                                           pulse_settings: Settings) -> None:
    secrets = _secrets(pulse_settings)
    seen = 0
    for pid_file in (pulse_settings.state_dir / "run").glob("*.pid"):
        record = process.read_pid(pid_file)
        if record is None or not psutil.pid_exists(record.pid):
            continue
        root = psutil.Process(record.pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                line = " ".join(proc.cmdline())
            except psutil.NoSuchProcess:
                continue
            seen += 1
            assert not any(s in line for s in secrets), (pid_file.stem, line)
    assert seen >= 6


def test_logs_and_status_json_hold_no_secret(pulse_stack: Any,
                                             pulse_settings: Settings) -> None:
    secrets = _secrets(pulse_settings)
    for log in (pulse_settings.state_dir / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert not any(s in text for s in secrets), log
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    status = subprocess.run([sys.executable, "-m", "pulse_local.cli", "status", "--json"],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert json.loads(status.stdout), status.stderr
    assert not any(s in status.stdout + status.stderr for s in secrets)
