"""Unit: the snapshot file (manifest, members, verification) on a hand-made state directory.

Fakes, said plainly: the state directory holds made-up files instead of a stack's, and the
local PostgreSQL major version is patched to the manifest's (no PostgreSQL is run). The
archive code, zstd and tar are the real ones."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from pulse_local.config import Settings
from pulse_local.errors import (
    SnapshotCorrupt,
    SnapshotError,
    SnapshotIncompatible,
    SnapshotNotFound,
)
from pulse_local.stack import snapshot, snapshot_archive, snapshot_manifest
from pulse_local.stack.native import STATE_VERSION


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(snapshot_manifest, "local_postgres_major", lambda: "15")
    return Settings(state_dir=tmp_path / "state", snapshot_dir=tmp_path / "snaps")


def _state(settings: Settings) -> Path:
    """A made-up state directory shaped like a stack's."""
    state = settings.state_dir
    data = state / "postgres" / "data"
    (data / "pg_wal" / "archive_status").mkdir(parents=True)  # empty: must come back
    (data / "PG_VERSION").write_text("15\n")
    (data / "base.bin").write_bytes(os.urandom(300_000))
    (data / "postmaster.pid").write_text("123\n")
    (data / "postmaster.opts").write_text("/usr/lib/postgresql/15/bin/postgres\n")
    data.chmod(0o700)
    (data / "base.bin").chmod(0o600)
    (state / "warehouse" / "raw").mkdir(parents=True)
    (state / "warehouse" / "pulse.duckdb").write_bytes(b"duck" * 5000)
    (state / "emulators").mkdir()
    (state / "emulators" / "bigtable.jsonl.gz").write_bytes(b"\x1f\x8b saved rows")
    (state / "fixtures" / "scale-2-seed-42").mkdir(parents=True)
    for machine_only in ("run", "logs", "secrets"):
        (state / machine_only).mkdir()
    (state / "run" / "postgres.pid").write_text("{}")
    (state / "logs" / "postgres.log").write_text("log line\n")
    (state / "secrets" / "serving-token.key").write_text("do not copy me")
    (state / "STATE_VERSION").write_text(f"{STATE_VERSION}\n")
    return state


def _manifest(settings: Settings, **changes: object) -> snapshot.Manifest:
    base: dict[str, object] = {
        "name": "t1", "created_at": "2026-12-07T14:00:00+00:00", "pulse_local_version": "0.1.0",
        "state_layout": STATE_VERSION, "postgres_major": "15",
        "migrations": snapshot.code_migrations(), "names": snapshot.names_of(settings),
        "fixtures": snapshot.fixtures_in(settings.state_dir), "responses": 2000}
    base.update(changes)
    return snapshot.Manifest(**base)  # type: ignore[arg-type]


def _saved(settings: Settings, **changes: object) -> Path:
    path = snapshot.snapshot_path(settings, "t1")
    snapshot.write(path, _state(settings), _manifest(settings, **changes))
    return path


def test_round_trip_keeps_files_modes_and_empty_directories_and_drops_machine_files(
        settings: Settings, tmp_path: Path) -> None:
    path = _saved(settings)
    target = tmp_path / "restored"
    manifest = snapshot.extract_verified(path, target, settings)
    state = settings.state_dir
    files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert files == {"postgres/data/PG_VERSION", "postgres/data/base.bin",
                     "warehouse/pulse.duckdb", "emulators/bigtable.jsonl.gz", "STATE_VERSION"}
    assert (target / "postgres/data/base.bin").read_bytes() == \
        (state / "postgres/data/base.bin").read_bytes()
    assert (target / "postgres/data/pg_wal/archive_status").is_dir()
    assert (target / "fixtures/scale-2-seed-42").is_dir()
    assert (target / "postgres/data").stat().st_mode & 0o777 == 0o700
    assert (target / "postgres/data/base.bin").stat().st_mode & 0o777 == 0o600
    assert not (target / "secrets").exists() and not (target / "run").exists()
    assert manifest.migration_level == max(snapshot.code_migrations())
    assert manifest.fixtures == [{"scale": 2, "seed": 42}]
    assert manifest.size_bytes == sum((target / f).stat().st_size for f in files)


def test_the_manifest_comes_first_and_says_what_the_file_holds(settings: Settings) -> None:
    path = _saved(settings)
    manifest = snapshot.read_manifest(path)
    assert manifest.format_version == snapshot.FORMAT_VERSION
    assert manifest.postgres_major == "15" and manifest.responses == 2000
    assert set(manifest.files["warehouse/pulse.duckdb"]) >= {"size", "sha256", "mode"}
    assert manifest.files["warehouse/pulse.duckdb"]["size"] == 20000
    raw = json.loads(manifest.to_json())
    assert raw["migration_level"] == manifest.migration_level and raw["size_bytes"] > 300_000
    [listed] = snapshot.list_snapshots(settings)
    assert listed.name == "t1" and listed.manifest is not None and not listed.problem


