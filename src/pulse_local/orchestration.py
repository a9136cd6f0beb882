"""Finding the Prefect flows of `flows/` (thin modules that call this package)."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from pulse_local.config import PROJECT_ROOT
from pulse_local.errors import PulseError

FLOWS_DIR = PROJECT_ROOT / "flows"


def load_flow(name: str) -> Any:
    """Import `flows/<name>.py` and return its flow object of the same name."""
    if not (FLOWS_DIR / f"{name}.py").is_file():
        raise PulseError(f"no flow {name!r} in {FLOWS_DIR}: run pulse-local from its repository")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    module = importlib.import_module(f"flows.{name}")
    return getattr(module, name)
