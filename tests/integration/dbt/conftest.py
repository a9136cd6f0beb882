"""Fixtures of the dbt integration tests."""

from __future__ import annotations

from typing import Any

import pytest
from cdc_pipeline import Landed, feed_and_build

from pulse_local.config import Settings


@pytest.fixture(scope="session")
def landed(pulse_stack: Any, pulse_settings: Settings,
           tmp_path_factory: pytest.TempPathFactory) -> Landed:
    """The session stack fed with a fixture set through the real pipeline, then dbt build."""
    return feed_and_build(pulse_settings, tmp_path_factory.mktemp("dbt-cdc-fixtures"))
