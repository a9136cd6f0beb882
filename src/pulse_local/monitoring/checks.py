"""The checks, by group, and `run_checks`.

Every group is a function ``(config, probes) -> list[CheckResult]``. `Probes` holds the
capabilities the checks use (a warehouse query function, the source database, the CDC lag, the
dead-letter reader, the consumer's status, a clock); `probes_for(settings)` builds the real ones
and tests pass fakes. The decisions themselves are the pure ``evaluate_*`` functions.

A check that cannot run (service down, relation missing, warehouse locked) is a failed check of
severity ``error`` whose detail is the cause: monitoring that cannot look is not green.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pulse_local.cdc.datastream import removing_sql
from pulse_local.config import Settings, load_options
from pulse_local.errors import NotAvailableOnProfile
from pulse_local.monitoring.config import (
    CdcSpec,
    ConsumerSpec,
    CountComparison,
    DbtSpec,
    DeadLetterSpec,
    FailSeverity,
    FreshnessSpec,
    MonitorConfig,
    MonitorOptions,
    StreamingLagSpec,
    load_config,
)
from pulse_local.monitoring.dead_letters import DeadLetterPeek, DeadLetterReader
from pulse_local.monitoring.report import CheckResult, MonitorReport, format_age, format_time
from pulse_local.monitoring.source import SourceDatabase, count_sql
from pulse_local.monitoring.warehouse import QueryFn

#: Check groups, in the order `run_checks` runs them (one Prefect task each in the flow).
GROUPS = ("freshness", "completeness", "cdc", "streaming", "dbt")


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
    from pulse_local.streaming.consumer import status_path

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
        warehouse=warehouse_query(settings, lock_wait_seconds=options.lock_wait_seconds),
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


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def could_not(name: str, group: str, exc: BaseException, where_to_look: str) -> CheckResult:
    """A check that could not run: failed, severity error, the cause as detail. What does not
    exist on this profile is said so, as a warning: never green, never a false alarm."""
    if isinstance(exc, NotAvailableOnProfile):
        return CheckResult(name, False, "warning", str(exc), None, where_to_look, group)
    return CheckResult(name, False, "error", f"could not check: {_first_line(exc)}", None,
                       where_to_look, group)


def as_utc(value: Any) -> datetime | None:
    """A warehouse/driver timestamp as an aware UTC datetime (naive values are UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return as_utc(datetime.fromisoformat(value))  # Python 3.11 reads a trailing Z
    raise TypeError(f"expected a timestamp, got {type(value).__name__} {value!r}")


def _limit(value: timedelta) -> str:
    """A declared threshold as written in monitoring.yaml (``90s``, ``15m``, ``1d``)."""
    from pulse_local.resources.models import format_duration

    return format_duration(value)


def _thresholds(warn: timedelta | None, error: timedelta | None) -> str:
    parts = ([f"warn after {_limit(warn)}"] if warn else []) + (
        [f"error after {_limit(error)}"] if error else [])
    return ", ".join(parts)


def _single(rows: list[tuple[Any, ...]]) -> Any:
    return rows[0][0] if rows and rows[0] else None


# --------------------------------------------------------------------------------------
# freshness
# --------------------------------------------------------------------------------------

def evaluate_freshness(spec: FreshnessSpec, newest: Any, now: datetime) -> CheckResult:
    """The newest row's age against the table's warn/error thresholds."""
    name = f"freshness:{spec.table}"
    where = spec.where_to_look or f"table {spec.table}"
    worst: FailSeverity = "error" if spec.error_after else "warning"
    newest_at = as_utc(newest)
    if newest_at is None:
        return CheckResult(name, False, worst, f"{spec.table} has no rows (nothing landed or "
                           f"built yet); SLA {_thresholds(spec.warn_after, spec.error_after)}",
                           None, where, "freshness")
    age = now - newest_at
    measured = (f"newest row {format_age(age)} old (max({spec.timestamp}) = "
                f"{format_time(newest_at)})")
    if spec.error_after and age > spec.error_after:
        return CheckResult(name, False, "error", f"{measured}, SLA error after "
                           f"{_limit(spec.error_after)}", newest_at + spec.error_after,
                           where, "freshness")
    if spec.warn_after and age > spec.warn_after:
        return CheckResult(name, False, "warning", f"{measured}, SLA warn after "
                           f"{_limit(spec.warn_after)}", newest_at + spec.warn_after,
                           where, "freshness")
    return CheckResult(name, True, "info",
                       f"{measured}; {_thresholds(spec.warn_after, spec.error_after)}",
                       None, where, "freshness")


def freshness_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    """One check per declared table: ``select max(<timestamp>) from <table>``."""
    results = []
    for spec in config.freshness:
        try:
            newest = _single(probes.warehouse(
                f"select max({spec.timestamp}) from {probes.raw_relation(spec.table)}"))
        except Exception as exc:  # noqa: BLE001 - the cause becomes the failed check's detail
            results.append(could_not(f"freshness:{spec.table}", "freshness", exc,
                                     spec.where_to_look or f"table {spec.table}"))
            continue
        results.append(evaluate_freshness(spec, newest, probes.now()))
    return results


# --------------------------------------------------------------------------------------
# completeness
# --------------------------------------------------------------------------------------

def evaluate_count(name: str, source_label: str, source: Any, target_label: str, target: Any,
                   *, tolerance: int = 0, severity: FailSeverity = "error",
                   where_to_look: str = "", note: str = "") -> CheckResult:
    """Two row counts that must agree within `tolerance`."""
    s, t = int(source or 0), int(target or 0)
    diff = s - t
    suffix = f" {note}" if note else ""
    if abs(diff) <= tolerance:
        within = f" (tolerance {tolerance})" if tolerance else ""
        return CheckResult(name, True, "info",
                           f"{source_label} {s} rows, {target_label} {t}{within}", None,
                           where_to_look, "completeness")
    if diff > 0:
        detail = (f"{diff} rows missing from {target_label}: {source_label} has {s}, "
                  f"{target_label} {t}{suffix}")
    else:
        detail = (f"{-diff} rows more in {target_label} than in {source_label} ({t} vs {s}): "
                  f"deletes not propagated, or rows written after the source was "
                  f"counted{suffix}")
    return CheckResult(name, False, severity, detail, None, where_to_look, "completeness")


def raw_current_count_sql(relation: str, key: Sequence[str], mode: str) -> str:
    """BigQuery SQL counting the current (non-deleted) rows of a Datastream raw table.

    merge: Datastream applied the changes, ``count(*)``; a keyless table is append-only there,
    with ``is_deleted``: rows added minus rows deleted. append-only (no ``is_deleted`` in that
    mode, `pulse_local.cdc.datastream`): with a key, the newest change per key (as dbt's
    ``datastream_current`` macro orders them) that is not a delete; without one, images added
    (INSERT, UPDATE-INSERT) minus images removed (DELETE, UPDATE-DELETE).
    """
    meta = "datastream_metadata"
    removed = removing_sql(f"{meta}.change_type")
    if mode == "merge" and key:
        return f"select count(*) from {relation}"
    if mode == "merge":
        return (f"select countif(not {meta}.is_deleted) - countif({meta}.is_deleted) "
                f"from {relation}")
    if not key:
        return f"select countif(not ({removed})) - countif({removed}) from {relation}"
    return (
        f"select count(*) from (select {meta}.change_type as change_type from {relation} "
        f"where true qualify row_number() over (partition by {', '.join(key)} order by "
        f"{meta}.source_timestamp desc, {meta}.change_sequence_number desc, "
        f"case {meta}.change_type when 'UPDATE-DELETE' then 0 else 1 end desc) = 1) "
        f"where not ({removing_sql('change_type')})"
    )


_CDC_WAIT_NOTES = {
    "timeout": "(the CDC had not confirmed the source snapshot's WAL position yet: see cdc:lag)",
    "missing": "(the CDC replication slot does not exist: see cdc:lag)",
    "inactive": "(no CDC process is streaming the slot: `pulse-local up` starts it, "
                "`python -m pulse_local.cdc drain` lands what is pending)",
}


def completeness_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    """Source counts (one snapshot) vs the raw layer merged to its latest state, and vs the
    declared warehouse counts."""
    spec = config.completeness
    raw = spec.source_vs_raw
    raw_tables = raw.tables if raw else []
    prefix = (raw.raw_table_prefix if raw and raw.raw_table_prefix is not None
              else probes.raw_table_prefix)
    names = {t: f"completeness:{raw.raw_dataset}.{prefix}{t}"
             for t in raw_tables} if raw else {}
    queries = {f"raw:{t}": count_sql(t) for t in raw_tables}
    queries.update({f"cmp:{c.name}": c.source for c in spec.source_vs_warehouse})
    if not queries:
        return []
    raw_where = (raw.where_to_look if raw else "") or "`python -m pulse_local.cdc lag`"
    try:
        snapshot = probes.source.snapshot(queries)
    except Exception as exc:  # noqa: BLE001 - every completeness check reports the cause
        return ([could_not(names[t], "completeness", exc, raw_where) for t in raw_tables]
                + [could_not(f"completeness:{c.name}", "completeness", exc, c.where_to_look)
                   for c in spec.source_vs_warehouse])
    results: list[CheckResult] = []
    if raw is not None and raw_tables:
        results += _source_vs_raw(raw, raw_tables, names, snapshot, probes, raw_where)
    for comparison in spec.source_vs_warehouse:
        results.append(_source_vs_warehouse(comparison, snapshot.values[f"cmp:{comparison.name}"],
                                            probes))
    return results


def _source_vs_raw(raw: Any, tables: list[str], names: dict[str, str], snapshot: Any,
                   probes: Probes, where: str) -> list[CheckResult]:
    try:
        keys = probes.source.primary_keys(tables)
        wait = (probes.source.wait_for_slot(probes.slot(), snapshot.wal_lsn,
                                            raw.catch_up_timeout.total_seconds())
                if snapshot.wal_lsn else "caught_up")
    except Exception as exc:  # noqa: BLE001
        return [could_not(names[t], "completeness", exc, where) for t in tables]
    note = _CDC_WAIT_NOTES.get(wait, "")
    results = []
    for table in tables:
        prefix = raw.raw_table_prefix if raw.raw_table_prefix is not None else probes.raw_table_prefix
        relation = f"{raw.raw_dataset}.{prefix}{table}"
        try:
            sql = raw_current_count_sql(relation, keys.get(table, []), probes.raw_mode(table))
            target = _single(probes.warehouse(sql))
        except Exception as exc:  # noqa: BLE001
            results.append(could_not(names[table], "completeness", exc, where))
            continue
        results.append(evaluate_count(
            names[table], f"source {table}", snapshot.values[f"raw:{table}"], relation, target,
            tolerance=raw.tolerance, severity=raw.severity,
            where_to_look=f"{where}; source table {table} vs {relation}", note=note))
    return results


def _source_vs_warehouse(c: CountComparison, source_value: Any, probes: Probes) -> CheckResult:
    name = f"completeness:{c.name}"
    try:
        target = _single(probes.warehouse(c.warehouse))
    except Exception as exc:  # noqa: BLE001
        return could_not(name, "completeness", exc, c.where_to_look)
    return evaluate_count(name, "source", source_value, "warehouse", target,
                          tolerance=c.tolerance, severity=c.severity,
                          where_to_look=c.where_to_look)


# --------------------------------------------------------------------------------------
# CDC lag
# --------------------------------------------------------------------------------------

def evaluate_cdc_lag(spec: CdcSpec, lag: Any, now: datetime) -> CheckResult:
    """`pulse_local.cdc.Lag` against the byte and second thresholds."""
    name = "cdc:lag"
    where = spec.where_to_look or "`pulse-local logs cdc`; `python -m pulse_local.cdc lag`"
    if lag.confirmed_flush_lsn is None:
        return CheckResult(name, False, "error", lag.summary(), None, where, "cdc")
    secs, behind = lag.seconds_behind, lag.bytes_behind
    state = "active" if lag.slot_active else "idle (no CDC process attached)"
    measured = (f"slot {lag.slot} {state}: {behind} WAL bytes and "
                f"{'n/a' if secs is None else format_age(secs)} behind")
    if secs is None:
        return CheckResult(name, False, "error", f"{measured}: the CDC has landed nothing yet",
                           None, where, "cdc")
    complete_at = now - timedelta(seconds=secs)
    problems: list[tuple[FailSeverity, str]] = []
    limit_s = [("error", spec.error_seconds_behind), ("warning", spec.warn_seconds_behind)]
    for severity, limit in limit_s:
        if limit is not None and secs > limit.total_seconds():
            problems.append((severity, f"> {_limit(limit)}"))  # type: ignore[arg-type]
            break
    limit_b = [("error", spec.error_bytes_behind), ("warning", spec.warn_bytes_behind)]
    for severity, limit_bytes in limit_b:
        if limit_bytes is not None and behind is not None and behind > limit_bytes:
            problems.append((severity, f"> {limit_bytes} bytes"))  # type: ignore[arg-type]
            break
    if not problems:
        return CheckResult(name, True, "info", measured, None, where, "cdc")
    severity: FailSeverity = "error" if any(s == "error" for s, _ in problems) else "warning"
    return CheckResult(name, False, severity,
                       f"{measured} ({', '.join(p for _, p in problems)}); raw layer complete "
                       f"up to {format_time(complete_at)}", complete_at, where, "cdc")


def cdc_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    spec = config.cdc
    if spec is None:
        return []
    try:
        lag = probes.cdc_lag()
    except Exception as exc:  # noqa: BLE001
        return [could_not("cdc:lag", "cdc", exc,
                          spec.where_to_look or "`pulse-local logs cdc`")]
    if hasattr(lag, "states"):  # Datastream (gcp): stream states and slot bytes
        return [evaluate_datastream_lag(spec, lag)]
    return [evaluate_cdc_lag(spec, lag, probes.now())]


def evaluate_datastream_lag(spec: CdcSpec, lag: Any) -> CheckResult:
    """`cdc.provision.DatastreamLag`: every stream RUNNING, every slot present and within
    the byte thresholds. (Seconds behind need Datastream's own metrics: not measured here.)"""
    name = "cdc:lag"
    where = spec.where_to_look or ("`gcloud datastream streams describe <id>`; "
                                   "`python -m pulse_local.cdc lag`")
    measured = lag.summary()
    if any(state != "RUNNING" for state in lag.states.values()):
        return CheckResult(name, False, "error", f"{measured}: a stream is not running", None,
                           where, "cdc")
    if any(b is None for b in lag.bytes_behind.values()):
        return CheckResult(name, False, "error", f"{measured}: a replication slot is missing "
                           "or Datastream never confirmed a position on it", None, where, "cdc")
    worst = max((b for b in lag.bytes_behind.values() if b is not None), default=0)
    for severity, limit in (("error", spec.error_bytes_behind),
                            ("warning", spec.warn_bytes_behind)):
        if limit is not None and worst > limit:
            return CheckResult(name, False, severity,  # type: ignore[arg-type]
                               f"{measured} (> {limit} bytes)", None, where, "cdc")
    return CheckResult(name, True, "info", measured, None, where, "cdc")


# --------------------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------------------

def evaluate_consumer_status(spec: ConsumerSpec, status: dict[str, Any] | None, now: datetime,
                             path: str = "") -> CheckResult:
    """The consumer's status file: present, fresh heartbeat, subscribed, not stopped."""
    name = "streaming:consumer"
    where = spec.where_to_look or "`pulse-local logs streaming`"
    if status is None:
        return CheckResult(name, False, "error",
                           f"the streaming consumer has never reported (no status file {path})",
                           None, where, "streaming")
    updated = as_utc(datetime.fromtimestamp(float(status.get("updated_at", 0)), UTC))
    assert updated is not None
    age = now - updated
    counts = (f"received {status.get('received', 0)}, written {status.get('written', 0)}, "
              f"dead-lettered {status.get('dead_lettered', 0)}, in flight "
              f"{status.get('in_flight', 0)}")
    errors = status.get("errors") or []
    last_error = f"; last error: {str(errors[-1])[:200]}" if errors else ""
    if status.get("stopped"):
        return CheckResult(name, False, "error", f"the consumer (pid {status.get('pid')}) "
                           f"stopped at {format_time(updated)} ({counts}){last_error}",
                           updated, where, "streaming")
    if age > spec.heartbeat_error_after:
        return CheckResult(name, False, "error", f"heartbeat {format_age(age)} old (> "
                           f"{_limit(spec.heartbeat_error_after)}): the consumer (pid "
                           f"{status.get('pid')}) is stuck or gone ({counts}){last_error}",
                           updated, where, "streaming")
    if not status.get("subscribed"):
        return CheckResult(name, False, "error", "the consumer runs but has no open stream "
                           f"(Pub/Sub down or subscription missing){last_error}", updated,
                           where, "streaming")
    return CheckResult(name, True, "info", f"alive, heartbeat {format_age(age)} ago; {counts}"
                       f"{last_error}", None, where, "streaming")


def evaluate_streaming_lag(spec: StreamingLagSpec, source_newest: Any, sink_newest: Any,
                           now: datetime) -> CheckResult:
    """Newest event accepted at the source minus the newest message in the raw sink."""
    name = "streaming:lag"
    where = spec.where_to_look or "`pulse-local logs streaming`; table raw.pubsub_response_events"
    accepted, sunk = as_utc(source_newest), as_utc(sink_newest)
    if accepted is None:
        return CheckResult(name, True, "info", "no event accepted at the source yet", None,
                           where, "streaming")
    behind = (accepted - sunk) if sunk is not None else (now - accepted)
    behind = max(behind, timedelta(0))
    measured = (f"newest accepted event {format_time(accepted)}, newest message in the raw "
                f"sink {format_time(sunk) if sunk else 'none'}: {format_age(behind)} behind")
    since = sunk or accepted
    if spec.error_after and behind > spec.error_after:
        return CheckResult(name, False, "error", f"{measured} (> {_limit(spec.error_after)})",
                           since, where, "streaming")
    if spec.warn_after and behind > spec.warn_after:
        return CheckResult(name, False, "warning",
                           f"{measured} (> {_limit(spec.warn_after)})", since, where,
                           "streaming")
    return CheckResult(name, True, "info", measured, None, where, "streaming")


def evaluate_dead_letters(spec: DeadLetterSpec, peek: DeadLetterPeek) -> CheckResult:
    """The dead-letter backlog against the depth thresholds."""
    name = "streaming:dead_letters"
    where = spec.where_to_look or (
        f"subscription {peek.subscription} (`gcloud pubsub subscriptions pull "
        f"{peek.subscription}`, attributes reason/reason_detail); `pulse-local logs streaming`")
    count = f"{peek.count}{'+' if peek.capped else ''}"
    if peek.count == 0:
        return CheckResult(name, True, "info", f"no dead letters in {peek.subscription}", None,
                           where, "streaming")
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(peek.reasons.items()))
    detail = (f"{count} dead-lettered messages in {peek.subscription} (reasons: {reasons}), "
              f"oldest published {format_time(peek.oldest) if peek.oldest else 'unknown'}")
    if spec.error_depth is not None and peek.count >= spec.error_depth:
        return CheckResult(name, False, "error", detail, peek.oldest, where, "streaming")
    if spec.warn_depth is not None and peek.count >= spec.warn_depth:
        return CheckResult(name, False, "warning", detail, peek.oldest, where, "streaming")
    return CheckResult(name, True, "info", detail, None, where, "streaming")


