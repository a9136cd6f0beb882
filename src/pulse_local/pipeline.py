"""`pulse-local run`: the pipeline once, stage by stage, with a summary table.

Stages: stack check, fixtures generated and replayed through the webhook processor, the
`etl_pipeline` flow (CDC drain, dbt build and tests, validation), the `stream_events` flow, the
`monitor_pipeline` flow. Each is a function `(settings) -> str` that raises on failure; a
failing stage stops the run and the exit code is non-zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pulse_local.backends import use_profile
from pulse_local.config import Settings


@dataclass
class StageResult:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class RunSummary:
    stages: list[StageResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages)


def stage_check_stack(settings: Settings) -> str:
    """Round trips through every service as the `check_stack` Prefect flow."""
    from pulse_local.orchestration import load_flow

    results = load_flow("check_stack")()
    return ", ".join(f"{r.service} {r.seconds * 1000:.0f} ms" for r in results)


def stage_fixtures(settings: Settings) -> str:
    """Generate the fixture set (deterministic: same scale and seed, same bytes)."""
    from pulse_local.source.fixtures import generate

    counts = generate(settings.fixture_scale, settings.fixture_seed, fixtures_dir(settings))
    return (f"{counts['responses']} responses, {counts['deliveries']} webhooks, {counts['users']} "
            f"users, {counts['tenants']} tenants (scale {settings.fixture_scale}, seed "
            f"{settings.fixture_seed})")


def fixtures_dir(settings: Settings) -> Path:
    """Where `make run` generates its fixtures: the state directory, one folder per scale/seed."""
    return settings.state_dir / "fixtures" / f"scale-{settings.fixture_scale}-seed-{settings.fixture_seed}"


def stage_replay_fixtures(settings: Settings) -> str:
    """Reference data into Postgres, then every fixture webhook through the processor (or in
    bulk: ``PULSE_REPLAY_MODE=bulk``)."""
    from pulse_local.orchestration import load_flow

    outcome = load_flow("replay_fixtures")(directory=str(fixtures_dir(settings)),
                                           mode=settings.replay_mode)
    how = "through the processor" if settings.replay_mode == "http" else "in bulk"
    return f"{outcome['accepted']} webhooks accepted ({how})"


def stage_etl_pipeline(settings: Settings) -> str:
    """The `etl_pipeline` flow: source checks, CDC drain, dbt build, validation, notification."""
    from pulse_local.orchestration import load_flow

    outcome = load_flow("etl_pipeline")()
    lines = []
    for step in outcome["steps"]:
        lines.append(f"{step['name']} {step['seconds']:.1f}s: {_describe(step['name'], step['result'])}")
    return "\n".join(lines)


def _describe(name: str, result: Any) -> str:
    """One line per etl step for the summary table."""
    if name == "source_checks":
        return ", ".join(f"{table} {n}" for table, n in result.items())
    if name == "cdc_drain":
        how = "service had landed them" if result["waited_for_service"] else "drained"
        return f"{result['changes']} changes, {result['backfilled_rows']} backfilled ({how})"
    if name == "dbt_build":
        return (f"{result['models']} models, tests {result['tests_passed']} passed, "
                f"{result['tests_failed']} failed")
    if name == "validate":
        return (f"responses source {result['source_responses']} = staging "
                f"{result['staging_responses']} = fact {result['fact_responses']}; users "
                f"{result['source_users']} = current {result['current_users']}")
    return "sent" if name == "notify" else str(result)[:200]


def stage_stream_events(settings: Settings) -> str:
    """The `stream_events` flow drains the subscription; then Bigtable is read back through the
    serving layer, tenant by tenant."""
    from pulse_local.orchestration import load_flow

    report = load_flow("stream_events")()
    total, tenants = bigtable_event_totals(settings)
    return (f"{report['written']} written by this run ({report['duplicates']} duplicates, "
            f"{report['dead_lettered']} dead-lettered); Bigtable holds {total} events of "
            f"{tenants} tenants")


def bigtable_event_totals(settings: Settings) -> tuple[int, int]:
    """All-time event count over every tenant of the source database, read through the
    serving API with an operator's token (as any reader of it must)."""
    import httpx
    import psycopg

    from pulse_local.backends import serving_caller

    with psycopg.connect(settings.admin_dsn(), connect_timeout=5) as conn:
        tenant_ids = [row[0] for row in conn.execute("select id from organizations")]
    base, token = serving_caller(settings)
    total = 0
    with httpx.Client(base_url=base, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for tenant in tenant_ids:
            response = client.get(f"/v1/tenants/{tenant}/counters")
            if response.status_code != 200:
                raise RuntimeError(f"serving API answered {response.status_code} for tenant "
                                   f"{tenant}: {response.text[:200]}")
            total += int(response.json()["total"]["events"])
    return total, len(tenant_ids)


def stage_monitor(settings: Settings) -> str:
    """The `monitor_pipeline` flow: freshness, completeness, lag, dead letters, dbt tests."""
    from pulse_local.orchestration import load_flow

    outcome = load_flow("monitor_pipeline")()
    return str(outcome["summary"])


STAGES: list[tuple[str, Callable[[Settings], str]]] = [
    ("check_stack", stage_check_stack),
    ("fixtures", stage_fixtures),
    ("replay_fixtures", stage_replay_fixtures),
    ("etl_pipeline", stage_etl_pipeline),
    ("stream_events", stage_stream_events),
    ("monitor_pipeline", stage_monitor),
]


def run_pipeline(settings: Settings, console: Console) -> RunSummary:
    """Run every stage in order; stop at the first failure; print a summary table."""
    use_profile(settings)
    summary = RunSummary()
    for name, stage in STAGES:
        started = time.perf_counter()
        try:
            detail = stage(settings)
            summary.stages.append(StageResult(name, True, time.perf_counter() - started, detail))
        except Exception as exc:  # noqa: BLE001 - the stage's cause goes into the summary, not a traceback
            summary.stages.append(
                StageResult(name, False, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
            )
            break
    table = Table("stage", "result", "seconds", "detail", title="pulse-local run")
    total = sum(s.seconds for s in summary.stages)
    for s in summary.stages:
        table.add_row(s.name, "[green]ok[/]" if s.ok else "[red]FAILED[/]", f"{s.seconds:.1f}", s.detail)
    console.print(table)
    verdict = "[green]pipeline ok[/]" if summary.ok else "[red]pipeline FAILED[/]"
    console.print(f"{verdict} in {total:.1f}s")
    return summary