def test_a_truncated_file_is_refused_and_leaves_nothing(settings: Settings,
                                                        tmp_path: Path) -> None:
    path = _saved(settings)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    target = tmp_path / "restored"
    with pytest.raises(SnapshotCorrupt, match="corrupt"):
        snapshot.extract_verified(path, target, settings)
    assert not target.exists()


def test_every_cut_point_is_refused_with_the_same_message(settings: Settings,
                                                          tmp_path: Path) -> None:
    """A cut that lands on a tar header ends tarfile's stream quietly; the manifest check must
    still name the file truncated, in the same words as a cut inside a member (CI saw both)."""
    state = _state(settings)
    for i in range(400):  # many small members, so that some cut lands on a header
        (state / "postgres" / "data" / f"rel_{i}").write_bytes(os.urandom(700))
    path = snapshot.snapshot_path(settings, "t1")
    snapshot.write(path, state, _manifest(settings))
    whole = path.read_bytes()
    for cut in range(1, 40):
        path.write_bytes(whole[: len(whole) * cut // 40])
        target = tmp_path / f"restored-{cut}"
        with pytest.raises(SnapshotCorrupt, match="corrupt or truncated"):
            snapshot.extract_verified(path, target, settings)
        assert not target.exists()


def test_a_damaged_byte_is_refused(settings: Settings, tmp_path: Path) -> None:
    path = _saved(settings)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotCorrupt):
        snapshot.extract_verified(path, tmp_path / "restored", settings)


def _rewrite(path: Path, change: Callable[[tarfile.TarInfo, bytes], tuple[Any, bytes]]) -> None:
    """Recompress the archive with `change` applied to each member (a sound zstd stream whose
    content no longer matches its manifest)."""
    members = []
    with path.open("rb") as raw, snapshot_archive.open_tar(path, raw) as tar:
        while (info := tar.next()) is not None:
            body = tar.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            members.append(change(info, body))
    with path.open("wb") as raw, zstandard.ZstdCompressor().stream_writer(raw) as out, \
            tarfile.open(fileobj=out, mode="w|") as tar:
        for info, body in members:
            if info is not None:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body) if info.isfile() else None)


def test_a_member_whose_bytes_differ_from_the_manifest_is_refused(settings: Settings,
                                                                  tmp_path: Path) -> None:
    path = _saved(settings)
    _rewrite(path, lambda i, b: (i, b.replace(b"duck", b"goose", 1)
                                 if i.name.endswith("pulse.duckdb") else b))
    with pytest.raises(SnapshotCorrupt, match="pulse.duckdb"):
        snapshot.extract_verified(path, tmp_path / "restored", settings)


def test_a_missing_member_is_refused(settings: Settings, tmp_path: Path) -> None:
    path = _saved(settings)
    _rewrite(path, lambda i, b: (None, b) if i.name.endswith("PG_VERSION") else (i, b))
    with pytest.raises(SnapshotCorrupt, match="missing"):
        snapshot.extract_verified(path, tmp_path / "restored", settings)


def test_a_member_escaping_the_state_directory_is_refused(settings: Settings,
                                                          tmp_path: Path) -> None:
    path = _saved(settings)

    def escape(info: tarfile.TarInfo, body: bytes) -> tuple[tarfile.TarInfo, bytes]:
        if info.name.endswith("STATE_VERSION"):
            info.name = "state/../../escaped"
        return info, body

    _rewrite(path, escape)
    with pytest.raises(SnapshotCorrupt, match="unsafe"):
        snapshot.extract_verified(path, tmp_path / "restored", settings)
    assert not (tmp_path / "escaped").exists()


def test_not_a_snapshot_is_corrupt_and_listed_with_its_problem(settings: Settings,
                                                               tmp_path: Path) -> None:
    path = snapshot.snapshot_path(settings, "junk")
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(4096))
    with pytest.raises(SnapshotCorrupt):
        snapshot.read_manifest(path)
    [listed] = snapshot.list_snapshots(settings)
    assert listed.manifest is None and "not a readable snapshot" in listed.problem


@pytest.mark.parametrize(("changes", "message"), [
    ({"migrations": {**snapshot.code_migrations(), "9999": "x"}}, "does not know"),
    ({"migrations": {"0001": "another checksum"}}, "differs"),
    ({"format_version": snapshot.FORMAT_VERSION + 1}, "format version"),
    ({"postgres_major": "18"}, "PostgreSQL 18"),
    ({"state_layout": STATE_VERSION + 1}, "state layout"),
    ({"names": {"project": "another-project"}}, "project='another-project'"),
])
def test_a_snapshot_this_code_cannot_restore_is_refused_before_anything(
        settings: Settings, tmp_path: Path, changes: dict[str, object], message: str) -> None:
    path = _saved(settings, **changes)
    target = tmp_path / "restored"
    with pytest.raises(SnapshotIncompatible, match=message):
        snapshot.extract_verified(path, target, settings)
    assert not target.exists()


