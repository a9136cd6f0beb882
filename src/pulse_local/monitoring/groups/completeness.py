"""Completeness: source counts against the raw layer (merged to its latest state) and the
declared warehouse counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulse_local.cdc.datastream import removing_sql
from pulse_local.monitoring.config import (
    CountComparison,
    FailSeverity,
    MonitorConfig,
)
from pulse_local.monitoring.groups.common import (
    could_not,
    single_value,
)
from pulse_local.monitoring.probes import Probes
from pulse_local.monitoring.report import CheckResult
from pulse_local.monitoring.source import count_sql


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
            target = single_value(probes.warehouse(sql))
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
        target = single_value(probes.warehouse(c.warehouse))
    except Exception as exc:  # noqa: BLE001
        return could_not(name, "completeness", exc, c.where_to_look)
    return evaluate_count(name, "source", source_value, "warehouse", target,
                          tolerance=c.tolerance, severity=c.severity,
                          where_to_look=c.where_to_look)
