"""Read and validate the resource files."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pulse_local.config import PROJECT_ROOT
from pulse_local.resources.errors import ResourceFileError
from pulse_local.resources.models import (
    BigtableDeclarations,
    DeclarationError,
    PubSubDeclarations,
)

#: Where the declarations live in the repository.
PUBSUB_FILE = PROJECT_ROOT / "emulators" / "pubsub" / "resources.yaml"
BIGTABLE_FILE = PROJECT_ROOT / "emulators" / "bigtable" / "resources.yaml"

ModelT = TypeVar("ModelT", bound=BaseModel)


def _read_yaml(path: Path) -> object:
    """Parse ``path`` as YAML, turning I/O and syntax errors into `ResourceFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResourceFileError(path, "", "file not found") from None
    except OSError as exc:
        raise ResourceFileError(path, "", f"cannot read the file: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ResourceFileError(path, line, f"invalid YAML: {problem}") from None


def _location(loc: tuple[int | str, ...]) -> str:
    """``("subscriptions", 0, "ack_deadline_seconds")`` -> ``subscriptions[0].ack_deadline_seconds``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "literal[", "lax-or-strict")) or "[" in part:
            continue  # pydantic's internal union/validator branch names
        else:
            text += f".{part}" if text else part
    return text


def _problem(error: ErrorDetails) -> tuple[str, str]:
    """The dotted field and the message of one pydantic error.

    Cross-entry rules raise `DeclarationError`, which carries its own field.
    """
    field = _location(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, DeclarationError):
        return ".".join(p for p in (field, cause.field) if p), str(cause)
    if isinstance(cause, ValueError):
        return field, str(cause)
    return field, error["msg"]


def load_declarations(path: Path, model: type[ModelT]) -> ModelT:
    """Load ``path`` and validate it against ``model``.

    Raises `ResourceFileError` naming the file and the first invalid field; the message lists
    every problem found.
    """
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ResourceFileError(
            path, "", f"expected a mapping at the top, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors(include_url=False)]
        first_field, first_message = problems[0]
        rest = [f"{field or '<top>'}: {message}" for field, message in problems[1:]]
        raise ResourceFileError(path, first_field, "; ".join([first_message, *rest])) from None


def load_pubsub(path: Path | None = None) -> PubSubDeclarations:
    """Load the Pub/Sub declarations (default: ``emulators/pubsub/resources.yaml``)."""
    return load_declarations(path or PUBSUB_FILE, PubSubDeclarations)


def load_bigtable(path: Path | None = None) -> BigtableDeclarations:
    """Load the Bigtable declarations (default: ``emulators/bigtable/resources.yaml``)."""
    return load_declarations(path or BIGTABLE_FILE, BigtableDeclarations)
