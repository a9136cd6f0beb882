"""`pulse-local dbt ...`: the dbt project from the command line, registered by ``pulse_local.cli``::

    app.add_typer(dbt_app, name="dbt")   # pulse-local dbt check | build | test | docs

``check`` builds nothing: per node, whether it translates to DuckDB and binds against the
sources' schemas (a DuckDB output such as ``local``) or parses as BigQuery SQL after an
offline compile (``--target gcp``). ``docs`` generates dbt's site and serves it on 127.0.0.1. ``build`` and ``test`` run dbt
in-process for ``PULSE_PROFILE`` and keep the run's ``run_results.json`` under
``<state_dir>/dbt/runs/``. Failures print one line per failing node; exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)

dbt_app = typer.Typer(help="A dbt project (default dbt/): check, build, test, docs.",
                      no_args_is_help=True)

_SELECT = typer.Option("--select", "-s", help="dbt node selection (e.g. fact_response+).")


def _selection(select: str | None, exclude: str | None = None) -> list[str]:
    args = ["--select", select] if select else []
    return args + (["--exclude", exclude] if exclude else [])


def _vars(text: str | None) -> dict[str, Any] | None:
    """dbt's ``--vars`` (a YAML mapping) as a dict; a `typer.BadParameter` when it is not one."""
    if not text:
        return None
    import yaml  # type: ignore[import-untyped]

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"not YAML ({exc})", param_hint="--vars") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("give a mapping, e.g. '{name: value}'", param_hint="--vars")
    return value


@dbt_app.command("check")
def check(
    target: Annotated[str | None, typer.Option(
        help="Output of the project's profile. A duckdb output (local): does each node "
             "translate to DuckDB and bind against the sources? A bigquery output (gcp): "
             "offline compile, does each node parse as BigQuery SQL? Default: local for dbt/, "
             "else the profile's default target.")] = None,
    select: Annotated[str | None, _SELECT] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    project_dir: Annotated[Path | None, typer.Option(
        help="Another dbt project (default: the repository's dbt/).")] = None,
    profiles_dir: Annotated[Path | None, typer.Option(
        help="Directory of the profiles.yml to use (default: the project directory).")] = None,
    vars_: Annotated[str | None, typer.Option(
        "--vars", help="dbt --vars, a YAML mapping (e.g. '{include_broken: true}').")] = None,
) -> None:
    """For every model, snapshot, test and hook: would `dbt build` run it? Builds nothing.

    Translates every node, then builds the project empty in a scratch DuckDB (first run and
    incremental run) so wrong columns and type errors show. Exit code 1 when any node does
    not pass; each failure names the node, its file and line, and the cause.

    Example: pulse-local dbt check && pulse-local dbt check --project-dir ../shop --target dev
    """
    from pulse_local.config import load_settings
    from pulse_local.warehouse.check import check_project

    report = check_project(load_settings(), target, select=_selection(select),
                           project_dir=project_dir, profiles_dir=profiles_dir,
                           vars_=_vars(vars_))
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_check(report)
    if not report.ok:
        raise typer.Exit(1)


_PROJECT_DIR = typer.Option(
    help="Another dbt project, e.g. your own BigQuery one (default: the repository's dbt/).")
_PROFILES_DIR = typer.Option(help="Folder of its profiles.yml (default: the project folder).")
_TARGET = typer.Option("--target", "-t", help="profiles.yml target (default: PULSE_PROFILE for "
                                               "dbt/, the profile's own default for --project-dir).")


