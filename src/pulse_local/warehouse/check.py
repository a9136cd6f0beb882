"""Check every node of a dbt project without building it (`pulse-local dbt check`).

* a DuckDB output (``local``): does each model, test, snapshot ... translate from BigQuery
  SQL to DuckDB SQL, and does the translation bind? The project is compiled against an
  in-memory DuckDB with the translation plugin left out, so every node's BigQuery SQL comes
  back (a translation error stops `dbt build` at the first node; here every node is
  reported), and each statement goes through `pulse_local.translate` exactly as the plugin
  would send it. Then `pulse_local.warehouse.bind` builds the project empty in a scratch
  DuckDB file (first run, then the incremental run), so a missing column or a type error
  fails here with the model, its line and DuckDB's cause. See docs/dbt.md for the limits.
* a BigQuery output (``gcp``, dbt/ only): `compile_for_bigquery` (offline, throw-away
  keyfile) and every compiled statement must parse as BigQuery SQL.

The warehouse file is only read (the catalog, for source shapes), never written.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
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
    #: where it failed: None (compile / translation), "first run" or "incremental run" of
    #: the empty build, "skipped" (not bound because a node it depends on fails)
    phase: str | None = None

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
    #: "duckdb" (translate + bind) or "bigquery" (parse)
    kind: str = "duckdb"
    #: what the check noticed on the way (e.g. the warehouse could not be read for shapes)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.nodes) and all(n.ok for n in self.nodes)

    @property
    def failed(self) -> list[NodeCheck]:
        """Nodes that fail themselves (not those only skipped because of another)."""
        return [n for n in self.nodes if not n.ok and n.phase != "skipped"]

    @property
    def skipped(self) -> list[NodeCheck]:
        """Nodes not bound because a node they depend on fails."""
        return [n for n in self.nodes if n.phase == "skipped"]

    def summary(self) -> str:
        verb = ("parse as BigQuery SQL" if self.kind == "bigquery"
                else "translate to DuckDB and bind")
        return (f"{sum(n.ok for n in self.nodes)} of {len(self.nodes)} nodes {verb}"
                + (f"; {len(self.failed)} do not" if self.failed else "")
                + (f"; {len(self.skipped)} not bound (upstream fails)" if self.skipped else ""))

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "summary": self.summary(),
                "not_checked": self.not_checked, "notes": self.notes,
                "nodes": [asdict(n) for n in self.nodes]}


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


def shapes_catalog(shapes: Sequence[Any]) -> Any:
    """A wildcard `Catalog` over the sources' shapes (`pulse_local.warehouse.bind.SourceShape`):
    the tables the scratch database of the empty build holds, i.e. the warehouse's shards.

    The compile of the check renders sources in its own (in-memory) database; a wildcard
    matches a shape of the same schema whose database is that one or unset."""
    from pulse_local.translate.wildcards import Shard, Wildcard

    def look_up(wildcard: Wildcard) -> list[Shard]:
        found: dict[str, Shard] = {}
        for shape in shapes:
            if (shape.schema == wildcard.schema and shape.identifier.startswith(wildcard.prefix)
                    and wildcard.catalog in (None, shape.database or wildcard.catalog)):
                found.setdefault(shape.identifier, Shard(shape.identifier, shape.kind, shape.columns))
        return list(found.values())

    return look_up


def _plugin_refusal(node: Any, manifest: Mapping[str, Any], compiled: str) -> tuple[str, str] | str:
    """What the translation plugin does to a node before translating it (the cross-database
    macro guard, BigQuery-only configs and ``_dbt_max_partition``): (construct, reason) when
    it refuses the node, else the SQL it translates."""
    from dbt_common.exceptions import CompilationError

    from pulse_local.translate.dbt_plugin import (
        apply_bigquery_configs,
        refuse_duckdb_flavoured_macros,
    )

    try:
        refuse_duckdb_flavoured_macros(node, manifest)
    except CompilationError as err:
        return "dbt cross-database macro", err.msg
    try:
        return apply_bigquery_configs(node, compiled)
    except CompilationError as err:
        return "BigQuery config", err.msg


def _translation_check(name: str, resource_type: str, path: str, compiled: str,
                       raw_code: str | None, node: Any = None,
                       manifest: Mapping[str, Any] | None = None, catalog: Any = None) -> NodeCheck:
    """Translate one node's compiled BigQuery SQL as the dbt plugin does (`node` is dbt's
    node: its configs and macros; `catalog` resolves wildcard tables)."""
    import duckdb

    from pulse_local.translate import UntranslatableSQL
    from pulse_local.translate.core import translate

    if node is not None:
        prepared = _plugin_refusal(node, manifest or {}, compiled)
        if isinstance(prepared, tuple):
            return NodeCheck(name, resource_type, path, False, construct=prepared[0],
                             reason=prepared[1])
        compiled = prepared
    try:
        duck = translate(compiled, dbt_relations=True, catalog=catalog)
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


def _raw_nodes(result: DbtResult) -> dict[str, Any]:
    return {getattr(r.node, "unique_id", "?"): r.node
            for r in (getattr(result.raw, "results", None) or [])}


def profile_output(project: Path, profiles_dir: Path, target: str | None) -> tuple[str, str, dict[str, Any]]:
    """(profile name, target name, output) of `project` in ``profiles_dir/profiles.yml``;
    `target` None means the profile's default target (rendered like dbt: ``env_var()``)."""
    from pulse_local.warehouse.bind import render_profile_value

    profile_name = yaml.safe_load((project / "dbt_project.yml").read_text())["profile"]
    profiles_file = profiles_dir / "profiles.yml"
    try:
        profile = yaml.safe_load(profiles_file.read_text())[profile_name]
        outputs = profile["outputs"]
    except (OSError, KeyError, TypeError) as exc:
        raise ConfigError(f"{profiles_file} has no profile {profile_name!r} with outputs "
                          f"({type(exc).__name__}: {exc}): pass --profiles-dir DIR holding the "
                          "project's profiles.yml") from None
    name = target or str(render_profile_value(profile.get("target", ""), {}))
    if name not in outputs:
        raise ConfigError(f"unknown dbt target {name!r} in profile {profile_name!r} of "
                          f"{profiles_file}: use one of {' or '.join(sorted(outputs))}")
    return profile_name, name, dict(outputs[name])


