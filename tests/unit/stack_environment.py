"""Unit tests see no stack: the integration session's environment (ports, emulator hosts,
state directory, Prefect API) is removed, so defaults and explicit arguments are what they
test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def no_stack_prefect_settings() -> Iterator[None]:
    """Prefect's settings without a stack's API URL and auth string. The plugin's
    `pulse_settings` puts them in Prefect's settings context (Prefect reads its environment
    once), where removing the variables does not reach: a unit test run after an integration
    test in the same process (any order, a pytest-xdist worker) would see them."""
    if "prefect.settings" not in sys.modules:  # nothing imported Prefect: nothing to hide
        yield
        return
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value() is None and PREFECT_API_AUTH_STRING.value() is None:
        yield
        return
    with temporary_settings(restore_defaults={PREFECT_API_URL, PREFECT_API_AUTH_STRING}):
        yield
