"""`pulse-local rehearse`: the pipeline on profile gcp, every Google API on an offline emulator.

Stages (each ``(settings) -> str``, raising on failure): provision the declared resources and the
BigQuery datasets, fixtures through the processor (raw payloads to the Cloud Storage emulator),
CDC into the BigQuery emulator in Datastream's shape, ``dbt build --target gcp`` through
dbt-bigquery, streaming to Bigtable, ``monitor_pipeline`` on BigQuery. The first failure stops
the run; the stages after it are reported NOT RUN, never green.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from pulse_local.config import Settings
from pulse_local.rehearsal.endpoints import (
    rehearsal_endpoints,
    rehearsal_environment,
)


def apply_rehearsal_environment(settings: Settings) -> None:
    """Point this process (and the services it starts) at the rehearsal's emulators."""
    os.environ.update(rehearsal_environment(settings))


def _bq(settings: Settings) -> Any:
    from pulse_local.rehearsal.services import bigquery_client

    return bigquery_client(settings)


def stage_provision(settings: Settings) -> str:
    """The declared topics, subscriptions and tables on the emulators (profile gcp's code path),
    the BigQuery datasets, and the raw tables as Datastream creates them."""
    from pulse_local.rehearsal.datastream_bq import create_raw_tables
    from pulse_local.resources import provision

    reports = provision(settings, "gcp", dry_run=False, echo=lambda *a, **k: None)
    client = _bq(settings)
    try:
        tables = create_raw_tables(client, settings.project)
    finally:
        client.close()
    return (f"{'; '.join(r.summary().splitlines()[0] for r in reports)}; "
            f"{len(tables)} raw tables in Datastream's shape")


def stage_replay_fixtures(settings: Settings) -> str:
    """Generate the fixtures and send every webhook through the processor (running on profile
    gcp: its raw payloads go to the Cloud Storage emulator's bucket)."""
    from pulse_local.pipeline import stage_fixtures, stage_replay_fixtures
    from pulse_local.resources.clients import storage_client

    generated = stage_fixtures(settings)
    replayed = stage_replay_fixtures(settings)
    objects = list(storage_client(settings).bucket(settings.raw_bucket).list_blobs(timeout=30))
    if not objects:
        raise RuntimeError(f"the processor archived nothing in gs://{settings.raw_bucket} "
                           "(Cloud Storage emulator): the gcp archive path did not run")
    return f"{generated}; {replayed}; {len(objects)} objects in gs://{settings.raw_bucket}"


