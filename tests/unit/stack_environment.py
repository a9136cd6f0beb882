"""Unit tests see no stack: the integration session's environment (ports, emulator hosts,
state directory) is removed, so defaults and explicit arguments are what they test."""

from __future__ import annotations

import os

import pytest

_STACK_VARIABLES = ("PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST", "PREFECT_API_URL",
                    "PREFECT_API_AUTH_STRING",
                    "PUBSUB_PROJECT_ID")


def clear_stack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove a stack's variables (until `monkeypatch` undoes it). The autouse fixture of
    conftest.py does it for every unit test; a module-scoped fixture (which runs before it)
    calls it with a `pytest.MonkeyPatch.context()`."""
    for name in list(os.environ):
        if name.startswith("PULSE_") or name in _STACK_VARIABLES:
            monkeypatch.delenv(name)
