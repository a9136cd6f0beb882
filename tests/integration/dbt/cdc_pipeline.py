"""Fixture data through the real pipeline (seed -> processor -> PostgreSQL -> CDC), built once
with dbt: what `conftest.landed` gives the tests of this folder."""

from __future__ import annotations

from pathlib import Path

from pulse_local.config import Settings
from pulse_local.warehouse import DbtResult, run_dbt

#: Deliveries replayed per tenant: enough for duplicates, optional answers and revisions.
DELIVERIES_PER_TENANT = 400


def _trim_webhooks(directory: Path, per_tenant: int) -> int:
    """Keep the first `per_tenant` deliveries of every tenant (same order as Typeform sent)."""
    kept = 0
    for path in (directory / "webhooks").glob("*.jsonl"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:per_tenant]
        path.write_text("".join(lines), encoding="utf-8")
        kept += len(lines)
    return kept


class Landed:
    """What the module's one pipeline run produced."""

    def __init__(self, settings: Settings, fixtures: Path, statuses: dict[int, int],
                 build: DbtResult) -> None:
        self.settings, self.fixtures, self.statuses, self.build = settings, fixtures, statuses, build


def feed_and_build(settings: Settings, fixtures: Path) -> Landed:
    """Migrate, seed, replay a trimmed fixture set through the processor, drain the CDC,
    then `dbt build` (raises `DbtError` naming the failing nodes)."""
    from pulse_local.cdc import drain
    from pulse_local.source.fixtures import generate
    from pulse_local.source.migrations import migrate
    from pulse_local.source.replay import replay
    from pulse_local.source.seed import seed_reference_data

    migrate(settings)
    generate(2, 7, fixtures)  # the set tests/integration/ingest and source seed: same tenants
    assert _trim_webhooks(fixtures, DELIVERIES_PER_TENANT) == 2 * DELIVERIES_PER_TENANT
    seed_reference_data(settings, fixtures)
    statuses = replay(settings, fixtures, concurrency=8, progress=False)
    drain(settings, timeout=120)
    build = run_dbt(settings, ["build"], quiet=True)
    return Landed(settings, fixtures, statuses, build)