def streaming_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    spec = config.streaming
    results: list[CheckResult] = []
    if spec.consumer is not None:
        try:
            status = probes.consumer_status()
            results.append(evaluate_consumer_status(spec.consumer, status, probes.now(),
                                                    probes.consumer_status_path))
        except Exception as exc:  # noqa: BLE001
            results.append(could_not("streaming:consumer", "streaming", exc,
                                     spec.consumer.where_to_look))
    if spec.lag is not None:
        try:
            accepted = probes.source.snapshot({"accepted": spec.lag.source}).values["accepted"]
            sunk = _single(probes.warehouse(spec.lag.warehouse))
            results.append(evaluate_streaming_lag(spec.lag, accepted, sunk, probes.now()))
        except Exception as exc:  # noqa: BLE001
            results.append(could_not("streaming:lag", "streaming", exc, spec.lag.where_to_look))
    if spec.dead_letters is not None:
        dl = spec.dead_letters
        try:
            subscription = dl.subscription or probes.default_dead_letter_subscription()
            peek = probes.dead_letters.peek(subscription, dl.max_count, dl.pull_timeout)
            results.append(evaluate_dead_letters(dl, peek))
        except Exception as exc:  # noqa: BLE001
            results.append(could_not("streaming:dead_letters", "streaming", exc,
                                     dl.where_to_look))
    return results


