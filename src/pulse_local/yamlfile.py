"""Declarative YAML files validated by a pydantic model, with errors that name the file and
the field (the CDC stream declaration and the monitoring SLA file share this)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_yaml_model(path: Path, model: type[ModelT], error: type[Exception],
                    missing: str) -> ModelT:
    """Read ``path`` and validate it as ``model``.

    Raises ``error`` with ``<path>: <field.path>: <problem>`` for every invalid field, or a
    message for a missing file (``missing`` says what the file is and how to get it back),
    invalid YAML or a top level that is not a mapping."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise error(f"{path}: file not found ({missing})") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<top>'}: {e['msg']}"
            for e in exc.errors(include_url=False))
        raise error(f"{path}: {problems}") from None
