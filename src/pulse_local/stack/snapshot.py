"""Whole-stack snapshots: one portable file holding a point-in-time copy of the state directory.

A snapshot is taken quiesced: the stack is stopped with a clean `down` (which saves the
emulators' state under ``emulators/``), the state directory is copied, and the stack is brought
back up if it was running. Prefect's API server is left running (it writes nothing there and
reconnects to its database when PostgreSQL is back; its start is the stack's slowest). The copy holds PostgreSQL's data directory (the replication slot
included, so CDC resumes where the raw layer stopped), the CDC raw layer and its checkpoint,
the DuckDB warehouse and dbt state, the saved Bigtable rows and Pub/Sub backlogs, the raw
archive and the generated fixtures. It never holds logs, pid files, sockets or ``secrets/``
(the serving token key stays on its machine).

The file is a tar stream compressed with zstd (``NAME.tar.zst``) whose first member is
``manifest.json``: format version, pulse-local version, state layout, the schema migrations
applied (with their checksums), PostgreSQL's major version, project names, fixtures, sizes
and the SHA-256 of every member. `restore` reads and checks the whole file into a staging
directory beside the state directory before it touches the stack; only then does it stop the
stack, set the old state aside, move the new one in and start the stack, and it puts the old
state back if that start fails.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from pulse_local.config import Settings
from pulse_local.errors import (
    PulseError,
    SnapshotCorrupt,
    SnapshotError,
    SnapshotIncompatible,
    SnapshotNotFound,
)

#: Version of the file layout; `restore` refuses any other.
FORMAT_VERSION = 1
SUFFIX = ".tar.zst"
MANIFEST = "manifest.json"
#: Members' paths inside the tar start with this (the state directory's content).
PREFIX = "state/"
#: Top-level entries of the state directory never copied: machine-specific or secret.
EXCLUDED_TOP = frozenset({"run", "logs", "secrets"})
#: File names never copied wherever they are (PostgreSQL's running-server files).
EXCLUDED_NAMES = frozenset({"postmaster.pid", "postmaster.opts"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CHUNK = 1 << 20


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


# The manifest --------------------------------------------------------------------------------
@dataclass
class Manifest:
    """What a snapshot holds and what it needs to be restored."""

    name: str
    created_at: str
    pulse_local_version: str
    state_layout: int
    postgres_major: str
    migrations: dict[str, str]
    names: dict[str, str]
    fixtures: list[dict[str, int]] = field(default_factory=list)
    responses: int | None = None
    directories: dict[str, int] = field(default_factory=dict)
    #: path -> {"size", "sha256", "mode", "mtime"}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def migration_level(self) -> str:
        return max(self.migrations, default="0000")

    @property
    def size_bytes(self) -> int:
        return sum(int(f["size"]) for f in self.files.values())

    def to_json(self) -> bytes:
        body = {"format": "pulse-local-snapshot", **self.__dict__,
                "migration_level": self.migration_level, "size_bytes": self.size_bytes}
        return json.dumps(body, indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse a manifest; anything malformed is `SnapshotCorrupt`."""
        try:
            body = json.loads(raw)
            if body.get("format") != "pulse-local-snapshot":
                raise ValueError("not a pulse-local snapshot manifest")
            known = set(cls.__dataclass_fields__)
            manifest = cls(**{k: v for k, v in body.items() if k in known})
            for entry in manifest.files.values():
                int(entry["size"]), str(entry["sha256"]), int(entry["mode"])
            return manifest
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SnapshotCorrupt(f"the snapshot's manifest is unreadable ({exc})") from exc


def _pulse_local_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pulse-local")
    except PackageNotFoundError:
        return "unknown"