def _check_profile(profile_name: str, target: str, output: dict[str, Any], out_dir: Path,
                   warehouse: Path | None = None) -> Path:
    """profiles.yml with the output `target` on an empty DuckDB and without the translation
    and CDC plugins; returns its directory. The DuckDB is a new file named like `warehouse`
    (so relations render with the warehouse's database name, as in the build), else
    in-memory."""
    output = dict(output)
    output["path"] = str(out_dir / f"{warehouse.stem}.duckdb") if warehouse else ":memory:"
    output["plugins"] = [p for p in output.get("plugins") or []
                         if (p.get("module") if isinstance(p, dict) else p) not in _LEFT_OUT_PLUGINS]
    output.pop("attach", None)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "profiles.yml").write_text(yaml.safe_dump(
        {profile_name: {"target": target, "outputs": {target: output}}}))
    return out_dir


def _bind_failure(outcome: Any, raw_code: str | None, unknown: dict[str, str],
                  sources_of: dict[str, list[str]]) -> NodeCheck:
    from pulse_local.warehouse.bind import explain, line_of

    missing = [unknown[s] for s in sources_of.get(outcome.unique_id, []) if s in unknown]
    if missing:
        return NodeCheck(outcome.name, outcome.resource_type, outcome.path, False,
                         construct="source shape", reason=missing[0], phase=outcome.phase,
                         hint="Give the source's columns a data_type in its yml.")
    cause = explain(outcome.message)
    line, text = line_of(raw_code, cause)
    return NodeCheck(outcome.name, outcome.resource_type, outcome.path, False,
                     construct=f"{cause.construct} ({outcome.phase})", reason=cause.reason,
                     line=line, offending_line=text, phase=outcome.phase,
                     hint="DuckDB refused the translated SQL over empty relations shaped like "
                          "the sources: the build would fail the same way.")


