"""Whole-stack snapshots: one portable file holding a point-in-time copy of the state directory.

A snapshot is taken quiesced: the stack is stopped with a clean `down` (which saves the
emulators' state under ``emulators/``), the state directory is copied, and the stack is brought
back up if it was running. Prefect's API server is left running (it writes nothing there and
reconnects to its database when PostgreSQL is back; its start is the stack's slowest). The copy holds PostgreSQL's data directory (the replication slot
included, so CDC resumes where the raw layer stopped), the CDC raw layer and its checkpoint,
the DuckDB warehouse and dbt state, the saved Bigtable rows and Pub/Sub backlogs, the raw
archive and the generated fixtures. It never holds logs, pid files, sockets or ``secrets/``
(the serving token key stays on its machine).

The file (``NAME.tar.zst``) is written and checked by `snapshot_archive`; its manifest, and
whether this code can restore it, is `snapshot_manifest`. `restore` reads and checks the whole
file into a staging directory beside the state directory before it touches the stack; only then
does it stop the stack, set the old state aside, move the new one in and start the stack, and it
puts the old state back if that start fails.
"""


from __future__ import annotations

import os
import re
import shutil
import stat
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pulse_local.config import Settings
from pulse_local.errors import SnapshotCorrupt, SnapshotError, SnapshotNotFound

# The file format and the manifest live in their own modules; re-exported for callers here.
from pulse_local.stack.snapshot_archive import extract_verified, read_manifest, verify, write
from pulse_local.stack.snapshot_manifest import (
    FORMAT_VERSION,
    Manifest,
    code_migrations,
    fixtures_in,
    names_of,
    postgres_facts,
    pulse_local_version,
    state_layout,
)

__all__ = ["FORMAT_VERSION", "SUFFIX", "Listed", "Manifest", "RestoreReport", "SaveReport",
           "check_name", "code_migrations", "delete", "extract_verified", "fixtures_in",
           "list_snapshots", "names_of", "read_manifest", "resolve", "restore", "save",
           "snapshot_dir", "snapshot_path", "verify", "write"]

SUFFIX = ".tar.zst"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# Where snapshots live ------------------------------------------------------------------------
def snapshot_dir(settings: Settings) -> Path:
    """``PULSE_SNAPSHOT_DIR``, else ``.pulse-snapshots/`` beside the state directory."""
    return settings.snapshot_dir or settings.state_dir.parent / ".pulse-snapshots"


def check_name(name: str) -> str:
    """A snapshot name is a plain file name: letters, digits, ``.``, ``_``, ``-``."""
    if not _NAME.match(name) or name.endswith(SUFFIX):
        raise SnapshotError(
            f"snapshot name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(up to 100, no suffix), e.g. `pulse-local snapshot save before-migration`")
    return name


def snapshot_path(settings: Settings, name: str) -> Path:
    return snapshot_dir(settings) / f"{check_name(name)}{SUFFIX}"


def resolve(settings: Settings, ref: str) -> Path:
    """A snapshot's file from a name in the snapshot directory or a path to a file."""
    if "/" in ref or ref.endswith(SUFFIX):
        path = Path(ref).expanduser()
    else:
        path = snapshot_path(settings, ref)
    if not path.is_file():
        names = ", ".join(s.name for s in list_snapshots(settings)) or "none"
        raise SnapshotNotFound(
            f"no snapshot {ref!r} ({path} does not exist); snapshots in "
            f"{snapshot_dir(settings)}: {names}. See `pulse-local snapshot list`")
    return path


def _postgres_alone(stack: Any) -> Any:
    """A stack of only PostgreSQL, without its hooks (no migration runs): for reading facts."""
    from pulse_local.stack.native import NativeStack

    spec = next(s for s in stack.services if s.name == "postgres")
    return NativeStack(stack.settings, [replace(spec, after_ready=lambda s: None)])


# Save ----------------------------------------------------------------------------------------
@dataclass
class SaveReport:
    """What `save` did."""

    path: Path
    manifest: Manifest
    seconds: float
    file_bytes: int
    notes: list[str] = field(default_factory=list)
    #: Seconds per step: down, copy, up.
    phases: dict[str, float] = field(default_factory=dict)


def _running(stack: Any) -> list[str]:
    from pulse_local.stack import process

    names = []
    for spec in stack.services:
        record = process.read_pid(stack.pid_path(spec.name))
        if record is not None and record.alive():
            names.append(spec.name)
    return names


def native_stack(settings: Settings) -> Any:
    """The native stack of these settings; snapshots copy its state directory."""
    if settings.profile != "local":
        raise SnapshotError("snapshots copy the local stack's state: run them with "
                            "PULSE_PROFILE=local")
    from pulse_local.stack import stack_for

    stack = stack_for(settings)
    if stack.mode != "native":
        raise SnapshotError("snapshots work on the native stack (its state directory); run "
                            "with PULSE_STACK=native")
    return stack


