"""What the checks read: `Probes`, one capability per field, and `probes_for(settings)`, the
real ones (tests pass fakes)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pulse_local.config import Settings, load_options
from pulse_local.errors import NotAvailableOnProfile
from pulse_local.monitoring.config import MonitorOptions
from pulse_local.monitoring.dead_letters import DeadLetterReader
from pulse_local.monitoring.source import SourceDatabase
from pulse_local.monitoring.warehouse import QueryFn


@dataclass
class Probes:
    """What the checks read. Every field is a capability; `probes_for` builds the real ones."""

    warehouse: QueryFn
    source: SourceDatabase
    cdc_lag: Callable[[], Any]  #: () -> pulse_local.cdc.Lag
    dead_letters: DeadLetterReader
    consumer_status: Callable[[], dict[str, Any] | None]
    #: Write mode of a raw table ("append-only" / "merge"), from the stream declaration.
    raw_mode: Callable[[str], str]
    slot: Callable[[], str]
    default_dead_letter_subscription: Callable[[], str]
    #: dbt's newest run_results.json of a build/test (None when dbt never ran here).
    dbt_run_results: Callable[[], Path | None] = field(default=lambda: None)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: Where the status file is (for messages only).
    consumer_status_path: str = ""
    #: Prefix of raw table names in this warehouse (``public_``: Datastream's
    #: <schema>_<table>, on both profiles), from the backend factory (`probes_for`); a prefix
    #: set in monitoring.yaml wins. Empty for fakes that name their tables ``raw.<table>``.
    raw_table_prefix: str = ""
    #: Source tables Datastream lands in ``raw`` (the stream declaration's tables): only these
    #: get the prefix; other raw tables (``pubsub_response_events``, written by a BigQuery
    #: subscription) keep their name. None: every ``raw.*`` table (fakes).
    datastream_tables: frozenset[str] | None = None

    def raw_relation(self, relation: str, prefix: str | None = None) -> str:
        """``raw.<table>`` as this warehouse names it."""
        dataset, _, table = relation.partition(".")
        if dataset != "raw" or not table:
            return relation
        if self.datastream_tables is not None and table not in self.datastream_tables:
            return relation
        return f"raw.{self.raw_table_prefix if prefix is None else prefix}{table}"


def probes_for(settings: Settings, options: MonitorOptions | None = None) -> Probes:
    """The real probes for `settings` (nothing connects until a check runs)."""
    from pulse_local.backends import emulator_endpoints, for_profile
    from pulse_local.monitoring.dead_letters import (
        PubSubDeadLetters,
        default_dead_letter_subscription,
    )
    from pulse_local.monitoring.source import PostgresSource
    from pulse_local.monitoring.warehouse import warehouse_query
    from pulse_local.streaming.status import status_path

    options = options or load_options(MonitorOptions)
    status_file = status_path(settings)
    backends = for_profile(settings)

    def on_this_machine(what: str, read: Callable[[], Any]) -> Callable[[], Any]:
        if backends.run_files_here:
            return read

        def unavailable() -> Any:
            raise NotAvailableOnProfile(
                f"{what} is not available on profile {settings.profile}: it is a file of the "
                "local stack, which a Cloud Run job does not have; look at the job's logs "
                "(Cloud Logging) and its Prefect flow run instead")
        return unavailable

    @functools.cache
    def stream_config() -> Any:
        from pulse_local.cdc import load_stream_config

        return load_stream_config()

    return Probes(
        warehouse=warehouse_query(backends.warehouse,
                                  lock_wait_seconds=options.lock_wait_seconds),
        source=PostgresSource(settings.admin_dsn()),
        cdc_lag=lambda: backends.change_streams.lag(settings),
        dead_letters=PubSubDeadLetters(settings.project,
                                       emulator_endpoints(settings).pubsub),
        consumer_status=on_this_machine("the streaming consumer's status file",
                                        lambda: read_status_file(status_file)),
        raw_mode=lambda table: str(stream_config().mode_of(table)),
        slot=lambda: str(stream_config().source.replication_slot),
        default_dead_letter_subscription=lambda: default_dead_letter_subscription(
            settings.profile),
        dbt_run_results=on_this_machine("dbt's run_results.json",
                                        lambda: latest_run_results(settings)),
        consumer_status_path=str(status_file),
        raw_table_prefix=backends.raw_table_prefix,
        datastream_tables=frozenset(stream_config().tables) or None,
    )


def _invocation(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("args", {}).get("which"))
    except (OSError, ValueError, AttributeError):
        return None


def latest_run_results(settings: Settings) -> Path | None:
    """The newest ``run_results.json`` of a dbt build/test that `run_dbt` left for this state
    directory: kept runs (``pulse_local.warehouse.runs``) and ``<dbt work dir>/target``, newest
    first; the newest file of any command when none is a build/test; None when dbt never ran."""
    from pulse_local.warehouse.dbt import dbt_work_dir
    from pulse_local.warehouse.runs import runs_dir

    candidates = [p for p in runs_dir(settings).glob("*/run_results.json") if p.is_file()]
    target = dbt_work_dir(settings) / "target" / "run_results.json"
    if target.is_file():
        candidates.append(target)
    candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if _invocation(path) in ("build", "test"):
            return path
    return candidates[0] if candidates else None


def read_status_file(path: Path) -> dict[str, Any] | None:
    """The consumer's status JSON, or None when it has never written one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}): restart the consumer") from None
    return data if isinstance(data, dict) else None
