"""dbt's documentation site (models, columns, lineage graph) for a project on DuckDB
(`pulse-local dbt docs`).

::

    site = generate_docs(settings)                 # dbt docs generate, target local
    server = serve_docs(site.directory, port=8080) # http://127.0.0.1:8080/ in a thread
    server.stop()

`generate_docs` runs ``dbt docs generate`` through `run_dbt` on the project's DuckDB output:
the catalog (column names and types) is read from the local warehouse, so build it first.
The site is written to ``<state_dir>/dbt/docs/<project>/target/``. `serve_docs` serves only
the site's files (``index.html``, ``manifest.json``, ``catalog.json``) on 127.0.0.1; the
CLI records the served address in ``<state_dir>/dbt/docs/serving.json`` for
``pulse-local status`` and removes it when it stops.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from pulse_local.config import Settings
from pulse_local.errors import ConfigError
from pulse_local.warehouse.dbt import DBT_PROJECT_DIR, DbtResult, dbt_work_dir, run_dbt

#: The files of dbt's static documentation site (index.html fetches the two JSON files).
SITE_FILES = ("index.html", "manifest.json", "catalog.json")


@dataclass(frozen=True)
class DocsSite:
    """A generated documentation site."""

    project: str
    directory: Path
    result: DbtResult

    @property
    def index(self) -> Path:
        return self.directory / "index.html"


def docs_root(settings: Settings) -> Path:
    """Where every project's site goes: ``<state_dir>/dbt/docs``."""
    return dbt_work_dir(settings) / "docs"


def _project_name(project: Path) -> str:
    try:
        return str(yaml.safe_load((project / "dbt_project.yml").read_text())["name"])
    except (OSError, KeyError, TypeError) as exc:
        raise ConfigError(f"{project} is not a dbt project ({type(exc).__name__}: {exc}): "
                          "pass --project-dir DIR holding dbt_project.yml") from None


def generate_docs(settings: Settings, *, project_dir: Path | None = None,
                  profiles_dir: Path | None = None, target: str | None = None) -> DocsSite:
    """``dbt docs generate`` for `project_dir` (default ``dbt/``, target ``local``; another
    project: its profile's default target) into ``<state_dir>/dbt/docs/<project>/target``.

    Raises `DbtError` when dbt fails, `WarehouseLocked` when another process holds the
    warehouse file, `ConfigError` when the output is not DuckDB."""
    from pulse_local.warehouse.check import profile_output

    project = Path(project_dir or DBT_PROJECT_DIR)
    name = _project_name(project)
    _, target_name, output = profile_output(
        project, Path(profiles_dir or project), target or ("local" if project_dir is None else None))
    if output.get("type") != "duckdb":
        raise ConfigError(f"dbt target {target_name!r} is a {output.get('type')!r} output: "
                          "pulse-local dbt docs reads the catalog of a DuckDB output "
                          "(e.g. --target local)")
    work = docs_root(settings) / name
    args = ["docs", "generate", "--target", target_name]
    if profiles_dir is not None:
        args += ["--profiles-dir", str(profiles_dir)]
    result = run_dbt(settings, args, project_dir=project, target=target_name,
                     target_path=work, quiet=True)
    return DocsSite(name, work / "target", result)


class _SiteHandler(SimpleHTTPRequestHandler):
    """Serves the site's files and nothing else (no directory listing, no other file)."""

    def _site_path(self) -> bool:
        """Point `self.path` at a site file; answer 404 (False) for anything else."""
        path = self.path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or "index.html"
        if path not in SITE_FILES:
            self.send_error(HTTPStatus.NOT_FOUND, f"not part of the dbt docs site: {path}")
            return False
        self.path = "/" + path
        return True

    def do_GET(self) -> None:
        if self._site_path():
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._site_path():
            super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request on the terminal."""


class DocsServer:
    """dbt's site served from `directory` on ``host:port`` in a background thread."""

    def __init__(self, directory: Path, port: int = 8080, host: str = "127.0.0.1") -> None:
        missing = [f for f in SITE_FILES if not (directory / f).is_file()]
        if missing:
            raise ConfigError(f"no dbt docs site in {directory} (missing {', '.join(missing)}): "
                              "run pulse-local dbt docs --no-serve first")
        handler = _handler_for(directory)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(f"cannot serve the dbt docs on {host}:{port} ({exc}): "
                              "choose another port with --port") from None
        self.directory = directory
        bound_host, self.port = self._server.server_address[:2]
        self.host = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        self._thread = threading.Thread(target=self._server.serve_forever, name="dbt-docs",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C in the CLI)."""
        self._thread.join()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(directory: Path) -> type[_SiteHandler]:
    class Handler(_SiteHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

    return Handler


def serve_docs(directory: Path, port: int = 8080, host: str = "127.0.0.1") -> DocsServer:
    """Serve a generated site (`DocsSite.directory`); port 0 picks a free port."""
    return DocsServer(directory, port, host)


# --------------------------------------------------------------------------------------
# what `pulse-local status` shows
# --------------------------------------------------------------------------------------

def _serving_file(settings: Settings) -> Path:
    return docs_root(settings) / "serving.json"


def record_serving(settings: Settings, server: DocsServer) -> Path:
    """Note the served address for `docs_location` (removed by `forget_serving`)."""
    path = _serving_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": server.url, "pid": os.getpid(),
                                "directory": str(server.directory)}))
    return path


def forget_serving(settings: Settings) -> None:
    _serving_file(settings).unlink(missing_ok=True)


def _read_serving(path: Path) -> tuple[str, int] | None:
    """(url, pid) from the serving file; None when there is none or it is torn."""
    try:
        info = json.loads(path.read_text())
        return str(info["url"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def docs_location(settings: Settings) -> str | None:
    """The served docs' URL while a `pulse-local dbt docs` process serves them, else the
    newest generated ``index.html``, else None."""
    import psutil

    served = _read_serving(_serving_file(settings))
    if served is not None and psutil.pid_exists(served[1]):
        return served[0]
    sites = sorted(docs_root(settings).glob("*/target/index.html"),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    return str(sites[0]) if sites else None
