"""Errors of the CDC service. Each message names the object and the command that fixes it."""

from __future__ import annotations

from pulse_local.errors import PulseError

#: How users re-synchronise the raw layer (documented in docs/cdc.md).
RESYNC_HINT = "python -m pulse_local.cdc resync"


class CdcError(PulseError):
    """Change data capture cannot go on."""


class CdcConfigError(CdcError):
    """The stream declaration is invalid."""


class SlotLostError(CdcError):
    """The replication slot is missing or invalidated: changes since the last landed one are gone."""


class SlotBusyError(CdcError):
    """Another process is reading the replication slot."""


class SchemaError(CdcError):
    """A source table cannot be represented (type change, no publication...)."""


class RawLayerVersionError(CdcError):
    """The landed raw layer was written by another version of the CDC (another shape)."""
