"""The declared service levels (``monitoring.yaml`` at the repository root) and their model.

The same file serves both profiles. SQL under a ``warehouse`` key is BigQuery Standard SQL (run
as is on BigQuery, translated to DuckDB locally); SQL under a ``source`` key is PostgreSQL, run
as the owner role. Durations are ``30s``, ``10m``, ``12h``, ``7d``.

``PULSE_MONITOR_CONFIG`` points at another file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pulse_local.config import PROJECT_ROOT, load_options
from pulse_local.errors import ConfigError
from pulse_local.resources.models import Duration
from pulse_local.yamlfile import load_yaml_model

#: The declared service levels, at the repository root.
MONITORING_FILE = PROJECT_ROOT / "monitoring.yaml"

FailSeverity = Literal["warning", "error"]


class MonitorConfigError(ConfigError):
    """The monitoring file is missing, not YAML, or does not match its schema."""


class MonitorOptions(BaseSettings):
    """Environment knobs of the monitor (``PULSE_MONITOR_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="PULSE_MONITOR_", env_file=".env",
                                      extra="ignore")

    config: Path | None = Field(None, description="SLA file (default: monitoring.yaml).")
    lock_wait_seconds: float = Field(
        10.0, ge=0, description="How long to wait for the local warehouse file while a writer "
                                "(dbt) holds it before failing with WarehouseLocked.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Thresholds(_Strict):
    warn_after: Duration | None = None
    error_after: Duration | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Thresholds:
        if self.warn_after is None and self.error_after is None:
            raise ValueError("set warn_after and/or error_after")
        if self.warn_after and self.error_after and self.warn_after > self.error_after:
            raise ValueError("warn_after must not be longer than error_after")
        return self


class FreshnessSpec(_Thresholds):
    """The newest row of `table` (by the BigQuery SQL expression `timestamp`, a TIMESTAMP) must
    be younger than the thresholds."""

    table: str = Field(pattern=r"^[A-Za-z_][\w]*\.[A-Za-z_][\w]*$")
    timestamp: str
    where_to_look: str = ""


class SourceVsRaw(_Strict):
    """Row counts of source tables vs ``raw.<prefix><table>`` merged to the latest state."""

    tables: list[str]
    raw_dataset: str = "raw"
    #: As dbt's var raw_table_prefix; None = the warehouse's own naming (backend factory).
    raw_table_prefix: str | None = None
    tolerance: int = Field(0, ge=0)
    severity: FailSeverity = "error"
    #: Wait this long for an active CDC slot to confirm the WAL position taken after counting.
    catch_up_timeout: Duration = Field(default_factory=lambda: timedelta(seconds=10))
    where_to_look: str = ""


class CountComparison(_Strict):
    """``source`` (PostgreSQL, one integer) against ``warehouse`` (BigQuery SQL, one integer)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    source: str
    warehouse: str
    tolerance: int = Field(0, ge=0)
    severity: FailSeverity = "error"
    where_to_look: str = ""


class CompletenessSpec(_Strict):
    source_vs_raw: SourceVsRaw | None = None
    source_vs_warehouse: list[CountComparison] = Field(default_factory=list)


class CdcSpec(_Strict):
    """Thresholds on `pulse_local.cdc.lag`."""

    warn_seconds_behind: Duration | None = None
    error_seconds_behind: Duration | None = None
    warn_bytes_behind: int | None = Field(None, ge=0)
    error_bytes_behind: int | None = Field(None, ge=0)
    where_to_look: str = ""


class ConsumerSpec(_Strict):
    """The streaming consumer service's status file (``streaming.status.status_path(settings)``)."""

    heartbeat_error_after: Duration = Field(default_factory=lambda: timedelta(seconds=60))
    where_to_look: str = ""


class StreamingLagSpec(_Thresholds):
    """Newest event the source has accepted (``source``, PostgreSQL, a timestamptz) minus the
    newest message in the raw sink (``warehouse``, BigQuery SQL, a TIMESTAMP)."""

    source: str
    warehouse: str
    where_to_look: str = ""


class DeadLetterSpec(_Strict):
    """Backlog of the dead-letter subscription (peeked, never acked)."""

    #: Default: the subscription on the dead-letter topic of the first subscription declaring a
    #: dead_letter_policy in emulators/pubsub/resources.yaml.
    subscription: str | None = None
    warn_depth: int | None = Field(None, ge=1)
    error_depth: int | None = Field(1, ge=1)
    #: Count at most this many (the report says "at least N" beyond).
    max_count: int = Field(1000, ge=1)
    pull_timeout: float = Field(2.0, gt=0)
    where_to_look: str = ""


class StreamingSpec(_Strict):
    consumer: ConsumerSpec | None = None
    lag: StreamingLagSpec | None = None
    dead_letters: DeadLetterSpec | None = None


class DbtSpec(_Strict):
    """Failed/errored tests and models in dbt's last ``run_results.json``."""

    #: None (default): the newest build/test results `run_dbt` left in the state directory
    #: (kept runs ``<state_dir>/dbt/runs/*/``, else ``<state_dir>/dbt/target/``). A relative
    #: path is relative to the repository root.
    run_results: Path | None = None
    #: A missing file is a failure of this severity (None: not checked when missing).
    missing: FailSeverity | None = "error"
    where_to_look: str = ""

    def explicit_path(self) -> Path | None:
        if self.run_results is None:
            return None
        return self.run_results if self.run_results.is_absolute() else PROJECT_ROOT / self.run_results


class MonitorConfig(_Strict):
    """The whole monitoring file."""

    freshness: list[FreshnessSpec] = Field(default_factory=list)
    completeness: CompletenessSpec = CompletenessSpec()
    cdc: CdcSpec | None = None
    streaming: StreamingSpec = StreamingSpec()
    dbt: DbtSpec | None = None

    def with_freshness(self, table: str, **thresholds: object) -> MonitorConfig:
        """A copy with `table`'s freshness thresholds replaced (e.g. ``error_after="1s"``)."""
        specs = []
        found = False
        for spec in self.freshness:
            if spec.table == table:
                found = True
                spec = FreshnessSpec.model_validate({**spec.model_dump(), **thresholds})
            specs.append(spec)
        if not found:
            raise KeyError(f"no freshness SLA for {table!r}")
        return self.model_copy(update={"freshness": specs})


def load_config(path: Path | None = None) -> MonitorConfig:
    """Read and validate the monitoring file (default: ``$PULSE_MONITOR_CONFIG``, else
    ``monitoring.yaml`` at the repository root). Errors name the file and the field."""
    path = Path(path or load_options(MonitorOptions).config or MONITORING_FILE)
    return load_yaml_model(path, MonitorConfig, MonitorConfigError,
                           "the monitoring SLA file; set PULSE_MONITOR_CONFIG or restore "
                           "monitoring.yaml")