def local_postgres_major() -> str:
    """The major version of the PostgreSQL server binaries this machine runs."""
    from pulse_local.stack import postgres as pg

    out = subprocess.run([str(pg._binaries().postgres), "--version"], capture_output=True,
                         text=True, check=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if match is None:
        raise SnapshotError(f"cannot read PostgreSQL's version from {out!r}")
    return match[1]


def code_migrations() -> dict[str, str]:
    """The schema migrations this code knows: version -> checksum."""
    from pulse_local.source.migrations import discover

    return {m.version: m.checksum for m in discover()}


def check_compatible(manifest: Manifest, settings: Settings) -> None:
    """Refuse, with `SnapshotIncompatible`, a snapshot this code cannot restore faithfully.

    An older migration level is accepted: `up` applies the missing migrations after the
    restore, as it does after a `git pull` that adds one."""
    where = f"snapshot {manifest.name!r} (pulse-local {manifest.pulse_local_version})"
    if manifest.format_version != FORMAT_VERSION:
        raise SnapshotIncompatible(
            f"{where} has format version {manifest.format_version}; this pulse-local reads "
            f"{FORMAT_VERSION}: restore it with the pulse-local that saved it")
    from pulse_local.stack.native import STATE_VERSION

    if manifest.state_layout != STATE_VERSION:
        raise SnapshotIncompatible(
            f"{where} has state layout {manifest.state_layout}; this pulse-local uses "
            f"{STATE_VERSION}: restore it with the pulse-local that saved it")
    known = code_migrations()
    newer = sorted(set(manifest.migrations) - set(known))
    if newer:
        raise SnapshotIncompatible(
            f"{where} has schema migrations this code does not know ({', '.join(newer)}; "
            f"snapshot level {manifest.migration_level}, this code's {max(known)}): update "
            "pulse-local (`git pull`) and restore again")
    changed = sorted(v for v, c in manifest.migrations.items() if known[v] != c)
    if changed:
        raise SnapshotIncompatible(
            f"{where} applied migrations {', '.join(changed)} whose text differs from this "
            "code's: restore it with the pulse-local that saved it")
    local = local_postgres_major()
    if manifest.postgres_major != local:
        raise SnapshotIncompatible(
            f"{where} holds a PostgreSQL {manifest.postgres_major} cluster and this machine "
            f"runs PostgreSQL {local}: point PULSE_PG_BINDIR at PostgreSQL "
            f"{manifest.postgres_major}'s bin directory, or take the snapshot again here")
    ours = _names(settings)
    differ = {k: (v, ours.get(k)) for k, v in manifest.names.items() if ours.get(k) != v}
    if differ:
        raise SnapshotIncompatible(
            f"{where} was taken with other names than these settings "
            + ", ".join(f"{k}={v!r} (here {h!r})" for k, (v, h) in differ.items())
            + ": set the same PULSE_* values to restore it")


def _names(settings: Settings) -> dict[str, str]:
    """Names baked into the saved state: another value here would not find it."""
    return {"project": settings.project, "bigtable_instance": settings.bigtable_instance,
            "db_name": settings.db_name, "db_admin_user": settings.db_admin_user,
            "db_app_user": settings.db_app_user}


# Walking and hashing the state directory -----------------------------------------------------
def _members(state: Path) -> Iterator[Path]:
    """Every directory and file of the state directory a snapshot holds, parents first."""
    skip = _recycled_wal(state / "postgres" / "data")
    for top in sorted(state.iterdir()):
        if top.name in EXCLUDED_TOP:
            continue
        yield from _walk(top, skip)


_WAL_SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def _recycled_wal(data: Path) -> frozenset[Path]:
    """WAL segments after the one holding the last checkpoint: after a clean shutdown they are
    recycled files PostgreSQL overwrites before it reads them (``min_wal_size`` keeps 80 MB of
    them). Older segments stay: the replication slot may need them. When pg_controldata cannot
    tell, nothing is skipped."""
    from pulse_local.stack import postgres as pg

    wal = data / "pg_wal"
    if not wal.is_dir():
        return frozenset()
    try:
        out = subprocess.run([str(pg._binaries().tool("pg_controldata")), "-D", str(data)],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError, PulseError):
        return frozenset()
    state = re.search(r"Database cluster state:\s+(.+)", out)
    redo = re.search(r"Latest checkpoint's REDO WAL file:\s+([0-9A-F]{24})", out)
    if not state or state[1].strip() != "shut down" or not redo:
        return frozenset()
    timeline = redo[1][:8]
    return frozenset(p for p in wal.iterdir() if _WAL_SEGMENT.match(p.name)
                     and p.name[:8] == timeline and p.name > redo[1])


def _walk(path: Path, skip: frozenset[Path] = frozenset()) -> Iterator[Path]:
    if path in skip:
        return
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        raise SnapshotError(
            f"{path} is a symbolic link, which a portable snapshot cannot hold: replace it "
            "with what it points to, or remove it")
    if stat.S_ISDIR(mode):
        yield path
        for child in sorted(path.iterdir()):
            yield from _walk(child, skip)
    elif stat.S_ISREG(mode) and path.name not in EXCLUDED_NAMES:
        yield path
    # sockets, fifos and devices are machine-specific: never copied


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fixtures(state: Path) -> list[dict[str, int]]:
    """The fixture sets generated in this state directory (``fixtures/scale-S-seed-N``)."""
    found = []
    for folder in sorted((state / "fixtures").glob("scale-*-seed-*")):
        match = re.fullmatch(r"scale-(\d+)-seed-(-?\d+)", folder.name)
        if match:
            found.append({"scale": int(match[1]), "seed": int(match[2])})
    return found


def _postgres_facts(settings: Settings) -> tuple[dict[str, str], int | None]:
    """The applied schema migrations (version -> checksum) and the number of responses."""
    import psycopg

    with psycopg.connect(settings.admin_dsn(), connect_timeout=10) as conn:
        rows = conn.execute("select version, checksum from schema_migrations").fetchall()
        has = conn.execute("select to_regclass('responses') is not null").fetchone()
        responses = (conn.execute("select count(*) from responses").fetchone()[0]
                     if has and has[0] else None)
    return {v: c for v, c in rows}, responses


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


#: Services a save leaves running: they write nothing under the state directory, and Prefect's
#: API server reconnects to its database (SQLAlchemy's pre-ping) once PostgreSQL is back. Its
#: start is the slowest of the stack; the deployments runner, which may start flows that write
#: the warehouse, is stopped like every other writer.
KEPT_RUNNING_ON_SAVE = frozenset({"prefect"})


def _quiescing(stack: Any) -> Any:
    """The stack without the services a save leaves running (the same object if it has none)."""
    from pulse_local.stack.native import NativeStack

    if not isinstance(stack, NativeStack) or not KEPT_RUNNING_ON_SAVE & stack._by_name.keys():
        return stack
    return NativeStack(stack.settings, [s for s in stack.services
                                        if s.name not in KEPT_RUNNING_ON_SAVE])


def save(settings: Settings, name: str, *, stack: Any = None, force: bool = False) -> SaveReport:
    """Quiesce the stack (a clean `down` of every service but Prefect's API server saves the
    emulators and stops PostgreSQL), copy its state directory into one file, and bring the
    stopped services back up if they were running."""
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
        migrations, responses = _postgres_facts(settings)
    quiesce = _quiescing(stack)
    if was_running:
        t0 = time.perf_counter()
        quiesce.down()
        phases["down"] = time.perf_counter() - t0
        notes += getattr(quiesce, "notes", [])
    t0 = time.perf_counter()
    try:
        if "postgres" not in was_running:
            alone = _postgres_alone(stack)
            alone.up()
            try:
                migrations, responses = _postgres_facts(settings)
            finally:
                alone.down()
        manifest = Manifest(
            name=name, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            pulse_local_version=_pulse_local_version(), state_layout=_state_layout(state),
            postgres_major=(state / "postgres" / "data" / "PG_VERSION").read_text().strip(),
            migrations=migrations, names=_names(settings), fixtures=_fixtures(state),
            responses=responses)
        _write(path, state, manifest)
    finally:
        phases["copy"] = time.perf_counter() - t0
        if was_running:
            t0 = time.perf_counter()
            report = quiesce.up()
            phases["up"] = time.perf_counter() - t0
            notes += report.notes
    return SaveReport(path, manifest, time.perf_counter() - began, path.stat().st_size, notes,
                      phases)


def _state_layout(state: Path) -> int:
    try:
        return int((state / "STATE_VERSION").read_text().strip())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{state}/STATE_VERSION is missing or unreadable ({exc}): the "
                            "state directory is not a pulse-local stack's") from exc


