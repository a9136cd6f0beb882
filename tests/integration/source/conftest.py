"""Fixtures: the session stack migrated and seeded with a small fixture set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pulse_local.config import Settings


@pytest.fixture(scope="session")
def seeded(pulse_stack: Any, pulse_settings: Settings,
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Schema migrated and 2 fixture tenants seeded; returns the fixture directory."""
    from pulse_local.source.fixtures import generate
    from pulse_local.source.migrations import migrate
    from pulse_local.source.seed import seed_reference_data

    migrate(pulse_settings)
    out = tmp_path_factory.mktemp("source-fixtures")
    generate(2, 7, out)  # same set as tests/integration/ingest
    seed_reference_data(pulse_settings, out)
    return out


@pytest.fixture(scope="session")
def tenant_ids(seeded: Path) -> list[str]:
    """The ids of the seeded tenants (at least two)."""
    return [o["id"] for o in json.loads((seeded / "organizations.json").read_text())]