def landed_changes(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every change the stack's CDC has landed, by table, read through its Datastream views."""
    import duckdb

    from pulse_local.cdc.views import refresh_views
    from pulse_local.rehearsal.datastream_bq import TABLE_PREFIX
    from pulse_local.warehouse.raw import RAW_TABLES

    out: dict[str, list[dict[str, Any]]] = {}
    with duckdb.connect() as conn:
        tables = refresh_views(conn, settings)
        for view in tables:  # Datastream's names: public_<table>
            table = view.removeprefix(TABLE_PREFIX)
            if table not in RAW_TABLES:
                continue
            cols = [c for c, _ in RAW_TABLES[table]] + ["datastream_metadata"]
            cursor = conn.execute(
                f'select {", ".join(chr(34) + c + chr(34) for c in cols)} from raw."{view}"')
            out[table] = [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]
    return out


def stage_cdc_to_bigquery(settings: Settings) -> str:
    """Drain the source's changes with the stack's CDC (it plays Datastream), then land them in
    the BigQuery emulator's ``raw.public_<table>`` in Datastream's append-only shape."""
    from pulse_local.cdc import drain
    from pulse_local.rehearsal.datastream_bq import land_rows
    from pulse_local.rehearsal.endpoints import stack_settings

    # the stack's CDC engine (profile local) plays Datastream; on gcp the ETL waits on
    # Datastream's API instead, which has no emulator
    drained = drain(stack_settings(settings), timeout=120)
    client = _bq(settings)
    landed: dict[str, int] = {}
    try:
        for table, rows in landed_changes(settings).items():
            landed[table] = land_rows(client, settings.project, table, rows)
    finally:
        client.close()
    if not any(landed.values()):
        raise RuntimeError("the CDC landed no changes: nothing for dbt to read")
    how = ("the cdc service had landed every change" if drained.waited_for_service
           else f"{drained.changes} changes drained")
    return (f"{how}; rows in BigQuery "
            + ", ".join(f"public_{t} {n}" for t, n in landed.items() if n))


def stage_dbt_build(settings: Settings) -> str:
    """``dbt build --target gcp``: dbt-bigquery against the BigQuery emulator."""
    from pulse_local.warehouse.dbt import DbtError, run_dbt

    try:
        result = run_dbt(settings, ["build"], target="gcp",
                         env=rehearsal_endpoints(settings).environment())
    except DbtError as exc:
        raise RuntimeError(str(exc)) from None
    if not result.success:
        raise RuntimeError(result.summary())
    return result.summary()


def serving_event_totals(settings: Settings) -> tuple[int, int, int]:
    """All-time events over every tenant of the source database, read from Bigtable through
    the serving layer's queries (gcp client, emulator endpoint), and the status the running
    serving API (profile gcp) gives a request without a Google ID token. The API's own
    authenticated read is not rehearsed: no emulator issues Google ID tokens."""
    import httpx
    import psycopg

    from pulse_local.serving import ServingStore, live_counters

    with psycopg.connect(settings.admin_dsn(), connect_timeout=5) as conn:
        tenant_ids = [row[0] for row in conn.execute("select id from organizations")]
    store = ServingStore.for_settings(settings)
    try:
        total = sum(live_counters(store, t).total.events for t in tenant_ids)
    finally:
        store.close()
    refused = httpx.get(f"http://{settings.host}:{settings.serving_port}/v1/tenants/"
                        f"{tenant_ids[0]}/counters", timeout=10).status_code
    return total, len(tenant_ids), refused


def stage_stream_events(settings: Settings) -> str:
    """The `stream_events` flow (profile gcp) drains the subscription into Bigtable; then
    Bigtable is read back through the serving layer; then the BigQuery subscription, which the
    Pub/Sub emulator does not run, is played into ``raw.pubsub_response_events``."""
    from pulse_local.orchestration import load_flow
    from pulse_local.rehearsal.bq_subscription import play_bigquery_subscriptions

    report = load_flow("stream_events")()
    total, tenants, refused = serving_event_totals(settings)
    if total == 0:
        raise RuntimeError("Bigtable holds no events after stream_events: the gcp consumer "
                           "wrote nothing the serving layer can read")
    if refused != 401:
        raise RuntimeError(f"the serving API on profile gcp answered {refused} to a request "
                           "without a token (401 expected)")
    client = _bq(settings)
    try:
        rows = play_bigquery_subscriptions(settings, client)
    finally:
        client.close()
    return (f"{report['written']} written by this run ({report['duplicates']} duplicates, "
            f"{report['dead_lettered']} dead-lettered); Bigtable holds {total} events of "
            f"{tenants} tenants (serving queries; the API refuses a tokenless read with 401, "
            "its Google ID-token read NOT RUN: no token emulator); BigQuery subscription "
            f"(played): {rows} rows to raw.pubsub_response_events")


def stage_monitor(settings: Settings) -> str:
    """The `monitor_pipeline` flow on profile gcp: its warehouse checks run on BigQuery. The
    cdc group is left out and said so: on gcp it reads Datastream's API (no emulator)."""
    from pulse_local.monitoring import GROUPS
    from pulse_local.orchestration import load_flow

    groups = [g for g in GROUPS if g != "cdc"]
    outcome = load_flow("monitor_pipeline")(groups=groups)
    return (f"{outcome['summary']} (groups {', '.join(groups)}; cdc:lag NOT RUN: it asks "
            "Datastream's API, which has no emulator)")


def stage_cloud_run_jobs(settings: Settings) -> str:
    """Each ``<flow>-gcp`` deployment's Cloud Run job rendered from prefect-gcp's
    ``cloud-run-v2`` base job template (offline: Cloud Run has no emulator), checked for what a
    flow run needs (`rehearsal.cloud_run.REQUIREMENTS`)."""
    from pulse_local.rehearsal.cloud_run import REQUIREMENTS, check_consumer_pool, check_gcp_jobs

    gaps = check_gcp_jobs(settings)
    gaps["streaming consumer (worker pool)"] = check_consumer_pool(settings)
    lacking = sorted({g for flow_gaps in gaps.values() for g in flow_gaps})
    if lacking:
        flows = ", ".join(f for f, g in gaps.items() if g)
        raise RuntimeError(
            f"the Cloud Run jobs of {flows} lack: "
            + "; ".join(f"{g} ({REQUIREMENTS[g]})" for g in lacking)
            + ". They are built in pulse_local.gcp_jobs.gcp_job_variables from the settings "
            "and flows/deployments.yaml's gcp_work_pool")
    return (f"{len(gaps) - 1} jobs rendered from prefect-gcp's cloud-run-v2 template and the "
            "streaming consumer's worker pool (parsed as google-cloud-run's "
            "CreateWorkerPoolRequest): complete")


STAGES: list[tuple[str, Callable[[Settings], str]]] = [
    ("provision", stage_provision),
    ("replay_fixtures", stage_replay_fixtures),
    ("cdc_to_bigquery", stage_cdc_to_bigquery),
    ("dbt_build_gcp", stage_dbt_build),
    ("stream_events", stage_stream_events),
    ("monitor_pipeline", stage_monitor),
    ("cloud_run_jobs", stage_cloud_run_jobs),
]


@dataclass
class StageOutcome:
    name: str
    status: str  # "ok" | "FAILED" | "NOT RUN"
    seconds: float
    detail: str


@dataclass
class RehearsalSummary:
    stages: list[StageOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(s.status == "ok" for s in self.stages)

    @property
    def failed(self) -> StageOutcome | None:
        return next((s for s in self.stages if s.status == "FAILED"), None)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def rehearse(settings: Settings, stages: list[tuple[str, Callable[[Settings], str]]] | None = None
             ) -> RehearsalSummary:
    """Run the stages in order on the running rehearsal stack; stop at the first failure."""
    if settings.profile != "gcp" or not settings.bigquery_emulator_host:
        from pulse_local.errors import ConfigError

        raise ConfigError("a rehearsal runs profile gcp on the emulators: pass the settings "
                          "of `pulse_local.rehearsal.endpoints.with_emulators(stack settings)`")
    apply_rehearsal_environment(settings)
    summary = RehearsalSummary()
    failed = False
    for name, stage in stages or STAGES:
        if failed:
            summary.stages.append(StageOutcome(name, "NOT RUN", 0.0, "an earlier stage failed"))
            continue
        started = time.perf_counter()
        try:
            detail = stage(settings)
            summary.stages.append(StageOutcome(name, "ok", time.perf_counter() - started, detail))
        except Exception as exc:  # noqa: BLE001 - the stage's cause goes into the summary
            failed = True
            summary.stages.append(StageOutcome(name, "FAILED", time.perf_counter() - started,
                                               f"{type(exc).__name__}: {exc}"))
    return summary


#: What no emulator answers, so a green rehearsal has not executed it (printed with every summary).
NOT_REHEARSED = (
    ("Datastream's API (stream creation, states, slot lag: the stack's cdc service plays "
     "Datastream)"),
    "Cloud Run itself (the jobs are rendered and checked, not run)",
)


def print_summary(summary: RehearsalSummary, console: Console, stack_seconds: float) -> None:
    """The table `make rehearse` prints: each stage, its result and time."""
    colour = {"ok": "green", "FAILED": "red", "NOT RUN": "yellow"}
    table = Table("stage", "result", "seconds", "detail",
                  title="pulse-local rehearse (profile gcp, offline emulators)")
    for s in summary.stages:
        table.add_row(s.name, f"[{colour[s.status]}]{s.status}[/]", f"{s.seconds:.1f}",
                      s.detail[:2000])
    console.print(table)
    console.print("not rehearsed (no emulator): " + "; ".join(NOT_REHEARSED))
    if summary.ok:
        console.print(f"[green]rehearsal ok[/] in {summary.seconds:.1f}s after the stack was up "
                      f"({stack_seconds:.1f}s to start it)")
    else:
        failed = summary.failed
        console.print(f"[red]rehearsal FAILED at {failed.name if failed else '?'}[/] after "
                      f"{summary.seconds:.1f}s ({stack_seconds:.1f}s to start the stack)")
