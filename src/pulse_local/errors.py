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


class NotAvailableOnProfile(PulseError):
    """What was asked for does not exist on this profile (e.g. a local status file on a Cloud
    Run job); the message says where to look instead."""


class GcpSettingMissing(ConfigError):
    """A setting the gcp profile needs is unset (its local default would point elsewhere)."""


def missing_credentials(what: str) -> ConfigError:
    """The error for a GCP client built without Application Default Credentials."""
    return ConfigError(
        f"no Google credentials for {what}: run `gcloud auth application-default login` (or "
        "set GOOGLE_APPLICATION_CREDENTIALS), or work offline with PULSE_PROFILE=local")


class EmulatorEndpointMissing(ConfigError):
    """On profile local, a service found no emulator endpoint and refused to reach Google."""


class EmulatorStateError(PulseError):
    """The emulators' state could not be saved on `down` or restored on `up`."""


class SnapshotError(PulseError):
    """A stack snapshot cannot be saved, found or restored as asked."""


class SnapshotNotFound(SnapshotError):
    """No snapshot of that name (or no such file)."""


class SnapshotCorrupt(SnapshotError):
    """A snapshot file is truncated, damaged or not a snapshot: nothing was touched."""


class SnapshotIncompatible(SnapshotError):
    """A sound snapshot this code cannot restore faithfully (newer schema, other PostgreSQL
    major, another format, other project names): nothing was touched."""
