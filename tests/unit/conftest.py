"""Unit tests see no stack: the integration session's environment (ports, emulator hosts,
state directory) is removed, so defaults and explicit arguments are what they test."""

from __future__ import annotations

import pytest
from stack_environment import clear_stack_environment


@pytest.fixture(autouse=True)
def _no_stack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_stack_environment(monkeypatch)