class _HashingReader(io.RawIOBase):
    """A file read once for the tar, hashed as it goes."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.digest.update(data)
        return data


def _write(path: Path, state: Path, manifest: Manifest) -> None:
    """Hash every member, then write manifest and members into ``path`` (atomically); a file
    that changes between the two reads stops the save."""
    import zstandard

    members = list(_members(state))
    for member in members:
        rel = member.relative_to(state).as_posix()
        info = member.stat()
        if stat.S_ISDIR(info.st_mode):
            manifest.directories[rel] = stat.S_IMODE(info.st_mode)
        else:
            manifest.files[rel] = {"size": info.st_size, "sha256": _sha256(member),
                                   "mode": stat.S_IMODE(info.st_mode), "mtime": info.st_mtime}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        with tmp.open("wb") as raw:
            compressor = zstandard.ZstdCompressor(level=3, write_checksum=True, threads=-1)
            with compressor.stream_writer(raw, closefd=False) as out, \
                    tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                body = manifest.to_json()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode, info.mtime = len(body), 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(body))
                for member in members:
                    _add(tar, state, member, manifest)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _add(tar: tarfile.TarFile, state: Path, member: Path, manifest: Manifest) -> None:
    rel = member.relative_to(state).as_posix()
    info = tarfile.TarInfo(PREFIX + rel)
    if rel in manifest.directories:
        info.type, info.mode = tarfile.DIRTYPE, manifest.directories[rel]
        tar.addfile(info)
        return
    entry = manifest.files[rel]
    info.size, info.mode, info.mtime = entry["size"], entry["mode"], entry["mtime"]
    with member.open("rb") as fh:
        reader = _HashingReader(fh)
        tar.addfile(info, reader)
    if reader.digest.hexdigest() != entry["sha256"]:
        raise SnapshotError(f"{member} changed while the snapshot was written: something "
                            "still writes to the state directory; stop it and save again")


# Read and verify -----------------------------------------------------------------------------
def _open_tar(path: Path, raw: IO[bytes]) -> tarfile.TarFile:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return tarfile.open(fileobj=reader, mode="r|")


def read_manifest(path: Path) -> Manifest:
    """The manifest of a snapshot file (its first member), without reading the rest."""
    with path.open("rb") as raw:
        try:
            with _open_tar(path, raw) as tar:
                first = tar.next()
                if first is None or first.name != MANIFEST or not first.isfile():
                    raise SnapshotCorrupt(f"{path} does not start with {MANIFEST}: not a "
                                          "pulse-local snapshot")
                fh = tar.extractfile(first)
                assert fh is not None
                return Manifest.from_json(fh.read())
        except SnapshotCorrupt:
            raise
        except Exception as exc:  # zstd, tar and EOF errors alike: the file is damaged
            raise SnapshotCorrupt(f"{path} is not a readable snapshot ({type(exc).__name__}: "
                                  f"{exc})") from exc


def _safe_rel(name: str) -> str:
    """A member's path inside the state directory; refuses absolute or escaping paths."""
    if not name.startswith(PREFIX):
        raise SnapshotCorrupt(f"member {name!r} is outside {PREFIX}")
    rel = PurePosixPath(name[len(PREFIX):])
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise SnapshotCorrupt(f"member {name!r} has an unsafe path")
    return rel.as_posix()


