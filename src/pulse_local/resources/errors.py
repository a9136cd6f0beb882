"""Errors of the resources package (subclasses of the project's named errors)."""

from __future__ import annotations

from pathlib import Path

from pulse_local.errors import ConfigError, PulseError


class ResourceFileError(ConfigError):
    """A resource file is missing, is not YAML, or does not match its schema.

    ``path`` is the file, ``field`` the dotted location of the first problem (``""`` when the
    file as a whole is wrong).
    """

    def __init__(self, path: Path, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        self.problem = problem
        where = f"{path}: {field}" if field else str(path)
        super().__init__(f"{where}: {problem} (fix the file and apply again)")


class ResourceApplyError(PulseError):
    """An API call made while applying resources failed; the message says what to do."""
