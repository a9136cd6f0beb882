"""Run the Pulse dbt project (``dbt/``) for a profile, in-process.

::

    result = run_dbt(settings, ["build"])          # target = settings.profile (local | gcp)
    for node in result.nodes: print(node.name, node.status, node.time)
    check_gcp_offline(settings)                     # parse + compile for BigQuery, no network

dbt runs through ``dbt.cli.main.dbtRunner`` (no subprocess: dbt's start-up is most of the
cost of a small build). The profile's variables (``PULSE_STATE_DIR``, ``PULSE_DUCKDB_PATH``,
``PULSE_PROJECT``, ``PULSE_LOCATION`` ...) are set from `Settings` for the duration of the
call. dbt keeps global state, so calls must not run concurrently in one process.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulse_local.config import PROJECT_ROOT, Settings
from pulse_local.errors import PulseError

#: The dbt project (and its profiles.yml).
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"

#: dbt statuses that mean a node did not do its job.
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})

_LOCK = threading.Lock()


class DbtError(PulseError):
    """A dbt invocation failed. `str(err)` names the failing nodes and their messages;
    `err.result` holds every node's outcome (None when dbt stopped before running nodes)."""

    def __init__(self, message: str, result: DbtResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class BigQuerySqlError(DbtError):
    """A statement compiled for the gcp target is not valid BigQuery SQL."""


class WarehouseLocked(DbtError):
    """The local warehouse file is locked by another process (DuckDB allows one writer)."""


#: What DuckDB says when another process holds the database file.
_LOCK_MESSAGE = re.compile(
    r'Could not set lock on file "(?P<path>[^"]+)": Conflicting lock is held in '
    r"(?P<program>.*?) \(PID (?P<pid>\d+)\)")


@dataclass(frozen=True)
class DbtNodeResult:
    """Outcome of one node (model, test, unit test, hook ...) of a dbt invocation."""

    name: str
    unique_id: str
    resource_type: str
    status: str
    time: float
    failures: int | None = None
    message: str | None = None
    compiled_code: str | None = None
    #: the node's file in the project (e.g. ``models/facts/fact_response.sql``)
    path: str | None = None

    @property
    def ok(self) -> bool:
        return self.status not in FAILED_STATUSES


@dataclass
class DbtResult:
    """Outcome of one dbt invocation."""

    args: list[str]
    target: str
    success: bool
    seconds: float
    nodes: list[DbtNodeResult] = field(default_factory=list)
    error: str | None = None
    raw: Any = None

    @property
    def command(self) -> str:
        """The dbt command ("build", "docs generate" ...), without flags."""
        words: list[str] = []
        for a in self.args:
            if a.startswith("-"):
                if words:
                    break
                continue
            words.append(a)
            if words[0] != "docs" or len(words) == 2:
                break
        return " ".join(words) or "?"

    @property
    def failed(self) -> list[DbtNodeResult]:
        return [n for n in self.nodes if not n.ok]

    def node(self, name: str) -> DbtNodeResult:
        """The result of the node called `name` (KeyError if it did not run)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in this dbt result")

    def count(self, resource_type: str | None = None, status: str | None = None) -> int:
        return sum(
            1 for n in self.nodes
            if (resource_type is None or n.resource_type == resource_type)
            and (status is None or n.status == status)
        )

    def summary(self) -> str:
        by_status: dict[str, int] = {}
        for n in self.nodes:
            by_status[n.status] = by_status.get(n.status, 0) + 1
        counts = ", ".join(f"{v} {k}" for k, v in sorted(by_status.items())) or "no nodes"
        return f"dbt {self.command} (target {self.target}): {counts} in {self.seconds:.1f} s"


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment variables dbt/profiles.yml reads, derived from `settings`."""
    env = {
        "PULSE_PROFILE": settings.profile,
        "PULSE_STATE_DIR": str(settings.state_dir),
        "PULSE_DUCKDB_PATH": str(settings.duckdb_path),
        "PULSE_PROJECT": settings.project,
        "PULSE_LOCATION": settings.location,
        # no anonymous usage events: they try the network after every command
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    return env


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _has_flag(args: Sequence[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in args for f in flags)


def _node_results(raw: Any) -> list[DbtNodeResult]:
    results = getattr(raw, "results", None) or []
    out: list[DbtNodeResult] = []
    for r in results:
        node = getattr(r, "node", None)
        status = getattr(r, "status", "")
        status = str(getattr(status, "value", status))
        out.append(DbtNodeResult(
            name=getattr(node, "name", "?"),
            unique_id=getattr(node, "unique_id", "?"),
            resource_type=str(getattr(getattr(node, "resource_type", ""), "value",
                                      getattr(node, "resource_type", ""))),
            status=status,
            time=float(getattr(r, "execution_time", 0.0) or 0.0),
            failures=getattr(r, "failures", None),
            message=getattr(r, "message", None),
            compiled_code=getattr(node, "compiled_code", None),
            path=getattr(node, "original_file_path", None),
        ))
    return out


def _first_lines(text: str, n: int = 6) -> str:
    lines = [ln.rstrip() for ln in str(text).strip().splitlines() if ln.strip()]
    return "\n    ".join(lines[:n]) + ("\n    ..." if len(lines) > n else "")


def _failure_message(result: DbtResult) -> str:
    head = f"dbt {result.command} failed (target {result.target})"
    if result.error and not result.nodes:
        return f"{head}: {_first_lines(result.error)}"
    failed = result.failed
    lines = [f"{head}: {len(failed)} of {len(result.nodes)} nodes failed"]
    for n in failed[:20]:
        detail = _first_lines(n.message or "", 4)
        lines.append(f"  - {n.resource_type} {n.name} ({n.status}): {detail}")
    if len(failed) > 20:
        lines.append(f"  ... and {len(failed) - 20} more")
    skipped = result.count(status="skipped")
    if skipped:
        lines.append(f"  ({skipped} nodes skipped because of these failures)")
    if result.error:
        lines.append(f"  dbt: {_first_lines(result.error, 2)}")
    return "\n".join(lines)


def dbt_work_dir(settings: Settings) -> Path:
    """Where `run_dbt` writes dbt's ``target/`` and ``logs/`` by default: ``<state_dir>/dbt``.

    One per state directory, so partial parsing stays warm between runs of one stack and
    two stacks (or a test session and `make up`) never share dbt's state."""
    return settings.state_dir / "dbt"


def project_work_dir(settings: Settings, project: Path) -> Path:
    """`dbt_work_dir` for the repository's project; ``<state_dir>/dbt/projects/<name>-<hash>``
    for another one (its partial parse never mixes with ours, nothing lands in its folder)."""
    project = Path(project).resolve()
    if project == DBT_PROJECT_DIR.resolve():
        return dbt_work_dir(settings)
    import hashlib

    digest = hashlib.sha256(str(project).encode()).hexdigest()[:8]
    return dbt_work_dir(settings) / "projects" / f"{project.name}-{digest}"


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after an invocation.

    DuckDB allows one writing process per file: without this, the process that ran dbt
    would keep the warehouse locked until it exits (the CDC views, the streaming sink and
    `pulse-local doctor` open the same file). Nothing to do for other adapters."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing can hold a DuckDB file
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if environment is not None:
            environment.close()


def _holder(pid: int) -> str:
    import psutil

    try:
        return " ".join(psutil.Process(pid).cmdline())[:160] or "no command line"
    except psutil.Error as exc:  # it may have exited meanwhile: its pid still helps
        return type(exc).__name__


def _lock_error(result: DbtResult) -> WarehouseLocked | None:
    """`WarehouseLocked` when dbt failed because another process holds the DuckDB file."""
    texts = [result.error or "", *(n.message or "" for n in result.failed)]
    for text in texts:
        match = _LOCK_MESSAGE.search(text)
        if match:
            pid = int(match["pid"])
            return WarehouseLocked(
                f"the warehouse file {match['path']} is locked by another process "
                f"(PID {pid}: {_holder(pid)}). DuckDB allows one writing process per file: "
                "wait until that process is done or stop it, then run dbt again "
                "(the dbt_build flow retries this by itself)", result)
    return None


def run_dbt(
    settings: Settings,
    args: list[str],
    *,
    project_dir: Path | None = None,
    profiles_dir: Path | None = None,
    target: str | None = None,
    profile_default_target: bool = False,
    target_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    quiet: bool = False,
) -> DbtResult:
    """Run ``dbt <args>`` in-process for ``settings.profile`` and return every node's outcome.

    ``--project-dir``/``--profiles-dir`` point at ``dbt/`` (or `project_dir` /
    `profiles_dir`), ``--target`` is `target` or ``settings.profile`` (or, with
    `profile_default_target`, the profile's own default target); `env` adds/overrides profile variables;
    `target_path` is where ``target/`` and ``logs/`` go (default `dbt_work_dir`). On the
    local target the dbt-duckdb plugin ``pulse_local.cdc.dbt_plugin`` (profiles.yml)
    refreshes the ``raw`` views over the CDC's landed files when dbt opens the warehouse;
    the warehouse file is released when dbt returns.

    Raises `DbtError` naming the failing nodes and their messages when dbt fails and
    `check` is true (the default); otherwise the failure is in the returned result.
    Raises `WarehouseLocked` (whatever `check` says: nothing ran) when another process
    holds the DuckDB file.
    """
    from dbt.cli.main import dbtRunner

    project = Path(project_dir or DBT_PROJECT_DIR)
    use_default = profile_default_target and target is None
    target = target or settings.profile
    work = Path(target_path) if target_path is not None else dbt_work_dir(settings)
    cli = list(args)
    if not _has_flag(cli, "--project-dir"):
        cli += ["--project-dir", str(project)]
    if not _has_flag(cli, "--profiles-dir"):
        cli += ["--profiles-dir", str(profiles_dir or project)]
    if not _has_flag(cli, "--target", "-t") and not use_default:
        cli += ["--target", target]
    if not _has_flag(cli, "--target-path"):
        cli += ["--target-path", str(work / "target")]
    if not _has_flag(cli, "--log-path"):
        cli += ["--log-path", str(work / "logs")]
    if quiet and not _has_flag(cli, "--quiet", "-q"):
        cli.insert(0, "--quiet")
    values = {**dbt_env(settings), "PULSE_PROFILE": target, **(env or {})}
    # profiles.yml's local output opens a DuckDB file there (DuckDB does not create folders)
    Path(values["PULSE_DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _LOCK, _environment(values):
        try:
            raw = dbtRunner().invoke(cli)
        finally:
            _release_duckdb()
    seconds = time.perf_counter() - started
    if use_default:  # the target the profile chose
        target = "profile default"
    result = DbtResult(
        args=list(args), target=target, success=bool(raw.success), seconds=seconds,
        nodes=_node_results(raw.result), raw=raw.result,
        error=str(raw.exception) if raw.exception is not None else None,
    )
    if not result.success and result.error is None and not result.failed:
        result.error = "dbt reported a failure without a failing node (see dbt's log)"
    if not result.success:
        locked = _lock_error(result)
        if locked is not None:
            raise locked
    if check and not result.success:
        raise DbtError(_failure_message(result), result)
    return result


# --------------------------------------------------------------------------------------
# gcp target, offline
# --------------------------------------------------------------------------------------

def _dummy_keyfile(directory: Path, project: str) -> Path:
    """A syntactically valid service-account keyfile with a throw-away RSA key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0" * 40,
        "private_key": pem,
        "client_email": f"pulse-offline@{project}.iam.gserviceaccount.com",
        "client_id": "1" * 21,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = directory / "offline-service-account.json"
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return path


def bigquery_parse_errors(sql: str) -> list[str]:
    """Problems sqlglot finds reading `sql` as BigQuery SQL (empty when it parses)."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, TokenError

    try:
        trees = sqlglot.parse(sql, read="bigquery", error_level=ErrorLevel.RAISE)
    except (ParseError, TokenError) as err:
        return [str(err).splitlines()[0]]
    if not any(t is not None for t in trees):
        return ["no statement"]
    return []


def check_gcp_offline(settings: Settings) -> None:
    """Parse and compile the project for the gcp target (BigQuery) without any network access.

    Writes a dummy service-account keyfile into a temporary directory, runs ``dbt parse`` and
    ``dbt --no-populate-cache compile`` for target ``gcp`` with it, then checks that every
    compiled statement parses as BigQuery SQL with sqlglot.

    Raises `DbtError` when dbt fails and `BigQuerySqlError` naming each node whose compiled
    SQL is not valid BigQuery SQL.
    """
    compile_gcp_offline(settings)


def compile_gcp_offline(
    settings: Settings,
    *,
    project_dir: Path | None = None,
    target_path: Path | None = None,
) -> DbtResult:
    """`check_gcp_offline`, returning the compile result (every node with its BigQuery SQL).

    Raises `DbtError` when dbt fails and `BigQuerySqlError` naming each node whose compiled
    SQL is not valid BigQuery SQL.
    """
    compiled = compile_for_bigquery(settings, project_dir=project_dir, target_path=target_path)
    problems: list[str] = []
    checked = 0
    for node in compiled.nodes:
        if not node.compiled_code:
            continue
        checked += 1
        for problem in bigquery_parse_errors(node.compiled_code):
            problems.append(f"  - {node.resource_type} {node.name}: {problem}")
    if checked == 0:
        raise BigQuerySqlError("dbt compile (target gcp) returned no compiled SQL to check", compiled)
    if problems:
        raise BigQuerySqlError(
            f"{len(problems)} compiled statement(s) of target gcp are not valid BigQuery SQL:\n"
            + "\n".join(problems), compiled,
        )
    return compiled


def compile_for_bigquery(
    settings: Settings,
    *,
    project_dir: Path | None = None,
    target_path: Path | None = None,
    select: Sequence[str] = (),
    check: bool = True,
) -> DbtResult:
    """``dbt parse`` + ``dbt --no-populate-cache compile`` for target gcp with a throw-away
    service-account keyfile and no network; the compiled SQL is not checked here.

    `select` adds dbt arguments such as ``["--select", "fact_response"]``. Raises `DbtError`
    when the project does not parse, and when a node does not compile unless `check` is
    false (the failure is then in the result)."""
    with tempfile.TemporaryDirectory(prefix="pulse-gcp-offline-") as tmp:
        tmpdir = Path(tmp)
        keyfile = _dummy_keyfile(tmpdir, settings.project)
        env = {
            "PULSE_BQ_METHOD": "service-account",
            "PULSE_BQ_KEYFILE": str(keyfile),
            "PULSE_PROJECT": settings.project,
            "PULSE_LOCATION": settings.location,
            # Anything that still tries the network fails at once instead of hanging.
            "GOOGLE_CLOUD_DISABLE_GRPC": "true",
            "NO_GCE_CHECK": "True",
            "GCE_METADATA_HOST": "127.0.0.1:9",
        }
        work = Path(target_path) if target_path else tmpdir
        common = {"project_dir": project_dir, "target": "gcp", "target_path": work, "env": env, "quiet": True}
        offline = ["--vars", "{pulse_offline_compile: true}"]
        run_dbt(settings, ["parse", "--no-partial-parse", *offline], **common)  # type: ignore[arg-type]
        # Unit tests need the warehouse's column types (a query): they run on local only.
        return run_dbt(settings, ["--no-populate-cache", "compile", *offline,
                                  "--exclude", "resource_type:unit_test", *select],
                       check=check, **common)  # type: ignore[arg-type]
