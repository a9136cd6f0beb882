"""Named errors. Each message says what went wrong and the command that fixes it."""

from __future__ import annotations


class PulseError(Exception):
    """Base class: a failure the user can act on. `str(err)` is the whole message."""


class ConfigError(PulseError):
    """A setting is missing or invalid."""


class ServiceUnavailable(PulseError):
    """A service of the stack does not answer."""


class ToolMissing(PulseError):
    """A program the stack needs (Java, an emulator, PostgreSQL) is not installed."""


class PortInUse(PulseError):
    """A port the stack wants is taken by another process."""


class StackStateError(PulseError):
    """The state directory cannot be used as it is."""