#: Services a save leaves running, if they run. Prefect's API server writes nothing under the
#: state directory and reconnects to its database (SQLAlchemy's pre-ping) once PostgreSQL is
#: back; its start is the stack's slowest. The emulators keep everything in memory: once every
#: other service has stopped, nothing writes to them, so their state is saved in place
#: (`ServiceSpec.save_running`: Pub/Sub's backlog is read and handed back) instead of saved,
#: stopped, started and restored. The serving API only reads Bigtable. The writers (processor,
#: CDC, the consumer, the deployments runner, whose flows write the warehouse) and PostgreSQL
#: stop, so the copy is of one moment.
KEPT_RUNNING_ON_SAVE = frozenset({"prefect", "pubsub", "bigtable", "serving"})


def _without(stack: Any, names: set[str]) -> Any:
    """The stack without the named services (the same object if it has none of them)."""
    from pulse_local.stack.native import NativeStack

    if not isinstance(stack, NativeStack) or not names & stack._by_name.keys():
        return stack
    return NativeStack(stack.settings, [s for s in stack.services if s.name not in names])


def save(settings: Settings, name: str, *, stack: Any = None, force: bool = False) -> SaveReport:
    """Quiesce the stack (stop every writer and PostgreSQL; save the emulators' state, which
    keep running with Prefect's API server and the serving API: `KEPT_RUNNING_ON_SAVE`), copy
    its state directory into one file, and bring the stopped services back up if they were
    running."""
    began = time.perf_counter()
    path = snapshot_path(settings, name)
    if path.exists() and not force:
        raise SnapshotError(f"snapshot {name!r} exists ({path}): choose another name, or "
                            f"replace it with `pulse-local snapshot save {name} --force`")
    stack = stack or native_stack(settings)
    state = settings.state_dir
    if not (state / "postgres" / "data" / "PG_VERSION").exists():
        raise SnapshotError(f"{state} holds no stack yet: nothing to snapshot. Start it with "
                            "`pulse-local up` and load data first")
    was_running = _running(stack)
    notes: list[str] = []
    phases: dict[str, float] = {}
    if "postgres" in was_running:
        migrations, responses = postgres_facts(settings)
    from pulse_local.stack.native import NativeStack

    kept: set[str] = (set(KEPT_RUNNING_ON_SAVE & set(was_running))
                      if isinstance(stack, NativeStack) else set())
    restart = _without(stack, kept)
    if was_running:
        t0 = time.perf_counter()
        if kept:
            stack.down(keep=frozenset(kept))
        else:
            stack.down()
        phases["down"] = time.perf_counter() - t0
        notes += getattr(stack, "notes", [])
    t0 = time.perf_counter()
    try:
        if "postgres" not in was_running:
            alone = _postgres_alone(stack)
            alone.up()
            try:
                migrations, responses = postgres_facts(settings)
            finally:
                alone.down()
        manifest = Manifest(
            name=name, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            pulse_local_version=pulse_local_version(), state_layout=state_layout(state),
            postgres_major=(state / "postgres" / "data" / "PG_VERSION").read_text().strip(),
            migrations=migrations, names=names_of(settings), fixtures=fixtures_in(state),
            responses=responses)
        write(path, state, manifest)
    finally:
        phases["copy"] = time.perf_counter() - t0
        if kept:
            from pulse_local.stack.emulator_state import resume_after_copy

            resume_after_copy(settings, kept)
        if was_running:
            t0 = time.perf_counter()
            report = restart.up()
            phases["up"] = time.perf_counter() - t0
            notes += report.notes
    return SaveReport(path, manifest, time.perf_counter() - began, path.stat().st_size, notes,
                      phases)


# Restore -------------------------------------------------------------------------------------
@dataclass
class RestoreReport:
    """What `restore` did."""

    manifest: Manifest
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: Seconds per step: verify (into the staging directory), down, swap, up.
    phases: dict[str, float] = field(default_factory=dict)


def _sibling(state: Path, tag: str) -> Path:
    return state.parent / f".{state.name}.{tag}"


def _fix_permissions(state: Path, old_mode: int) -> None:
    """The restored directory gets the old one's mode; as root, the cluster goes to the
    account PostgreSQL runs as (a portable snapshot carries no owners)."""
    from pulse_local.stack import tools

    account = tools.postgres_os_user()
    state.chmod(old_mode | (stat.S_IXOTH if account is not None else 0))
    cluster = state / "postgres"
    if account is None or not cluster.exists():
        return
    for root, dirs, files in os.walk(cluster):
        os.chown(root, account.pw_uid, account.pw_gid)
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), account.pw_uid, account.pw_gid)
    (cluster / "data").chmod(0o700)