def _print_check(report: Any) -> None:
    table = Table("node", "type", "file", "result")
    for n in sorted(report.nodes, key=lambda n: (n.ok, n.path, n.name)):
        result = ("[green]ok[/]" if n.ok else "[yellow]not bound[/]" if n.phase == "skipped"
                  else f"[red]{n.construct or 'fails'}[/]")
        table.add_row(n.name, n.resource_type, n.path, result)
    console.print(table)
    for n in report.failed:
        err.print(f"[red]x[/] {n.describe()}", highlight=False, soft_wrap=True)
        if n.offending_line:
            err.print(f"    offending line: {n.offending_line}", highlight=False, soft_wrap=True)
        if n.hint:
            err.print(f"    {n.hint}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"{report.summary()} (target {report.target}; not checked: {report.not_checked})")


def _run(command: str, args: list[str], project_dir: Path | None = None,
         profiles_dir: Path | None = None, target: str | None = None) -> None:
    from pulse_local.config import load_settings
    from pulse_local.warehouse import DbtError, keep_run, run_dbt
    from pulse_local.warehouse.dbt import _failure_message, project_work_dir

    settings = load_settings()
    work = project_work_dir(settings, project_dir) if project_dir is not None else None
    result = run_dbt(settings, [command, *args], check=False, quiet=True,
                     project_dir=project_dir, profiles_dir=profiles_dir, target=target,
                     profile_default_target=project_dir is not None, target_path=work)
    run_dir = keep_run(settings, result)
    failed = {n.unique_id for n in result.failed}
    table = Table("node", "type", "status", "s")
    for n in sorted(result.nodes, key=lambda n: (n.unique_id not in failed, -n.time))[:15]:
        colour = "red" if n.unique_id in failed else "green"
        table.add_row(n.name, n.resource_type, f"[{colour}]{n.status}[/]", f"{n.time:.2f}")
    console.print(table)
    console.print(f"{result.summary()}; run results in {run_dir}", soft_wrap=True)
    if not result.success:
        err.print(f"[red]error:[/] {DbtError(_failure_message(result))}", highlight=False)
        raise typer.Exit(1)


@dbt_app.command("build")
def build(
    select: Annotated[str | None, _SELECT] = None,
    exclude: Annotated[str | None, typer.Option(help="dbt nodes to leave out.")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Rebuild incremental models.")] = False,
    project_dir: Annotated[Path | None, _PROJECT_DIR] = None,
    profiles_dir: Annotated[Path | None, _PROFILES_DIR] = None,
    target: Annotated[str | None, _TARGET] = None,
) -> None:
    """Run the models and their tests (dbt build) on the PULSE_PROFILE warehouse, or any
    BigQuery dbt project with --project-dir (its profile lists pulse_local.translate.dbt_plugin).

    Example: pulse-local dbt build --select fact_response+
    """
    _run("build", _selection(select, exclude) + (["--full-refresh"] if full_refresh else []),
         project_dir, profiles_dir, target)


@dbt_app.command("test")
def test(
    select: Annotated[str | None, _SELECT] = None,
    exclude: Annotated[str | None, typer.Option(help="dbt nodes to leave out.")] = None,
    project_dir: Annotated[Path | None, _PROJECT_DIR] = None,
    profiles_dir: Annotated[Path | None, _PROFILES_DIR] = None,
    target: Annotated[str | None, _TARGET] = None,
) -> None:
    """Run the data and unit tests (dbt test) on the built warehouse.

    Example: pulse-local dbt test --select dim_user_scd
    """
    _run("test", _selection(select, exclude), project_dir, profiles_dir, target)


@dbt_app.command("docs")
def docs(
    project_dir: Annotated[Path | None, typer.Option(
        help="Another dbt project (default: the repository's dbt/).")] = None,
    profiles_dir: Annotated[Path | None, typer.Option(
        help="Directory of the profiles.yml to use (default: the project directory).")] = None,
    target: Annotated[str | None, typer.Option(
        help="DuckDB output whose warehouse gives the catalog (default: local for dbt/, "
             "else the profile's default target).")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8080,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Generate only.")] = False,
) -> None:
    """Generate dbt's documentation site (models, columns, lineage graph) and serve it.

    The catalog is read from the local warehouse: build it first. Serves on 127.0.0.1 until
    Ctrl-C; `pulse-local status` shows the address meanwhile.

    Example: pulse-local dbt build && pulse-local dbt docs --port 8081
    """
    from pulse_local.config import load_settings
    from pulse_local.warehouse.docs import (
        forget_serving,
        generate_docs,
        record_serving,
        serve_docs,
    )

    settings = load_settings()
    site = generate_docs(settings, project_dir=project_dir, profiles_dir=profiles_dir,
                         target=target)
    console.print(f"dbt docs of {site.project}: {site.index}", soft_wrap=True)
    if no_serve:
        return
    server = serve_docs(site.directory, port)
    record_serving(settings, server)
    console.print(f"serving on {server.url} (Ctrl-C stops)", soft_wrap=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.stop()
        forget_serving(settings)
