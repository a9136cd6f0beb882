"""`pulse-local`: a thin command line over the library. Heavy imports stay inside commands."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pulse_local.config import Settings, load_settings
from pulse_local.errors import PulseError

app = typer.Typer(
    help="Run the Pulse Analytics pipeline locally (emulators, Postgres, DuckDB) or on GCP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


def _settings(**overrides: object) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def up() -> None:
    """Start the local stack and wait until every service answers.

    Example: pulse-local up
    """
    from pulse_local.stack import stack_for

    settings = _settings()
    stack = stack_for(settings)
    if hasattr(stack, "on_ready"):  # the native stack reports each service as it is ready
        stack.on_ready = lambda name, seconds: console.print(
            f"{name} ready at {seconds:.1f}s", highlight=False)
    report = stack.up()
    for note in report.notes:
        console.print(f"[yellow]{note}[/]")
    if not report.changed:
        console.print(f"stack already up ({stack.mode}): nothing changed")
    else:
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
        console.print(f"stack up ({stack.mode}) in {report.total_seconds:.1f}s: {timings}")
    _print_status(stack.status())


@app.command()
def down() -> None:
    """Stop every service of the local stack; data in the state directory stays.

    Example: pulse-local down
    """
    from pulse_local.stack import stack_for

    stack = stack_for(_settings())
    stopped = stack.down()
    for note in getattr(stack, "notes", []):
        console.print(note)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show each service, its address and health (a real probe per service).

    Example: pulse-local status --json
    """
    from pulse_local.stack import stack_for

    settings = _settings()
    statuses = stack_for(settings).status()
    if as_json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        _print_status(statuses)
        _print_docs_location(settings)
    if any(s.health != "healthy" for s in statuses):
        raise typer.Exit(1)


def _print_status(statuses: list) -> None:
    table = Table("service", "address", "health", "pid", "detail")
    colours = {"healthy": "green", "starting": "yellow", "down": "red", "unhealthy": "red"}
    for s in statuses:
        table.add_row(s.name, s.address, f"[{colours[s.health]}]{s.health}[/]",
                      str(s.pid or ""), s.detail)
    console.print(table)


def _print_docs_location(settings: Settings) -> None:
    """The dbt docs site: its URL while `pulse-local dbt docs` serves it, else its index.html."""
    from pulse_local.warehouse.docs import docs_location

    where = docs_location(settings)
    if where:
        console.print(f"dbt docs: {where}", soft_wrap=True)


@app.command()
def logs(
    service: Annotated[str, typer.Argument(help="postgres, pubsub, bigtable, prefect, ...")],
    lines: Annotated[int, typer.Option("-n", "--lines")] = 50,
) -> None:
    """Print the end of a service's log.

    Example: pulse-local logs prefect -n 100
    """
    from pulse_local.stack import stack_for

    print(stack_for(_settings()).logs(service, lines))


@app.command()
def env() -> None:
    """Print the exports a shell or IDE needs to reach the stack.

    Example: eval "$(pulse-local env)"
    """
    from pulse_local.stack.services import service_env

    for key, value in service_env(_settings()).items():
        print(f"export {key}={value}")


@app.command()
def token(
    tenant: Annotated[str | None, typer.Option(help="The tenant's slug (or UUID).")] = None,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds (default "
                                            "PULSE_SERVING_TOKEN_TTL, 900).")] = None,
    operator: Annotated[bool, typer.Option("--operator", help="Every tenant (operators).")]
    = False,
) -> None:
    """Print a short-lived bearer token for the serving API (local profile).

    Example: curl -H "Authorization: Bearer $(pulse-local token --tenant tenant-0001)" URL
    """
    from pulse_local.serving.auth import issue_token_for

    print(issue_token_for(_settings(), tenant, operator=operator, ttl_seconds=ttl))


