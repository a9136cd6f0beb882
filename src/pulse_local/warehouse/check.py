"""Check every node of the dbt project without running it (`pulse-local dbt check`).

* target ``local``: does each model, test, snapshot ... translate from BigQuery SQL to DuckDB
  SQL? The project is compiled for the local target against an in-memory DuckDB with the
  translation plugin left out, so every node's BigQuery SQL comes back (a translation error
  stops `dbt build` at the first node; here every node is reported). Each statement then goes
  through `pulse_local.translate` exactly as the plugin would send it, and the DuckDB SQL that
  comes out must parse in DuckDB.
* target ``gcp``: `compile_for_bigquery` (offline, throw-away keyfile) and every compiled
  statement must parse as BigQuery SQL.

Both compile the incremental branch of incremental models (var ``pulse_offline_compile``) and
leave unit tests out: they compile against the built warehouse's column types; `dbt build`
translates them. Nothing runs and the warehouse file is not opened.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pulse_local.config import Settings
from pulse_local.errors import ConfigError
from pulse_local.warehouse.dbt import (
    DBT_PROJECT_DIR,
    DbtResult,
    _first_lines,
    bigquery_parse_errors,
    compile_for_bigquery,
    run_dbt,
)

#: dbt-duckdb plugins left out of the check's profile: translation is what is checked, and
#: the raw views are not needed to compile.
_LEFT_OUT_PLUGINS = ("pulse_local.translate.dbt_plugin", "pulse_local.cdc.dbt_plugin")


@dataclass(frozen=True)
class NodeCheck:
    """Whether one node's SQL passes; if not, where and why."""

    name: str
    resource_type: str
    path: str
    ok: bool
    construct: str | None = None
    reason: str | None = None
    #: line/column in `path` when the offending line is found there verbatim, else in the
    #: compiled SQL (`in_compiled` true)
    line: int | None = None
    column: int | None = None
    in_compiled: bool = False
    offending_line: str | None = None
    hint: str | None = None

    @property
    def where(self) -> str:
        if self.line is None:
            return self.path
        place = "line" if not self.in_compiled else "compiled SQL line"
        return f"{self.path}, {place} {self.line}" + (f", column {self.column}" if self.column else "")

    def describe(self) -> str:
        """One line: ``model fact_x (models/x.sql, line 3, column 8): construct - reason``."""
        if self.ok:
            return f"{self.resource_type} {self.name} ({self.path}): ok"
        what = f"{self.construct}: {self.reason}" if self.construct else f"{self.reason}"
        return f"{self.resource_type} {self.name} ({self.where}): {what}"


@dataclass
class CheckReport:
    """Every checked node of one target."""

    target: str
    nodes: list[NodeCheck] = field(default_factory=list)
    not_checked: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.nodes) and all(n.ok for n in self.nodes)

    @property
    def failed(self) -> list[NodeCheck]:
        return [n for n in self.nodes if not n.ok]

    def summary(self) -> str:
        verb = "translate to DuckDB" if self.target == "local" else "parse as BigQuery SQL"
        return (f"{len(self.nodes) - len(self.failed)} of {len(self.nodes)} nodes {verb}"
                + (f"; {len(self.failed)} do not" if self.failed else ""))

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "summary": self.summary(),
                "not_checked": self.not_checked, "nodes": [asdict(n) for n in self.nodes]}


def _source_position(raw_code: str | None, compiled: str, line: int | None) -> tuple[int | None, bool, str]:
    """Map a line of the compiled SQL to the node's own file when that line is there verbatim
    (and only once); returns (line, in_compiled, offending line text)."""
    if not line:
        return None, False, ""
    lines = compiled.splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    if text and raw_code:
        hits = [i for i, raw in enumerate(raw_code.splitlines(), 1) if raw.strip() == text]
        if len(hits) == 1:
            return hits[0], False, text
    return line, True, text


def _translation_check(name: str, resource_type: str, path: str, compiled: str,
                       raw_code: str | None) -> NodeCheck:
    import duckdb

    from pulse_local.translate import UntranslatableSQL
    from pulse_local.translate.core import translate

    try:
        duck = translate(compiled, dbt_relations=True)
    except UntranslatableSQL as err:
        line, in_compiled, text = _source_position(raw_code, compiled, err.line)
        return NodeCheck(name, resource_type, path, False, construct=err.construct,
                         reason=err.reason, line=line, column=err.col, in_compiled=in_compiled,
                         offending_line=text or None, hint=err.hint)
    try:
        duckdb.extract_statements(duck)
    except duckdb.Error as err:  # the translator produced SQL DuckDB cannot read: our bug
        return NodeCheck(name, resource_type, path, False, construct="translated SQL",
                         reason=f"DuckDB cannot parse the translation ({_first_lines(str(err), 1)})",
                         hint="Report it with the model: pulse_local.translate made invalid DuckDB SQL.")
    return NodeCheck(name, resource_type, path, True)


