"""A snapshot's manifest: what it holds, and whether this code can restore it faithfully.

The manifest is the first member of a snapshot file (``manifest.json``): format version,
pulse-local version, state layout, the schema migrations applied (with their checksums),
PostgreSQL's major version, project names, fixtures, sizes and the SHA-256 of every member.
`check_compatible` refuses, with `SnapshotIncompatible`, one this code would restore wrongly.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulse_local.config import Settings
from pulse_local.errors import SnapshotCorrupt, SnapshotError, SnapshotIncompatible

#: Version of the file layout; `restore` refuses any other.
FORMAT_VERSION = 1


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


def pulse_local_version() -> str:
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
    ours = names_of(settings)
    differ = {k: (v, ours.get(k)) for k, v in manifest.names.items() if ours.get(k) != v}
    if differ:
        raise SnapshotIncompatible(
            f"{where} was taken with other names than these settings "
            + ", ".join(f"{k}={v!r} (here {h!r})" for k, (v, h) in differ.items())
            + ": set the same PULSE_* values to restore it")


def names_of(settings: Settings) -> dict[str, str]:
    """Names baked into the saved state: another value here would not find it."""
    return {"project": settings.project, "bigtable_instance": settings.bigtable_instance,
            "db_name": settings.db_name, "db_admin_user": settings.db_admin_user,
            "db_app_user": settings.db_app_user}


def fixtures_in(state: Path) -> list[dict[str, int]]:
    """The fixture sets generated in this state directory (``fixtures/scale-S-seed-N``)."""
    found = []
    for folder in sorted((state / "fixtures").glob("scale-*-seed-*")):
        match = re.fullmatch(r"scale-(\d+)-seed-(-?\d+)", folder.name)
        if match:
            found.append({"scale": int(match[1]), "seed": int(match[2])})
    return found


def postgres_facts(settings: Settings) -> tuple[dict[str, str], int | None]:
    """The applied schema migrations (version -> checksum) and the number of responses."""
    import psycopg

    with psycopg.connect(settings.admin_dsn(), connect_timeout=10) as conn:
        rows = conn.execute("select version, checksum from schema_migrations").fetchall()
        has = conn.execute("select to_regclass('responses') is not null").fetchone()
        counted = (conn.execute("select count(*) from responses").fetchone()
                   if has and has[0] else None)
    return {str(v): str(c) for v, c in rows}, (int(counted[0]) if counted else None)


def state_layout(state: Path) -> int:
    """The state directory's layout version (``STATE_VERSION``)."""
    try:
        return int((state / "STATE_VERSION").read_text().strip())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{state}/STATE_VERSION is missing or unreadable ({exc}): the "
                            "state directory is not a pulse-local stack's") from exc
