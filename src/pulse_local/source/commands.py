"""CLI pieces of the source system, registered on the main CLI by ``pulse_local.cli``::

    app.add_typer(fixtures_app, name="fixtures")   # pulse-local fixtures generate ...
    app.command()(migrate)                         # pulse-local migrate --profile gcp
    app.command()(replay)                          # pulse-local replay fixtures/default
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()

fixtures_app = typer.Typer(help="Deterministic fixture data (tenants, users, webhooks).",
                           no_args_is_help=True)


@fixtures_app.command("generate")
def generate(
    scale: Annotated[int, typer.Option(help="Number of tenants (~1,000 responses each).")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 42,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("fixtures/default"),
    processes: Annotated[int | None, typer.Option(
        min=1, help="Processes to split the tenants over (default: one per core, at most 4, "
                    "two tenants or more each). The bytes do not depend on it.")] = None,
) -> None:
    """Generate fixture data. Example: pulse-local fixtures generate --scale 2 --seed 42 --out fixtures/default"""
    from pulse_local.source.fixtures import generate as run

    started = time.perf_counter()
    counts = run(scale, seed, out, processes)
    elapsed = time.perf_counter() - started
    console.print(f"wrote {counts['responses']:,} responses ({counts['deliveries']:,} deliveries, "
                  f"{counts['users']:,} users, {counts['tenants']} tenants) to {out} "
                  f"in {elapsed:.2f}s ({counts['responses'] / elapsed:,.0f} responses/s)")


@fixtures_app.command("seed")
def seed(
    directory: Annotated[Path, typer.Argument(help="Fixture directory.")] = Path("fixtures/default"),
) -> None:
    """Load reference data (tenants, users, assessments) into Postgres. Example: pulse-local fixtures seed"""
    from pulse_local.config import load_settings
    from pulse_local.source.seed import seed_reference_data

    inserted = seed_reference_data(load_settings(), directory)
    console.print("inserted: " + (", ".join(f"{k} {v}" for k, v in inserted.items()) or "nothing"))


def migrate(
    profile: Annotated[str, typer.Option(help="local or gcp (Cloud SQL via PULSE_ADMIN_DATABASE_URL).")] = "local",
) -> None:
    """Apply pending schema migrations. Example: pulse-local migrate --profile gcp"""
    from pulse_local.config import load_settings
    from pulse_local.source.migrations import migrate as run

    applied = run(load_settings(profile=profile))
    console.print(f"applied {', '.join(applied)}" if applied else "schema up to date")


def replay(
    directory: Annotated[Path, typer.Argument(help="Fixture directory.")] = Path("fixtures/default"),
    concurrency: Annotated[int, typer.Option(help="Concurrent HTTP clients.")] = 16,
    rate: Annotated[float | None, typer.Option(
        min=0.001, help="Deliveries per second, steady (default: as fast as the clients go).")] = None,
    bulk: Annotated[bool, typer.Option(
        "--bulk", help="No HTTP: the processor's checks and rules, rows written with COPY "
        "(for big fixture sets; reference data must be seeded).")] = False,
    pending: Annotated[bool, typer.Option(
        "--pending", help="Apply the deliveries the processor archived while its database was "
        "down (typeform/pending in the profile's raw bucket: local directory or GCS), through "
        "the running processor, once each.")] = False,
) -> None:
    """POST fixture webhooks (signed) to the running processor. Example: pulse-local replay fixtures/default"""
    from pulse_local.config import load_settings

    if pending:
        from pulse_local.source.pending import replay_pending

        outcome = replay_pending(load_settings())
        console.print(f"pending deliveries: {outcome.summary()}")
        if outcome.left or outcome.rejected:
            raise typer.Exit(1)
        return

    if bulk:
        from pulse_local.source.bulk import bulk_load, describe

        report = bulk_load(load_settings(), directory)
        console.print(describe(report))
        if report.rejected:
            raise typer.Exit(1)
        return
    from pulse_local.source.replay import replay as run

    counts = run(load_settings(), directory, concurrency, rate=rate)
    console.print("status counts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    if any(code == 0 or code >= 500 for code in counts):
        raise typer.Exit(1)