def _compile_failure(node: Any) -> NodeCheck:
    return NodeCheck(node.name, node.resource_type, node.path or "?", False,
                     reason=f"does not compile ({_first_lines(node.message or node.status, 2)})")


def _raw_codes(result: DbtResult) -> dict[str, str | None]:
    return {getattr(r.node, "unique_id", "?"): getattr(r.node, "raw_code", None)
            for r in (getattr(result.raw, "results", None) or [])}


def _check_profile(project: Path, profiles_dir: Path, out_dir: Path) -> Path:
    """profiles.yml with the project's ``local`` output on an in-memory DuckDB and without
    the translation and CDC plugins; returns its directory."""
    profile_name = yaml.safe_load((project / "dbt_project.yml").read_text())["profile"]
    profiles_file = profiles_dir / "profiles.yml"
    try:
        output = dict(yaml.safe_load(profiles_file.read_text())[profile_name]["outputs"]["local"])
    except (OSError, KeyError, TypeError) as exc:
        raise ConfigError(f"{profiles_file} has no output 'local' in profile {profile_name!r} "
                          f"({type(exc).__name__}: {exc}): the translation check compiles the "
                          "local (DuckDB) target") from None
    output["path"] = ":memory:"
    output["plugins"] = [p for p in output.get("plugins") or []
                         if (p.get("module") if isinstance(p, dict) else p) not in _LEFT_OUT_PLUGINS]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "profiles.yml").write_text(yaml.safe_dump(
        {profile_name: {"target": "local", "outputs": {"local": output}}}))
    return out_dir


def check_translation(settings: Settings, *, project_dir: Path | None = None,
                      select: Sequence[str] = ()) -> CheckReport:
    """Every node of the local target: does its BigQuery SQL translate to DuckDB SQL?

    `select` adds dbt arguments (``["--select", "fact_response"]``). Raises `DbtError` only
    when dbt cannot parse the project at all; a node that does not compile is reported."""
    project = Path(project_dir or DBT_PROJECT_DIR)
    report = CheckReport("local", not_checked="unit tests (they compile against the built "
                                              "warehouse; dbt build translates them)")
    with tempfile.TemporaryDirectory(prefix="pulse-dbt-check-") as tmp:
        profiles = _check_profile(project, project, Path(tmp) / "profiles")
        result = run_dbt(
            settings,
            ["--no-populate-cache", "compile", "--profiles-dir", str(profiles),
             "--vars", "{pulse_offline_compile: true, pulse_translation_check: true}", "--exclude", "resource_type:unit_test",
             *select],
            project_dir=project, target="local", target_path=Path(tmp) / "work",
            env={"PULSE_DUCKDB_PATH": ":memory:"}, check=False, quiet=True,
        )
    if not result.nodes and not result.success:
        from pulse_local.warehouse.dbt import DbtError, _failure_message

        raise DbtError(_failure_message(result), result)
    raw_codes = _raw_codes(result)
    for node in result.nodes:
        if not node.ok:
            report.nodes.append(_compile_failure(node))
        elif node.compiled_code:
            report.nodes.append(_translation_check(node.name, node.resource_type, node.path or "?",
                                                   node.compiled_code, raw_codes.get(node.unique_id)))
    return report


def check_bigquery(settings: Settings, *, project_dir: Path | None = None,
                   select: Sequence[str] = ()) -> CheckReport:
    """Every node of the gcp target, compiled offline: does its SQL parse as BigQuery SQL?"""
    result = compile_for_bigquery(settings, project_dir=project_dir, select=select, check=False)
    report = CheckReport("gcp", not_checked="unit tests (they need the warehouse's column "
                                            "types); model hooks (not part of compiled SQL)")
    for node in result.nodes:
        if not node.ok:
            report.nodes.append(_compile_failure(node))
            continue
        if not node.compiled_code:
            continue
        problems = bigquery_parse_errors(node.compiled_code)
        report.nodes.append(NodeCheck(node.name, node.resource_type, node.path or "?",
                                      not problems, reason="; ".join(problems) or None))
    return report


#: What `pulse-local dbt check --target <target>` runs.
CHECKS: dict[str, Callable[..., CheckReport]] = {"local": check_translation, "gcp": check_bigquery}


def check_project(settings: Settings, target: str, *, project_dir: Path | None = None,
                  select: Sequence[str] = ()) -> CheckReport:
    """`check_translation` (``local``) or `check_bigquery` (``gcp``)."""
    try:
        checker = CHECKS[target]
    except KeyError:
        raise ConfigError(f"unknown dbt target {target!r}: use local or gcp") from None
    return checker(settings, project_dir=project_dir, select=select)
