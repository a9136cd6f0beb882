"""Fixtures for the CDC integration tests: each test gets its own tables, publication, slot and
landing directory in the session PostgreSQL, so tests never see each other's changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cdc_helpers import CdcCase

from pulse_local.config import Settings


@pytest.fixture()
def cdc_case(pulse_stack: Any, pulse_settings: Settings, tmp_path: Path) -> Iterator[CdcCase]:
    """A fresh stream (merge mode) on the session PostgreSQL."""
    with psycopg.connect(pulse_settings.admin_dsn(), autocommit=True) as admin:
        case = CdcCase(pulse_settings, admin, tmp_path)
        try:
            yield case
        finally:
            case.cleanup()