@app.command()
def reset(yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Stop the stack and delete the state directory (the only command that deletes data).

    Example: pulse-local reset --yes
    """
    from pulse_local.stack import stack_for
    from pulse_local.stack.native import NativeStack

    settings = _settings()
    state = settings.state_dir
    if not yes and not typer.confirm(f"Delete {state} and every piece of local data in it?"):
        raise typer.Exit(1)
    if state.exists():
        stack = stack_for(settings)
        # everything is deleted next: the emulators' state is not saved first
        if isinstance(stack, NativeStack):  # mode "native"
            stack.down(save=False)
        else:
            stack.down()
        shutil.rmtree(state)
    console.print(f"removed {state}")


@app.command()
def provision(
    profile: Annotated[str | None, typer.Option(help="local or gcp (default: PULSE_PROFILE)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; call nothing.")] = False,
) -> None:
    """Apply the declared topics, subscriptions, tables and change streams to the emulators or GCP.

    The declarations are emulators/*/resources.yaml and emulators/datastream/stream.yaml; the
    same client code applies them to both, and a second apply changes nothing. The Datastream
    streams are printed (bodies and gcloud commands) and, on gcp, created.

    Example: pulse-local provision --profile gcp --dry-run
    """
    from pulse_local.resources import provision as apply_all

    settings = _settings(profile=profile)
    for report in apply_all(settings, settings.profile, dry_run=dry_run, echo=console.print):
        if not dry_run:
            console.print(report.summary())
    from pulse_local.backends import for_profile
    from pulse_local.cdc.provision import print_or_create

    print_or_create(settings, dry_run=dry_run,
                    change_streams=None if dry_run else for_profile(settings).change_streams)


@app.command()
def run() -> None:
    """Run the pipeline once on the running stack and print what each stage did.

    Example: pulse-local up && pulse-local run
    """
    from pulse_local.pipeline import run_pipeline

    summary = run_pipeline(_settings(), console)
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def rehearse(
    keep_stack: Annotated[bool, typer.Option("--keep-stack", help="Leave the rehearsal stack running.")] = False,
) -> None:
    """The whole pipeline on profile gcp, every Google API answered by an offline emulator.

    Starts the rehearsal stack (the local stack plus the BigQuery and Cloud Storage emulators,
    state in .pulse-rehearse/ unless PULSE_STATE_DIR is set), then: provision, fixtures through
    the processor, CDC into BigQuery in Datastream's shape, dbt build --target gcp, streaming
    to Bigtable, monitor_pipeline on BigQuery. Exits non-zero naming the failed stage.

    Example: pulse-local rehearse
    """
    import os
    import time

    from pulse_local.config import PROJECT_ROOT
    from pulse_local.rehearsal.endpoints import with_emulators
    from pulse_local.rehearsal.services import rehearsal_services
    from pulse_local.rehearsal.stages import apply_rehearsal_environment, print_summary
    from pulse_local.rehearsal.stages import rehearse as run_rehearsal
    from pulse_local.stack.native import NativeStack

    # The stack runs as the local one does (its PostgreSQL plays Cloud SQL); the pipeline runs
    # on profile gcp with every endpoint on the stack's emulators.
    overrides: dict[str, object] = {"profile": "local", "database_url": None,
                                    "admin_database_url": None}
    if not os.environ.get("PULSE_STATE_DIR"):
        overrides["state_dir"] = PROJECT_ROOT / ".pulse-rehearse"
    stack_settings = load_settings(**overrides)
    settings = with_emulators(stack_settings)
    apply_rehearsal_environment(settings)  # before `up`: the services inherit the endpoints
    stack = NativeStack(stack_settings, rehearsal_services(settings))
    started = time.perf_counter()
    try:
        stack.up()
        stack_seconds = time.perf_counter() - started
        summary = run_rehearsal(settings)
        print_summary(summary, console, stack_seconds)
    finally:
        if not keep_stack:
            stack.down()
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def doctor() -> None:
    """Round trips through every service, as the `check_stack` Prefect flow.

    Postgres as the app role, Pub/Sub, Bigtable and the warehouse; prints results and timings.

    Example: pulse-local doctor
    """
    from pulse_local.backends import use_profile
    from pulse_local.orchestration import load_flow

    settings = _settings()
    use_profile(settings)
    check_stack = load_flow("check_stack")
    try:
        results = check_stack()
    except Exception as exc:  # noqa: BLE001 - the flow failed: its message names each failing service
        err.print(f"[red]check_stack failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    table = Table("service", "round trip", "result", "ms", "detail")
    for r in results:
        table.add_row(r.service, r.operation, "[green]ok[/]" if r.ok else "[red]FAILED[/]",
                      f"{r.seconds * 1000:.1f}", r.detail)
    console.print(table)


def _register_source_commands() -> None:
    """`fixtures generate|seed`, `migrate`, `replay` (defined beside the code they drive)."""
    from pulse_local.source.commands import fixtures_app, migrate, replay

    app.add_typer(fixtures_app, name="fixtures", help="Generate and load fixture data.")
    app.command()(migrate)
    app.command()(replay)


_register_source_commands()


def _register_warehouse_commands() -> None:
    """`dbt check|build|test|docs` (defined beside the warehouse code, pulse_local.warehouse.cli)."""
    from pulse_local.warehouse.cli import dbt_app

    app.add_typer(dbt_app, name="dbt", help="The dbt project: check, build, test, docs.")


_register_warehouse_commands()


def _register_snapshot_commands() -> None:
    """`snapshot save|restore|list|delete` (pulse_local.stack.snapshot_commands)."""
    from pulse_local.stack.snapshot_commands import snapshot_app

    app.add_typer(snapshot_app, name="snapshot",
                  help="Whole-stack snapshots: save, restore, list, delete.")


_register_snapshot_commands()

deployments_app = typer.Typer(no_args_is_help=True, help="The project's Prefect deployments.")
app.add_typer(deployments_app, name="deployments")


@deployments_app.command("list")
def deployments_list() -> None:
    """The declared deployments (flows/deployments.yaml) and their schedules.

    Example: pulse-local deployments list
    """
    from pulse_local.orchestration import DEPLOYMENTS, GCP_WORK_POOL, deployment_name
    from pulse_local.profiles import PROFILES

    columns = [f"{p.name} (work pool {GCP_WORK_POOL.name})" if p.deploys_to_work_pool else p.name
               for p in PROFILES.values()]
    table = Table("flow", *columns, "cron (UTC)")
    for d in DEPLOYMENTS:
        table.add_row(d.flow, *(deployment_name(d.flow, p) for p in PROFILES),
                      d.cron or "on demand")
    console.print(table)


@deployments_app.command("register")
def deployments_register(
    api_url: Annotated[str, typer.Option(help="Prefect API (Prefect Cloud workspace or server).",
                                         envvar="PREFECT_API_URL")],
) -> None:
    """Register the `<flow>-gcp` deployments on the GCP work pool (created when missing).

    Locally the stack's `deployments` service registers and serves `<flow>-local` by itself.

    Example: pulse-local deployments register --api-url https://api.prefect.cloud/api/accounts/A/workspaces/W
    """
    from pulse_local.orchestration import register_gcp_deployments

    names = register_gcp_deployments(_settings(), api_url)
    console.print(f"registered {len(names)} deployments: {', '.join(names)}")


@deployments_app.command("consumer-pool")
def deployments_consumer_pool() -> None:
    """Print the streaming consumer's Cloud Run worker pool (its GCP deployment target) as the
    JSON body of Cloud Run Admin API v2 `workerPools.create`, built from the same settings as
    the `<flow>-gcp` jobs (secrets by Secret Manager reference). Nothing is sent.

    Example: pulse-local deployments consumer-pool > pool.json
    """
    from google.cloud import run_v2

    from pulse_local.gcp_jobs import consumer_worker_pool_request

    request = consumer_worker_pool_request(_settings())
    console.print_json(run_v2.WorkerPool.to_json(request.worker_pool))
    err.print(f"POST https://run.googleapis.com/v2/{request.parent}/workerPools?"
              f"workerPoolId={request.worker_pool_id}", highlight=False)


def main() -> None:
    """Entry point: named errors become one red line and exit code 2, not a traceback."""
    try:
        app()
    except PulseError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
