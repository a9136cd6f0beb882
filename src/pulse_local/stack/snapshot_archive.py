"""A snapshot's file: a tar stream compressed with zstd whose first member is the manifest.

`write` hashes every member of the state directory, then writes the manifest and the members
(atomically, through a ``.part`` file); a member that changes between the two reads stops it.
`extract_verified` reads a whole file into a new directory, checking the manifest (and that this
code can restore it), every member's size and SHA-256 and that nothing is missing or outside
the state directory; any failure removes what it wrote and raises `SnapshotCorrupt`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from pulse_local.config import Settings
from pulse_local.errors import PulseError, SnapshotCorrupt, SnapshotError
from pulse_local.stack.snapshot_manifest import Manifest, check_compatible

MANIFEST = "manifest.json"
#: Members' paths inside the tar start with this (the state directory's content).
PREFIX = "state/"
#: Top-level entries of the state directory never copied: machine-specific or secret.
EXCLUDED_TOP = frozenset({"run", "logs", "secrets"})
#: File names never copied wherever they are (PostgreSQL's running-server files).
EXCLUDED_NAMES = frozenset({"postmaster.pid", "postmaster.opts"})
_CHUNK = 1 << 20


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


def write(path: Path, state: Path, manifest: Manifest) -> None:
    """Hash every member, then write manifest and members into ``path`` (atomically); a file
    that changes between the two reads stops the save."""
    import zstandard

    members = list(_members(state))
    for member in members:
        rel = member.relative_to(state).as_posix()
        found = member.stat()
        if stat.S_ISDIR(found.st_mode):
            manifest.directories[rel] = stat.S_IMODE(found.st_mode)
        else:
            manifest.files[rel] = {"size": found.st_size, "sha256": _sha256(member),
                                   "mode": stat.S_IMODE(found.st_mode), "mtime": found.st_mtime}
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
def open_tar(path: Path, raw: IO[bytes]) -> tarfile.TarFile:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return tarfile.open(fileobj=reader, mode="r|")


def read_manifest(path: Path) -> Manifest:
    """The manifest of a snapshot file (its first member), without reading the rest."""
    with path.open("rb") as raw:
        try:
            with open_tar(path, raw) as tar:
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
        with path.open("rb") as raw, open_tar(path, raw) as tar:
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
