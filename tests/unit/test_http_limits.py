"""PULSE_HEADER_TIMEOUT parsing (unit: no sockets; the timeout itself is proven against a
running processor in tests/integration/ingest/test_ingest_slow_clients.py)."""

from __future__ import annotations

import pytest

from pulse_local.errors import ConfigError
from pulse_local.http_limits import DEFAULT_HEADER_TIMEOUT, header_timeout


@pytest.fixture(autouse=True)
def fresh() -> None:
    header_timeout.cache_clear()


def test_default_and_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULSE_HEADER_TIMEOUT", raising=False)
    assert header_timeout() == DEFAULT_HEADER_TIMEOUT == 10.0
    header_timeout.cache_clear()
    monkeypatch.setenv("PULSE_HEADER_TIMEOUT", "2.5")
    assert header_timeout() == 2.5


@pytest.mark.parametrize("raw", ["0", "-1", "301", "soon", ""])
def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PULSE_HEADER_TIMEOUT", raw)
    with pytest.raises(ConfigError, match="PULSE_HEADER_TIMEOUT"):
        header_timeout()