def extract_verified(path: Path, target: Path, settings: Settings) -> Manifest:
    """Read the whole snapshot into `target` (a new directory), checking as it goes: the
    manifest first (and that this code can restore it), then every member's SHA-256, then
    that nothing is missing. Any failure removes `target` and raises; nothing else is touched.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    try:
        with path.open("rb") as raw, _open_tar(path, raw) as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise SnapshotCorrupt(f"{path} does not start with {MANIFEST}")
            fh = tar.extractfile(first)
            assert fh is not None
            manifest = Manifest.from_json(fh.read())
            check_compatible(manifest, settings)
            seen_files: set[str] = set()
            # tar.next(), not `for member in tar`: iterating starts over at the manifest
            while (member := tar.next()) is not None:
                rel = _safe_rel(member.name)
                dest = target / rel
                if member.isdir():
                    if rel not in manifest.directories:
                        raise SnapshotCorrupt(f"directory {rel} is not in the manifest")
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                entry = manifest.files.get(rel)
                if not member.isfile() or entry is None:
                    raise SnapshotCorrupt(f"member {rel} is not a file of the manifest")
                _extract_file(tar, member, dest, entry, rel)
                seen_files.add(rel)
            missing = sorted(set(manifest.files) - seen_files)
            if missing:
                raise SnapshotCorrupt(f"{len(missing)} files of the manifest are missing "
                                      f"(first: {missing[0]}): the file is truncated")
            for rel, mode in sorted(manifest.directories.items(), reverse=True):
                if not (target / rel).is_dir():
                    raise SnapshotCorrupt(f"directory {rel} of the manifest is missing")
                (target / rel).chmod(mode & 0o755)
        return manifest
    except PulseError as exc:
        shutil.rmtree(target, ignore_errors=True)
        if isinstance(exc, SnapshotCorrupt):
            raise SnapshotCorrupt(f"{path} is corrupt or truncated: {exc}; nothing was changed. "
                                  "Take the snapshot again or copy it again") from exc
        raise
    except Exception as exc:  # zstd, tar, EOF and OS errors: the file is damaged or truncated
        shutil.rmtree(target, ignore_errors=True)
        raise SnapshotCorrupt(
            f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); nothing was "
            "changed. Take the snapshot again or copy it again") from exc


def _extract_file(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path,
                  entry: dict[str, Any], rel: str) -> None:
    if member.size != int(entry["size"]):
        raise SnapshotCorrupt(f"{rel} has {member.size} bytes, the manifest says {entry['size']}")
    source = tar.extractfile(member)
    assert source is not None
    digest = hashlib.sha256()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != entry["sha256"]:
        raise SnapshotCorrupt(f"{rel} does not match its SHA-256 in the manifest")
    dest.chmod(int(entry["mode"]) & 0o755)
    os.utime(dest, (float(entry["mtime"]), float(entry["mtime"])))


def verify(path: Path, settings: Settings, scratch: Path) -> Manifest:
    """Check a snapshot file completely (into `scratch`, removed after)."""
    try:
        return extract_verified(path, scratch, settings)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