def test_an_older_migration_level_is_accepted(settings: Settings, tmp_path: Path) -> None:
    older = dict(sorted(snapshot.code_migrations().items())[:2])
    path = _saved(settings, migrations=older)
    manifest = snapshot.extract_verified(path, tmp_path / "restored", settings)
    assert manifest.migration_level < max(snapshot.code_migrations())


def test_a_symbolic_link_in_the_state_stops_the_save(settings: Settings) -> None:
    state = _state(settings)
    (state / "warehouse" / "link").symlink_to(state / "STATE_VERSION")
    with pytest.raises(SnapshotError, match="symbolic link"):
        snapshot.write(snapshot.snapshot_path(settings, "t1"), state, _manifest(settings))
    assert not list(settings.snapshot_dir.glob("*"))  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x.tar.zst", "a b"])
def test_names_are_plain_file_names(name: str) -> None:
    with pytest.raises(SnapshotError, match="not allowed"):
        snapshot.check_name(name)


def test_unknown_snapshots_are_named_errors(settings: Settings) -> None:
    with pytest.raises(SnapshotNotFound, match="snapshot list"):
        snapshot.resolve(settings, "nope")
    with pytest.raises(SnapshotNotFound):
        snapshot.delete(settings, "nope")


def test_the_default_directory_is_beside_the_state_directory(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path / "x" / ".pulse")
    assert snapshot.snapshot_dir(s) == tmp_path / "x" / ".pulse-snapshots"


def test_the_commands_list_and_delete_snapshots(settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pulse_local.cli import app
    from pulse_local.stack import snapshot_commands

    monkeypatch.setattr(snapshot_commands.console, "width", 200)  # one line a snapshot
    _saved(settings)
    monkeypatch.setenv("PULSE_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("PULSE_SNAPSHOT_DIR", str(settings.snapshot_dir))
    runner = CliRunner()
    listed = runner.invoke(app, ["snapshot", "list"])
    assert listed.exit_code == 0, listed.output
    assert "t1" in listed.output and "scale 2 seed 42" in listed.output
    deleted = runner.invoke(app, ["snapshot", "delete", "t1"])
    assert deleted.exit_code == 0 and not snapshot.snapshot_path(settings, "t1").exists()
    for command in ("save", "restore", "list", "delete"):
        helped = runner.invoke(app, ["snapshot", command, "--help"])
        assert "Example:" in helped.output, command


def test_restored_warehouse_views_read_the_new_state_directory(tmp_path: Path) -> None:
    """A warehouse copied from another path: its raw views are pointed at the new one (real
    DuckDB; the old directory is deleted, so a view left behind would fail)."""
    import duckdb

    from pulse_local.streaming.sink import RAW_TABLE, raw_events_dir, view_sql

    old = Settings(state_dir=tmp_path / "old")
    events = raw_events_dir(old)
    events.mkdir(parents=True)
    old.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(old.duckdb_path)) as conn:
        conn.execute(f"copy (select 'sub' as subscription_name, 'm1' as message_id, "
                     f"now() as publish_time, '{{}}' as data, '{{}}' as attributes) "
                     f"to '{events / 'part-0.parquet'}' (format parquet)")
        conn.execute(view_sql(events))
    new = Settings(state_dir=tmp_path / "new")
    old.state_dir.rename(new.state_dir)
    snapshot._rebase_views(new)
    with duckdb.connect(str(new.duckdb_path)) as conn:
        assert conn.execute(f"select count(*) from raw.{RAW_TABLE}").fetchone() == (1,)


class _StackThatFailsToStart:
    """A fake stack (no processes): nothing runs, `up` fails, `down` records its calls."""

    mode = "native"

    def __init__(self) -> None:
        self.services: list[object] = []
        self.downs: list[bool] = []

    def pid_path(self, name: str) -> Path:
        raise AssertionError("no services")

    def up(self) -> None:
        raise RuntimeError("PostgreSQL would not start")

    def down(self, *, save: bool = True) -> list[str]:
        self.downs.append(save)
        return []


def test_a_restore_whose_stack_fails_puts_the_old_state_back(settings: Settings) -> None:
    """Fake stack, real files: the swap is undone when anything after it fails (here the
    made-up warehouse file, which is no DuckDB database, or else `up`)."""
    path = _saved(settings)
    state = settings.state_dir
    shutil.rmtree(state)
    state.mkdir()
    (state / "mine.txt").write_text("the state before the restore")
    (state / "secrets").mkdir()
    (state / "secrets" / "serving-token.key").write_text("this machine's key")
    stack = _StackThatFailsToStart()
    with pytest.raises(SnapshotError, match="previous state is back"):
        snapshot.restore(settings, str(path), stack=stack)
    assert (state / "mine.txt").read_text() == "the state before the restore"
    assert (state / "secrets" / "serving-token.key").read_text() == "this machine's key"
    failed = state.parent / f".{state.name}.restore-failed"
    assert (failed / "STATE_VERSION").exists() and not (failed / "mine.txt").exists()
    assert not (state.parent / f".{state.name}.before-restore").exists()
    assert stack.downs == [False]
