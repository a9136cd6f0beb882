"""The stream declaration (`emulators/datastream/stream.yaml`): one file for the local CDC service
and for the real Datastream stream on GCP (`pulse_local.cdc.provision`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulse_local.cdc.errors import CdcConfigError
from pulse_local.config import PROJECT_ROOT, Settings
from pulse_local.yamlfile import load_yaml_model

#: Where the declaration lives in the repository.
STREAM_FILE = PROJECT_ROOT / "emulators" / "datastream" / "stream.yaml"

Mode = Literal["merge", "append-only"]
_DURATION = re.compile(r"^(\d+)(s|m|h)$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class SourceConfig(BaseModel):
    """Where changes come from."""

    model_config = ConfigDict(extra="forbid")

    #: Datastream connection profile id (gcp); locally the connection is `settings.admin_dsn()`.
    connection_profile: str = "pulse-postgres"
    publication: str = "pulse_pipeline"
    replication_slot: str = "pulse_datastream"
    schema_name: str = Field(default="public", alias="schema")
    #: Copy existing rows before streaming changes (Datastream's backfill_all / backfill_none).
    backfill: bool = True
    max_concurrent_backfill_tasks: int = Field(default=4, ge=1, le=50)
    #: GCP: Secret Manager secret holding the password of the Datastream login (the user of
    #: PULSE_ADMIN_DATABASE_URL); the connection profile refers to it, the password is never
    #: read or printed here.
    password_secret: str = "pulse-datastream-password"

    @field_validator("publication", "replication_slot")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError(f"{value!r} is not a lower-case PostgreSQL identifier ([a-z_][a-z0-9_]*)")
        return value


class DestinationConfig(BaseModel):
    """Where changes land: BigQuery dataset (gcp) / Parquet files + DuckDB views (local)."""

    model_config = ConfigDict(extra="forbid")

    connection_profile: str = "pulse-bigquery"
    dataset: str = "raw"
    #: Datastream's data_freshness (gcp): how stale BigQuery may be in exchange for cost.
    data_freshness: str = "15m"
    #: Default write mode of tables not listed under `tables`.
    mode: Mode = "merge"
    #: Local landing directory, relative to the state directory (or absolute).
    path: str = "warehouse/raw"
    #: Local service: land a batch at least this often while changes arrive.
    flush_interval_ms: int = Field(default=200, ge=10, le=60_000)
    #: Local service: land a batch early once it holds this many changes.
    max_batch_changes: int = Field(default=50_000, ge=1)

    @field_validator("data_freshness")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"{value!r} is not a duration like 90s, 15m or 1h")
        return value

    @property
    def data_freshness_seconds(self) -> int:
        match = _DURATION.match(self.data_freshness)
        assert match is not None
        return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


class TableConfig(BaseModel):
    """Per-table settings."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = None


class StreamConfig(BaseModel):
    """The whole declaration."""

    model_config = ConfigDict(extra="forbid")

    name: str = "pulse-postgres-raw"
    display_name: str = "Pulse Postgres -> raw"
    source: SourceConfig = SourceConfig()
    destination: DestinationConfig = DestinationConfig()
    tables: dict[str, TableConfig] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _stream_id(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9-]{0,62}$", value):
            raise ValueError(f"{value!r} is not a Datastream stream id (lower case, digits, '-')")
        return value

    def mode_of(self, table: str) -> Mode:
        """The write mode configured for `table` (its own, else the default)."""
        own = self.tables.get(table)
        return own.mode if own is not None and own.mode is not None else self.destination.mode

    def raw_dir(self, settings: Settings) -> Path:
        """The local landing directory of this stream."""
        path = Path(self.destination.path)
        return path if path.is_absolute() else settings.state_dir / path


def load_stream_config(path: Path | None = None) -> StreamConfig:
    """Read and validate the stream declaration; errors name the file and the field."""
    return load_yaml_model(path or STREAM_FILE, StreamConfig, CdcConfigError,
                           "the CDC stream declaration")