def check_translation(settings: Settings, *, project_dir: Path | None = None,
                      select: Sequence[str] = (), target: str | None = None,
                      profiles_dir: Path | None = None, bind: bool = True,
                      vars_: Mapping[str, Any] | None = None) -> CheckReport:
    """Every node of a DuckDB target: does its BigQuery SQL translate to DuckDB SQL, and does
    the translation bind against the sources' schemas (an empty build, both incremental
    branches; `pulse_local.warehouse.bind`)?

    `select` adds dbt arguments (``["--select", "fact_response"]``), `vars_` dbt's
    ``--vars``. Raises `DbtError` only when dbt cannot parse the project at all; a node that
    does not compile is reported."""
    from pulse_local.warehouse.bind import source_shapes

    project = Path(project_dir or DBT_PROJECT_DIR)
    profile_name, target_name, output = profile_output(
        project, Path(profiles_dir or project), target or ("local" if project_dir is None else None))
    report = CheckReport(target_name, not_checked="data tests' results (they run over empty "
                                                  "relations: only their SQL is checked)")
    warehouse = _warehouse_path(settings, output)
    with tempfile.TemporaryDirectory(prefix="pulse-dbt-check-") as tmp:
        profiles = _check_profile(profile_name, target_name, output, Path(tmp) / "profiles",
                                  warehouse)
        result = run_dbt(
            settings,
            ["--no-populate-cache", "--log-level", "none", "compile", "--profiles-dir", str(profiles),
             "--vars", json.dumps({**(vars_ or {}), "pulse_offline_compile": True,
                                   "pulse_translation_check": True}),
             "--exclude", "resource_type:unit_test",
             *select],
            project_dir=project, target=target_name, target_path=Path(tmp) / "work",
            env={"PULSE_DUCKDB_PATH": ":memory:"}, check=False, quiet=True,
        )
        if not result.nodes and not result.success:
            from pulse_local.warehouse.dbt import DbtError, _failure_message

            raise DbtError(_failure_message(result), result)
        manifest_file = Path(tmp) / "work" / "target" / "manifest.json"
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
        raw_codes, raw_nodes = _raw_codes(result), _raw_nodes(result)
        shapes = source_shapes(manifest, warehouse)
        catalog = shapes_catalog(shapes[0])
        by_id: dict[str, NodeCheck] = {}
        for node in result.nodes:
            if not node.ok:
                by_id[node.unique_id] = _compile_failure(node)
            elif node.compiled_code:
                by_id[node.unique_id] = _translation_check(
                    node.name, node.resource_type, node.path or "?", node.compiled_code,
                    raw_codes.get(node.unique_id), raw_nodes.get(node.unique_id), manifest,
                    catalog)
        if bind:
            report.notes += _bind_into(settings, project, profile_name, output, manifest,
                                       Path(tmp), select, by_id, raw_codes,
                                       warehouse=warehouse, shapes=shapes, vars_=vars_)
        else:
            report.notes += shapes[2]
    report.nodes.extend(by_id.values())
    return report


#: Failures of the check's compile that the empty build may overrule (see `_bind_into`):
#: did not compile (no construct) and "DuckDB cannot parse the translation".
_COMPILED_WITHOUT_UPSTREAM = (None, "translated SQL")


def _warehouse_path(settings: Settings, output: Mapping[str, Any]) -> Path | None:
    """The DuckDB file of the profile output (rendered like dbt), None for ``:memory:`` or
    when its ``env_var()`` is not set."""
    from pulse_local.warehouse.bind import render_profile_value
    from pulse_local.warehouse.dbt import dbt_env

    env = {**dbt_env(settings), "PULSE_PROFILE": "local"}
    try:
        warehouse = str(render_profile_value(output.get("path", ""), env))
    except KeyError:
        return None
    return None if warehouse in ("", ":memory:") else Path(warehouse)


def _bind_into(settings: Settings, project: Path, profile_name: str, output: dict[str, Any],
               manifest: dict[str, Any], tmp: Path, select: Sequence[str],
               by_id: dict[str, NodeCheck], raw_codes: dict[str, str | None], *,
               warehouse: Path | None = None, shapes: Any = None,
               vars_: Mapping[str, Any] | None = None) -> list[str]:
    """Run the empty build and fold its outcomes into `by_id`; returns the bind's notes.

    A translation failure wins over the bind's outcome, except a node that did not compile
    or whose translation DuckDB could not parse when the empty build translated and ran it:
    that compile saw the upstream relations (``adapter.get_columns_in_relation``,
    ``dbt_utils.star`` ...), the check's own did not, so its verdict is the build's. A named
    refusal (`UntranslatableSQL`, the plugin's guards) always stands."""
    from pulse_local.warehouse.bind import bind_project

    bind_select = _upstream_selection(select)
    bound = bind_project(settings, project, profile_name, output, manifest, tmp / "bind",
                         select=bind_select, vars_=vars_, warehouse=warehouse, shapes=shapes)
    for error in bound.errors:
        by_id[f"pulse_check.{error[:20]}"] = NodeCheck(
            "dbt build --empty", "project", "dbt_project.yml", False, construct="dbt",
            reason=error, phase=error.split(":", 1)[0])
    sources_of: dict[str, list[str]] = {}
    for source, children in bound.source_children.items():
        for child in children:
            sources_of.setdefault(child, []).append(source)
    nodes = manifest.get("nodes", {})
    for uid, outcome in bound.outcomes.items():
        if uid not in by_id:
            tested = (nodes.get(uid, {}).get("depends_on", {}).get("nodes") or [None])[0] \
                if outcome.resource_type == "unit_test" else None
            if outcome.resource_type != "unit_test" or (select and tested not in by_id):
                continue  # upstream of the selection: built only to bind the selection
            by_id[uid] = NodeCheck(outcome.name, outcome.resource_type, outcome.path, True)
        if not by_id[uid].ok:
            if (outcome.status == "ok" and by_id[uid].construct in _COMPILED_WITHOUT_UPSTREAM
                    and outcome.phase in ("first run", "incremental run")):
                bound.notes.append(
                    f"{outcome.name}: {by_id[uid].construct or 'compile'} failed when compiled "
                    "without its upstream relations; the empty build compiled, translated and "
                    "ran it over them")
                by_id[uid] = NodeCheck(outcome.name, outcome.resource_type, outcome.path, True)
            continue
        if outcome.status == "error":
            by_id[uid] = _bind_failure(outcome, raw_codes.get(uid) or nodes.get(uid, {}).get("raw_code"),
                                       bound.unknown_sources, sources_of)
        elif outcome.status == "skipped":
            by_id[uid] = NodeCheck(outcome.name, outcome.resource_type, outcome.path, False,
                                   reason="not bound: a node it depends on fails",
                                   phase="skipped")
    for uid, check in by_id.items():  # compiled but never reached by the empty build
        if check.ok and uid not in bound.outcomes and check.resource_type != "operation":
            by_id[uid] = NodeCheck(check.name, check.resource_type, check.path, False,
                                   reason="not bound: the empty build did not reach it",
                                   phase="skipped")
    return bound.notes


