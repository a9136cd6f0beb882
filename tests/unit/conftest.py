"""Unit tests see no stack: the integration session's environment (ports, emulator hosts,
state directory) is removed, so defaults and explicit arguments are what they test."""

from __future__ import annotations

import os

import pytest

_STACK_VARIABLES = ("PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST", "PREFECT_API_URL",
                    "PREFECT_API_AUTH_STRING",
                    "PUBSUB_PROJECT_ID")


@pytest.fixture(autouse=True)
def _no_stack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PULSE_") or name in _STACK_VARIABLES:
            monkeypatch.delenv(name)
