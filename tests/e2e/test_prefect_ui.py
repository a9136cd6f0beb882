"""End to end: after the stack is up, a person opening the Prefect UI sees the project's
deployments (rendered by real headless Chromium against the real Prefect server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.orchestration import DEPLOYMENTS, deployment_name
from pulse_local.ui import capture_deployments_page

pytestmark = pytest.mark.e2e


def test_deployments_page_lists_every_local_deployment(
    pulse_stack: Any, pulse_settings: Settings, tmp_path: Path
) -> None:
    capture = capture_deployments_page(pulse_settings, tmp_path / "deployments.png")
    for spec in DEPLOYMENTS:
        assert capture.lists(deployment_name(spec.flow, "local")), spec.flow
    png = capture.screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