def _upstream_selection(select: Sequence[str]) -> list[str]:
    """The dbt selection arguments with every ``--select`` selector widened to its
    ancestors (``+x``): the empty build needs the upstream relations to bind against."""
    out: list[str] = []
    widen = False
    for arg in select:
        if arg in ("--select", "-s", "--models", "-m"):
            widen = True
            out.append(arg)
            continue
        if arg.startswith("-"):
            widen = False
            out.append(arg)
            continue
        out.append(" ".join(p if p.startswith(("+", "@")) else "+" + p for p in arg.split())
                   if widen else arg)
    return out


def check_bigquery(settings: Settings, *, project_dir: Path | None = None,
                   select: Sequence[str] = (), target: str | None = None,
                   profiles_dir: Path | None = None) -> CheckReport:
    """Every node of the gcp target, compiled offline: does its SQL parse as BigQuery SQL?

    Only the repository's project (its gcp output reads the throw-away keyfile from
    ``PULSE_BQ_KEYFILE``); another project's BigQuery output is a `ConfigError`."""
    if project_dir is not None and Path(project_dir).resolve() != DBT_PROJECT_DIR.resolve():
        raise ConfigError("dbt check of a BigQuery output works for the repository's dbt/ "
                          "project only: check another project on its DuckDB output "
                          "(--target <duckdb output>)")
    result = compile_for_bigquery(settings, project_dir=project_dir, select=select, check=False)
    report = CheckReport("gcp", not_checked="unit tests (they need the warehouse's column "
                                            "types); model hooks (not part of compiled SQL)",
                         kind="bigquery")
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


#: What `pulse-local dbt check --target <target>` runs, by the output's adapter type.
CHECKS: dict[str, Callable[..., CheckReport]] = {"duckdb": check_translation,
                                                 "bigquery": check_bigquery}


def check_project(settings: Settings, target: str | None = None, *,
                  project_dir: Path | None = None, profiles_dir: Path | None = None,
                  select: Sequence[str] = (), vars_: Mapping[str, Any] | None = None
                  ) -> CheckReport:
    """`check_translation` for a DuckDB output, `check_bigquery` for a BigQuery output.

    `target` None: ``local`` for the repository's project, else the profile's default;
    `vars_` dbt's ``--vars`` (DuckDB outputs only)."""
    project = Path(project_dir or DBT_PROJECT_DIR)
    chosen = target or ("local" if project_dir is None else None)
    _, name, output = profile_output(project, Path(profiles_dir or project), chosen)
    try:
        checker = CHECKS[str(output.get("type"))]
    except KeyError:
        raise ConfigError(f"dbt target {name!r} is a {output.get('type')!r} output: dbt check "
                          "knows duckdb (translate + bind) and bigquery (parse)") from None
    if vars_:
        if checker is not check_translation:
            raise ConfigError("dbt check --vars works on a duckdb output only")
        return check_translation(settings, project_dir=project_dir, select=select, target=name,
                                 profiles_dir=profiles_dir, vars_=vars_)
    return checker(settings, project_dir=project_dir, select=select, target=name,
                   profiles_dir=profiles_dir)
