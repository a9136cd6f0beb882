"""`replay_fixtures`: load a fixture set's reference data and post its webhooks (signed) to the
typeform-processor, as Typeform would."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from pulse_local.config import PROJECT_ROOT, load_settings

DEFAULT_FIXTURES = PROJECT_ROOT / "fixtures" / "default"


@task(name="seed-reference-data", retries=2, retry_delay_seconds=[1, 5])
def seed(directory: str) -> dict[str, int]:
    """Tenants, users, assessments and questions (idempotent: a rerun inserts nothing)."""
    from pulse_local.source.seed import seed_reference_data

    return seed_reference_data(load_settings(), Path(directory))


@task(name="replay-webhooks")
def post_webhooks(directory: str, concurrency: int) -> dict[int, int]:
    """Every webhook of the set, through the real processor; counts by HTTP status.
    Not retried as a whole: re-delivery is idempotent, but a failure here has a cause to read."""
    from pulse_local.source.replay import replay

    return replay(load_settings(), Path(directory), concurrency, progress=False)


@task(name="bulk-load-webhooks")
def bulk_load_webhooks(directory: str) -> dict[int, int]:
    """Every webhook of the set through the processor's checks and rules, written with COPY
    (`pulse_local.source.bulk`); counts as the HTTP statuses they would get."""
    from pulse_local.source.bulk import bulk_load, describe

    report = bulk_load(load_settings(), Path(directory))
    print(describe(report))
    statuses = {200: report.accepted} if report.accepted else {}
    if report.rejected:
        statuses[422] = sum(report.rejected.values())
    return statuses


@flow(name="replay_fixtures", log_prints=True)
def replay_fixtures(directory: str = str(DEFAULT_FIXTURES), concurrency: int = 16,
                    mode: str = "http") -> dict[str, object]:
    """Seed, then replay (``mode`` ``http``: through the processor; ``bulk``: the same checks
    written set by set, for big fixture sets); fail with the status counts when any delivery
    was not accepted."""
    if mode not in ("http", "bulk"):
        raise ValueError(f"mode must be 'http' or 'bulk', got {mode!r}")
    seeded = seed(directory)
    statuses = (post_webhooks(directory, concurrency) if mode == "http"
                else bulk_load_webhooks(directory))
    print(f"seeded {seeded}; webhook statuses {statuses}")
    rejected = {code: n for code, n in statuses.items() if code != 200}
    if rejected.get(0):
        raise RuntimeError(
            f"the typeform-processor did not answer for {rejected[0]} of "
            f"{sum(statuses.values())} webhooks (status counts {statuses}): is it running? "
            "`pulse-local status` shows it, `pulse-local up` restarts it; re-delivery is "
            "idempotent, so rerun the flow afterwards")
    if rejected:
        raise RuntimeError(
            f"{sum(rejected.values())} webhooks not accepted (status: count {rejected}); "
            "see `pulse-local logs processor`"
        )
    return {"seeded": seeded, "accepted": statuses.get(200, 0)}
