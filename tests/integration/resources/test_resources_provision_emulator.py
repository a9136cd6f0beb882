"""provision() end to end against both emulators, with clients built from Settings."""

from __future__ import annotations

from typing import Any  # the `emulators` fixture of conftest.py: .pubsub_host, .bigtable_host

import pytest

from pulse_local.config import Settings
from pulse_local.resources import provision

pytestmark = pytest.mark.integration


def test_provision_twice(emulators: Any, project: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        project=project,
        PUBSUB_EMULATOR_HOST=emulators.pubsub_host,
        BIGTABLE_EMULATOR_HOST=emulators.bigtable_host,
    )
    pubsub, bigtable = provision(settings, "local")
    assert pubsub.target == f"projects/{project}"
    assert bigtable.target == f"projects/{project}/instances/{settings.bigtable_instance}"
    assert {r.action for r in pubsub.results + bigtable.results} == {"created"}

    again = provision(settings, "local")
    assert {r.action for report in again for r in report.results} == {"exists"}
