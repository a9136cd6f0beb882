"""`pulse-local snapshot save|restore|list|delete` (the library is `pulse_local.stack.snapshot`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pulse_local.config import Settings

snapshot_app = typer.Typer(no_args_is_help=True,
                           help="Whole-stack snapshots: save, restore, list, delete.")
console = Console()


def _settings() -> Settings:
    from pulse_local.config import load_settings

    return load_settings()


@snapshot_app.command("save")
def save_command(
    name: Annotated[str, typer.Argument(help="Letters, digits, '.', '_', '-'.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a snapshot of that name.")]
    = False,
) -> None:
    """Stop the stack cleanly, copy its whole state into NAME.tar.zst, start it again.

    The file lands in PULSE_SNAPSHOT_DIR (default .pulse-snapshots/ beside the state directory)
    and holds no logs, pids or secrets.

    Example: pulse-local snapshot save seeded-2-tenants
    """
    from pulse_local.stack.snapshot import save

    report = save(_settings(), name, force=force)
    for note in report.notes:
        console.print(note, highlight=False)
    m = report.manifest
    console.print(
        f"saved {report.path} ({report.file_bytes / 1e6:.1f} MB from {m.size_bytes / 1e6:.1f} MB"
        f" in {len(m.files)} files; schema {m.migration_level}; "
        f"{m.responses if m.responses is not None else '?'} responses) in "
        f"{report.seconds:.1f} s", highlight=False)


@snapshot_app.command("restore")
def restore_command(
    ref: Annotated[str, typer.Argument(help="A snapshot's name, or the path to its file.")],
) -> None:
    """Verify a snapshot completely, then replace the stack's state with it and start the stack.

    A damaged file or one from a newer schema is refused before anything is touched; if the
    stack does not start on the restored state, the previous state is put back.

    Example: pulse-local snapshot restore seeded-2-tenants
    """
    from pulse_local.stack.snapshot import restore

    report = restore(_settings(), ref)
    for note in report.notes:
        console.print(note, highlight=False)
    console.print(f"restored {report.manifest.name!r} in {report.seconds:.1f} s; the stack is up",
                  highlight=False)


@snapshot_app.command("list")
def list_command() -> None:
    """The snapshots in the snapshot directory, with what their manifests say.

    Example: pulse-local snapshot list
    """
    from pulse_local.stack.snapshot import list_snapshots, snapshot_dir

    settings = _settings()
    found = list_snapshots(settings)
    if not found:
        console.print(f"no snapshots in {snapshot_dir(settings)}", highlight=False)
        return
    table = Table("name", "created (UTC)", "MB", "schema", "postgres", "responses", "fixtures")
    for s in found:
        m = s.manifest
        if m is None:
            table.add_row(s.name, f"[red]{s.problem}[/]", f"{s.file_bytes / 1e6:.1f}", "", "", "",
                          "")
            continue
        fixtures = ", ".join(f"scale {f['scale']} seed {f['seed']}" for f in m.fixtures)
        table.add_row(s.name, m.created_at, f"{s.file_bytes / 1e6:.1f}", m.migration_level,
                      m.postgres_major, "" if m.responses is None else str(m.responses),
                      fixtures)
    console.print(table)


@snapshot_app.command("delete")
def delete_command(name: Annotated[str, typer.Argument(help="The snapshot's name.")]) -> None:
    """Delete a snapshot file.

    Example: pulse-local snapshot delete seeded-2-tenants
    """
    from pulse_local.stack.snapshot import delete

    console.print(f"deleted {delete(_settings(), name)}", highlight=False)
