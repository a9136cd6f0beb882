"""The batch path's steps, shared by the `etl_pipeline` flow and `pulse-local run`.

    source = check_source(settings)        # migrations applied, publication present, row counts
    drained = drain_changes(settings)      # CDC: everything committed so far lands in raw
    ...                                    # dbt build (flows/dbt_build.py)
    counts = validate_warehouse(settings)  # source vs staging vs facts, raises on a mismatch

Every function works on both profiles: Postgres (local server or Cloud SQL) through psycopg,
the warehouse through the backend factory, the same SQL (datasets ``staging`` and ``dw`` have
the same names on DuckDB and BigQuery).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulse_local.config import Settings
from pulse_local.errors import PulseError, ServiceUnavailable


class SourceNotReady(PulseError):
    """The source database is not in the state the pipeline needs."""


class ValidationFailed(PulseError):
    """The warehouse disagrees with the source after a build."""


#: Source tables whose rows the pipeline counts (all published for CDC).
COUNTED_TABLES = ("organizations", "users", "assessments", "questions", "assessment_runs",
                  "responses", "answers")


def _connect_source(settings: Settings) -> Any:
    """An owner-role connection to the source database, or `ServiceUnavailable` saying how to
    bring it back."""
    import psycopg

    try:
        return psycopg.connect(settings.admin_dsn(), connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(
            f"the source PostgreSQL does not answer ({reason}): `pulse-local status` shows it, "
            "`pulse-local up` restarts it (gcp: check Cloud SQL and PULSE_ADMIN_DATABASE_URL)"
        ) from None


def source_counts(settings: Settings) -> dict[str, int]:
    """Rows per counted source table, read as the owner role (row-level security bypassed)."""
    with _connect_source(settings) as conn:
        return {
            table: int(conn.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]
            for table in COUNTED_TABLES
        }


def check_source(settings: Settings) -> dict[str, int]:
    """Migrations applied and the CDC publication present; return the row counts.

    Raises `SourceNotReady` naming what is missing and the command that fixes it."""
    from pulse_local.cdc import load_stream_config
    from pulse_local.source.migrations import applied_versions, discover

    wanted = [m.version for m in discover()]
    missing = sorted(set(wanted) - set(applied_versions(settings)))
    if missing:
        raise SourceNotReady(
            f"source migrations {', '.join(missing)} not applied: run "
            f"`pulse-local migrate --profile {settings.profile}`")
    publication = load_stream_config().source.publication
    with _connect_source(settings) as conn:
        found = conn.execute("select 1 from pg_publication where pubname = %s",
                             (publication,)).fetchone()
    if found is None:
        raise SourceNotReady(
            f"publication {publication!r} missing in the source database: CDC has nothing to "
            f"read; run `pulse-local migrate --profile {settings.profile}` (migration 0003)")
    return source_counts(settings)


def drain_changes(settings: Settings, timeout: float = 300.0) -> dict[str, object]:
    """Land every change committed so far in the raw layer, through the profile's change
    streams: locally the CDC batch mode (waits for the stack's `cdc` service when it holds the
    slot); on GCP a wait on Datastream (streams RUNNING, slots caught up), never the local
    engine."""
    from pulse_local.backends import for_profile

    return for_profile(settings).change_streams.catch_up(settings, timeout=timeout)


@dataclass(frozen=True)
class LayerCounts:
    """Rows of the same things in each layer."""

    source_responses: int
    staging_responses: int
    fact_responses: int
    source_users: int
    current_users: int

    def summary(self) -> str:
        return (f"responses: source {self.source_responses}, staging {self.staging_responses}, "
                f"fact {self.fact_responses}; users: source {self.source_users}, "
                f"current in dim_user_scd {self.current_users}")


def layer_counts(settings: Settings) -> LayerCounts:
    """Count responses and users in the source, staging and the dimensional model."""
    from pulse_local.backends import for_profile

    warehouse = for_profile(settings).warehouse
    source = source_counts(settings)
    row = warehouse.query_bigquery_sql(
        "select (select count(*) from staging.stg_responses), "
        "(select count(*) from dw.fact_response), "
        "(select count(*) from dw.dim_user_scd where is_current)")[0]
    return LayerCounts(source["responses"], int(row[0]), int(row[1]), source["users"], int(row[2]))


def validate_warehouse(settings: Settings) -> LayerCounts:
    """After CDC and dbt: every source response and user is in the model, nothing doubled.

    Raises `ValidationFailed` with the counts that disagree."""
    counts = layer_counts(settings)
    problems = []
    if not counts.source_responses == counts.staging_responses == counts.fact_responses:
        problems.append(
            f"responses differ: source {counts.source_responses}, staging "
            f"{counts.staging_responses}, dw.fact_response {counts.fact_responses}")
    if counts.source_users != counts.current_users:
        problems.append(f"users differ: source {counts.source_users}, current rows in "
                        f"dw.dim_user_scd {counts.current_users}")
    if problems:
        raise ValidationFailed(
            "; ".join(problems) + ". Changes not landed yet? Check `pulse-local status` (cdc "
            "lag), then rerun the etl_pipeline flow (CDC drain + dbt build)")
    return counts