# --------------------------------------------------------------------------------------
# dbt
# --------------------------------------------------------------------------------------

_FAILED = {"fail": "error", "error": "error", "runtime error": "error", "warn": "warning"}


def _node_name(unique_id: str) -> str:
    parts = unique_id.split(".")
    if parts[0] == "test" and len(parts) >= 3:
        return parts[2]
    return parts[-1]


def evaluate_run_results(spec: DbtSpec, data: dict[str, Any] | None,
                         path: Path | None) -> list[CheckResult]:
    """Failed / errored / warning nodes of dbt's ``run_results.json`` (one check each), or one
    passing summary check ``dbt:run_results``."""
    where = spec.where_to_look or (f"{path}; dbt's log (<state_dir>/dbt/logs/dbt.log)" if path
                                   else "the dbt_build / etl_pipeline flow runs")
    if data is None:
        if spec.missing is None:
            return []
        found = f"at {path}" if path else "for this state directory"
        return [CheckResult("dbt:run_results", False, spec.missing,
                            f"no dbt results {found}: dbt has not run here (build with the "
                            "etl_pipeline or dbt_build flow, or `run_dbt(settings, ['build'])`)",
                            None, where, "dbt")]
    metadata = data.get("metadata") or {}
    generated = as_utc(metadata.get("generated_at"))
    command = str((data.get("args") or {}).get("which", "?"))
    nodes = data.get("results") or []
    results: list[CheckResult] = []
    by_status: dict[str, int] = {}
    for node in nodes:
        status = str(node.get("status", "?"))
        by_status[status] = by_status.get(status, 0) + 1
        severity = _FAILED.get(status)
        if severity is None:
            continue
        uid = str(node.get("unique_id", "?"))
        kind, node_name = uid.split(".")[0], _node_name(uid)
        failures = node.get("failures")
        message = " ".join(str(node.get("message") or "").split())[:300]
        rows = f"{failures} failing rows; " if failures else ""
        results.append(CheckResult(
            f"dbt:{node_name}", False, severity,  # type: ignore[arg-type]
            f"{kind} {node_name} {status} in dbt {command}: {rows}{message}".rstrip("; "),
            generated, f"`dbt build --select {node_name}` in dbt/; {where}", "dbt"))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "no nodes"
    when = format_time(generated) if generated else "unknown time"
    summary = f"dbt {command} at {when}: {counts}"
    if command not in ("build", "test"):
        results.insert(0, CheckResult(
            "dbt:run_results", False, "warning",
            f"{summary}: the last dbt invocation was not a build or test, so no test results "
            "are available", generated, where, "dbt"))
    elif not results:  # with failures, the failing nodes are the checks
        results.append(CheckResult("dbt:run_results", True, "info", summary, None, where, "dbt"))
    return results