def restore(settings: Settings, ref: str, *, stack: Any = None) -> RestoreReport:
    """Verify the whole snapshot first, then stop the stack, swap the state directory and
    start the stack on it (missing migrations are applied by `up`). If that start fails, the
    old state directory is put back and started, and the error says so."""
    began = time.perf_counter()
    path = resolve(settings, ref)
    stack = stack or native_stack(settings)
    state = settings.state_dir
    staging, aside = _sibling(state, "restoring"), _sibling(state, "before-restore")
    if aside.exists():
        raise SnapshotError(
            f"{aside} exists: it holds the state from before an interrupted restore. Move it "
            f"back to {state} or delete it, then restore again")
    t0 = time.perf_counter()
    manifest = extract_verified(path, staging, settings)
    phases = {"verify": time.perf_counter() - t0}
    notes = [(f"verified {len(manifest.files)} files ({manifest.size_bytes / 1e6:.1f} MB) of "
              f"snapshot {manifest.name!r} taken {manifest.created_at}")]
    known = max(code_migrations())
    if manifest.migration_level < known:
        notes.append(f"snapshot schema level {manifest.migration_level}, this code's {known}: "
                     "`up` applies the missing migrations")
    was_running = bool(_running(stack))
    t0 = time.perf_counter()
    if was_running:
        stack.down()
    phases["down"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    old_mode = 0o755
    had_state = state.exists() and any(state.iterdir())
    if state.exists():
        old_mode = stat.S_IMODE(state.stat().st_mode)
        if had_state:
            state.rename(aside)
        else:
            state.rmdir()
    staging.rename(state)
    try:
        for sub in ("run", "logs"):
            (state / sub).mkdir(exist_ok=True)
        if (aside / "secrets").is_dir():  # this machine's key, never the snapshot's
            shutil.copytree(aside / "secrets", state / "secrets")
        _fix_permissions(state, old_mode)
        _rebase_views(settings)
        phases["swap"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = stack.up()
    except BaseException as exc:
        _put_back(stack, state, aside, had_state, was_running)
        raise SnapshotError(
            f"the stack did not start on snapshot {manifest.name!r} ({exc}); the previous "
            f"state is back in {state}" + (" and running" if was_running else "")
            + f"; the restored copy is in {_sibling(state, 'restore-failed')}") from exc
    phases["up"] = time.perf_counter() - t0
    if had_state:
        shutil.rmtree(aside)
    notes += report.notes
    return RestoreReport(manifest, time.perf_counter() - began, notes, phases)


def _rebase_views(settings: Settings) -> None:
    """The warehouse's raw views name the files' absolute paths: point them at this state
    directory (the snapshot may come from another path or machine), as dbt does at start."""
    if not settings.duckdb_path.exists():
        return
    import duckdb

    from pulse_local.cdc import load_stream_config, refresh_views
    from pulse_local.streaming.sink import raw_events_dir, view_sql

    with duckdb.connect(str(settings.duckdb_path)) as conn:
        events = raw_events_dir(settings)
        if events.is_dir() and any(events.rglob("*.parquet")):
            conn.execute(view_sql(events))
        if load_stream_config().raw_dir(settings).is_dir():
            refresh_views(conn, settings)


def _put_back(stack: Any, state: Path, aside: Path, had_state: bool, was_running: bool) -> None:
    failed = _sibling(state, "restore-failed")
    stack.down(save=False)
    if failed.exists():
        shutil.rmtree(failed)
    state.rename(failed)
    if had_state:
        aside.rename(state)
        if was_running:
            stack.up()


# List and delete -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Listed:
    """One snapshot file as `list` shows it."""

    name: str
    path: Path
    file_bytes: int
    manifest: Manifest | None
    problem: str = ""


def list_snapshots(settings: Settings) -> list[Listed]:
    """Every ``*.tar.zst`` of the snapshot directory, with its manifest (or why it has none)."""
    folder = snapshot_dir(settings)
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        name = path.name[: -len(SUFFIX)]
        try:
            found.append(Listed(name, path, path.stat().st_size, read_manifest(path)))
        except SnapshotCorrupt as exc:
            found.append(Listed(name, path, path.stat().st_size, None, str(exc)))
    return found


def delete(settings: Settings, name: str) -> Path:
    """Delete a snapshot file of the snapshot directory."""
    path = snapshot_path(settings, name)
    if not path.exists():
        raise SnapshotNotFound(f"no snapshot {name!r} in {snapshot_dir(settings)}: see "
                               "`pulse-local snapshot list`")
    path.unlink()
    return path
