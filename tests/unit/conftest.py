"""Unit tests see no stack: the integration session's environment (ports, emulator hosts,
state directory, Prefect API) is removed, so defaults and explicit arguments are what they
test (`stack_environment`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stack_environment import clear_stack_environment, no_stack_prefect_settings


@pytest.fixture(autouse=True)
def _no_stack_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clear_stack_environment(monkeypatch)
    with no_stack_prefect_settings():
        yield