def dbt_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    spec = config.dbt
    if spec is None:
        return []
    try:
        path = spec.explicit_path() or probes.dbt_run_results()
    except Exception as exc:  # noqa: BLE001
        return [could_not("dbt:run_results", "dbt", exc, spec.where_to_look)]
    if path is None:
        return evaluate_run_results(spec, None, None)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = None
    except (OSError, ValueError) as exc:
        return [could_not("dbt:run_results", "dbt", exc, str(path))]
    return evaluate_run_results(spec, data, path)


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------

_GROUP_FUNCTIONS: dict[str, Callable[[MonitorConfig, Probes], list[CheckResult]]] = {
    "freshness": freshness_checks,
    "completeness": completeness_checks,
    "cdc": cdc_checks,
    "streaming": streaming_checks,
    "dbt": dbt_checks,
}


def run_group(group: str, settings: Settings, config: MonitorConfig | None = None, *,
              probes: Probes | None = None) -> list[CheckResult]:
    """The checks of one group (``freshness``, ``completeness``, ``cdc``, ``streaming``,
    ``dbt``); what one task of the monitor_pipeline flow runs."""
    try:
        function = _GROUP_FUNCTIONS[group]
    except KeyError:
        raise ValueError(f"unknown check group {group!r}; groups: {', '.join(GROUPS)}") from None
    return function(config or load_config(), probes or probes_for(settings))


def run_checks(settings: Settings, config: MonitorConfig | None = None, *,
               groups: Sequence[str] | None = None, probes: Probes | None = None) -> MonitorReport:
    """Run every check group (or `groups`) and return the report. Never raises for a failing
    check: a failure, including a check that could not run, is a result in the report."""
    config = config or load_config()
    probes = probes or probes_for(settings)
    report = MonitorReport(checked_at=probes.now())
    for group in groups or GROUPS:
        report.extend(run_group(group, settings, config, probes=probes))
    return report
