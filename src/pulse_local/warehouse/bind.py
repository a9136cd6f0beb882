"""Bind a dbt project's translated SQL against its sources' schemas, without data
(the second half of `pulse-local dbt check`).

The project is built **empty** (``dbt build --empty``) through the translation plugin into a
scratch DuckDB file in a temporary directory, twice:

1. first run: every seed, model, snapshot, data test and unit test, in DAG order. ``--empty``
   makes dbt read every ``ref()``/``source()`` as ``(select * from x where false limit 0)``,
   so each statement the real build would send (the materialization's DDL, hooks, the
   incremental strategy) is sent to DuckDB and bound against the real column types, over no
   rows. Seeds are loaded (they are small); unit tests use their own fixture rows.
2. incremental run: the incremental models and snapshots that built in run 1 are built again;
   their relation now exists, so ``is_incremental()`` is true and the incremental branch
   (and the snapshot's update path) is compiled, translated and bound.

The sources' shapes come, per source relation, from

* the local warehouse's catalog when the relation exists there (the profile output's DuckDB
  file, opened read-only; skipped when another process holds it), else
* the source's ``columns`` in its yml when every column has a ``data_type`` (BigQuery or
  DuckDB type names, converted by the translator exactly as a ``CAST`` in a model would be).

A source with neither makes the nodes that read it fail the check with a message saying so:
the check cannot promise what it could not bind.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from pulse_local.config import Settings
from pulse_local.warehouse.dbt import DbtNodeResult, DbtResult, _first_lines, run_dbt

#: The translation plugin the scratch build must use (added when the output lacks it).
TRANSLATION_PLUGIN = "pulse_local.translate.dbt_plugin"
#: Plugins left out of the scratch build: the CDC plugin would create the raw views over the
#: landed files of the real stack; the sources are created from their shapes instead.
LEFT_OUT_PLUGINS = ("pulse_local.cdc.dbt_plugin",)
#: Name of the scratch database file (the relations' database in the empty build).
SCRATCH_DB = "pulse_check"

_QUOTED = re.compile(r'"([^"]+)"')
_DUCKDB_ERROR = re.compile(r"\b([A-Z][a-z]+(?: [A-Z][a-z]+)? Error): (.*)")
_FUNCTION = re.compile(r"argument types '([A-Za-z_][\w.]*)\(")


@dataclass(frozen=True)
class SourceShape:
    """The columns of one source relation and where they came from."""

    unique_id: str
    name: str
    schema: str
    identifier: str
    columns: tuple[tuple[str, str], ...]
    origin: str  # "warehouse" or "yml"
    #: the source's database (an attached database's alias, or the target's own)
    database: str = ""
    #: "BASE TABLE" or "VIEW" (a warehouse view keeps its kind: wildcard tables refuse views)
    kind: str = "BASE TABLE"


@dataclass
class BindOutcome:
    """What the empty build said about one node."""

    unique_id: str
    name: str
    resource_type: str
    path: str
    #: "ok", "error" (does not bind / run), "skipped" (an upstream node fails)
    status: str
    phase: str  # "first run" or "incremental run"
    message: str = ""


@dataclass
class BindReport:
    """Every node the empty build reached, and the sources it could not shape."""

    outcomes: dict[str, BindOutcome] = field(default_factory=dict)
    unknown_sources: dict[str, str] = field(default_factory=dict)
    sources: list[SourceShape] = field(default_factory=list)
    #: source unique_id -> the nodes that read it (manifest's child_map)
    source_children: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: dbt errors of a whole run (no node to pin them on: the project did not parse, ...)
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# profile
# --------------------------------------------------------------------------------------

def render_profile_value(value: Any, env: Mapping[str, str]) -> Any:
    """Render a profiles.yml string the way dbt does for ``env_var()`` (other Jinja is
    rendered with nothing in scope); non-strings come back unchanged."""
    if not isinstance(value, str) or "{{" not in value:
        return value
    import jinja2

    def env_var(name: str, default: str | None = None) -> str:
        found = env.get(name, os.environ.get(name, default))
        if found is None:
            raise KeyError(f"env var {name} is not set")
        return found

    return jinja2.Environment().from_string(value).render(env_var=env_var)


def _plugin_module(plugin: Any) -> str | None:
    return plugin.get("module") if isinstance(plugin, dict) else plugin


def scratch_output(output: Mapping[str, Any], scratch_dir: Path) -> dict[str, Any]:
    """The profile output for the empty build: the same DuckDB settings on a scratch file,
    with the translation plugin and without the CDC plugin; attached databases become
    scratch files with the same aliases."""
    out = dict(output)
    out["path"] = str(scratch_dir / f"{SCRATCH_DB}.duckdb")
    out.pop("database", None)
    plugins = [p for p in out.get("plugins") or []
               if _plugin_module(p) not in (*LEFT_OUT_PLUGINS, TRANSLATION_PLUGIN)]
    # the sources are empty tables: a wildcard may be read without --empty's wrapper, which
    # would hide _TABLE_SUFFIX (pulse_local.translate.dbt_plugin.EMPTY_BUILD_OPTION)
    plugins.insert(0, {"module": TRANSLATION_PLUGIN,
                       "config": {"empty_build_over_empty_sources": True}})
    out["plugins"] = plugins
    attached = []
    for entry in out.get("attach") or []:
        entry = dict(entry)
        alias = entry.get("alias") or Path(str(entry["path"])).stem
        entry.update(path=str(scratch_dir / f"{alias}.duckdb"), alias=alias, read_only=False)
        attached.append(entry)
    if attached:
        out["attach"] = attached
    return out


# --------------------------------------------------------------------------------------
# source shapes
# --------------------------------------------------------------------------------------

def duckdb_type(type_name: str) -> str:
    """The DuckDB type a BigQuery (or DuckDB) type name becomes, as the translator converts
    a ``CAST``; raises `UntranslatableSQL` for a type it cannot reproduce."""
    import sqlglot
    from sqlglot import exp

    from pulse_local.translate.core import translate

    duck = translate(f"SELECT CAST(NULL AS {type_name}) AS c")
    cast = sqlglot.parse_one(duck, read="duckdb").find(exp.Cast)
    assert cast is not None, duck
    return cast.to.sql(dialect="duckdb")


def _warehouse_connection(path: Path, cache: dict[str, Any]) -> Any:
    """A read-only connection to the DuckDB file `path` (opened once, kept in ``cache``), or
    None when there is no such file or it cannot be opened (noted in ``cache['note']``)."""
    import duckdb

    if "con" not in cache:
        cache["con"] = None
        if path.is_file():
            try:
                cache["con"] = duckdb.connect(str(path), read_only=True)
            except duckdb.Error as exc:
                cache["note"] = (f"warehouse {path} not read ({_first_lines(str(exc), 1)}): "
                                 "source shapes from yml only")
    return cache["con"]


def _warehouse_columns(path: Path, schema: str, identifier: str,
                       cache: dict[str, Any]) -> list[tuple[str, str]] | None:
    """Columns of ``schema.identifier`` in the DuckDB file `path`, or None when it is not
    there (or the file cannot be opened: noted in ``cache['note']``)."""
    import duckdb

    con = _warehouse_connection(path, cache)
    if con is None:
        return None
    try:
        rows = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, identifier]).fetchall()
    except duckdb.Error as exc:  # e.g. a view over files that are gone: use the yml
        cache.setdefault("note", f"{schema}.{identifier} in warehouse {path} not read "
                                 f"({_first_lines(str(exc), 1)}): shaped from yml")
        return None
    return [(str(n), str(t)) for n, t in rows] or None


def _warehouse_shards(path: Path, schema: str, prefix: str, cache: dict[str, Any]) -> list[Any]:
    """Every table (or view) of ``schema`` in the DuckDB file `path` whose name starts with
    `prefix`, as `pulse_local.translate.wildcards.Shard`s (the plugin's own look-up)."""
    import duckdb

    from pulse_local.translate.wildcards import Wildcard, duckdb_catalog

    con = _warehouse_connection(path, cache)
    if con is None:
        return []
    try:
        return list(duckdb_catalog(con)(Wildcard(None, schema, prefix)))
    except duckdb.Error as exc:
        cache.setdefault("note", f"{schema}.{prefix}* in warehouse {path} not read "
                                 f"({_first_lines(str(exc), 1)})")
        return []


def source_shapes(manifest: Mapping[str, Any], warehouse: Path | None
                  ) -> tuple[list[SourceShape], dict[str, str], list[str]]:
    """Shape of every source of `manifest`: (shapes, {unique_id: why unknown}, notes).

    A wildcard source (identifier ``prefix*``, e.g. GA4's ``events_*``) is shaped by every
    matching table of the warehouse (one shape per shard, the shard's name as identifier),
    so the scratch database holds the same shards and the wildcard resolves there as in the
    build. With no matching table it is left unshaped and not "unknown": translating the
    nodes that read it raises `WildcardTableNotFound`, the error the build gives."""
    from sqlglot.errors import SqlglotError

    from pulse_local.translate import UntranslatableSQL

    shapes: list[SourceShape] = []
    unknown: dict[str, str] = {}
    cache: dict[str, Any] = {}
    for uid, src in sorted(manifest.get("sources", {}).items()):
        label = f"source {src['source_name']}.{src['name']} ({src.get('original_file_path')})"
        if str(src["identifier"]).endswith("*"):
            shards = (_warehouse_shards(warehouse, src["schema"], src["identifier"][:-1], cache)
                      if warehouse is not None else [])
            shapes.extend(SourceShape(uid, label, src["schema"], shard.name, shard.columns,
                                      "warehouse", src.get("database") or "", shard.kind)
                          for shard in shards)
            continue
        found = (_warehouse_columns(warehouse, src["schema"], src["identifier"], cache)
                 if warehouse is not None else None)
        if found:
            shapes.append(SourceShape(uid, label, src["schema"], src["identifier"],
                                      tuple(found), "warehouse", src.get("database") or ""))
            continue
        columns = list((src.get("columns") or {}).values())
        untyped = [c["name"] for c in columns if not c.get("data_type")]
        if not columns or untyped:
            unknown[uid] = (
                f"{label} has no known columns: it is not in the local warehouse and its yml "
                + ("declares no columns" if not columns else f"gives no data_type for {', '.join(untyped[:5])}")
                + "; declare every column with its data_type in the yml (or build the warehouse "
                "first) so that dbt check can bind what reads it")
            continue
        try:
            typed = tuple((c["name"], duckdb_type(c["data_type"])) for c in columns)
        except (UntranslatableSQL, SqlglotError) as exc:
            unknown[uid] = f"{label}: a column data_type does not translate ({_first_lines(str(exc), 1)})"
            continue
        shapes.append(SourceShape(uid, label, src["schema"], src["identifier"], typed, "yml",
                                  src.get("database") or ""))
    if cache.get("con") is not None:
        cache["con"].close()
    return shapes, unknown, [cache["note"]] if "note" in cache else []


def create_sources(scratch_dir: Path, shapes: Sequence[SourceShape],
                   attached: Sequence[str] = ()) -> None:
    """Create each source relation empty in the scratch DuckDB file (``<alias>.duckdb`` when
    its database is one of the `attached` aliases, else the scratch database)."""
    import duckdb

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    by_file: dict[str, list[SourceShape]] = {}
    for shape in shapes:
        name = shape.database if shape.database in attached else SCRATCH_DB
        by_file.setdefault(name, []).append(shape)
    for name, group in by_file.items():
        made: set[str] = set()
        with duckdb.connect(str(scratch_dir / f"{name}.duckdb")) as con:
            for shape in group:
                con.execute(f"create schema if not exists {q(shape.schema)}")
                name = f"{q(shape.schema)}.{q(shape.identifier)}"
                if name in made:  # a table two sources name (a wildcard's shard, say)
                    continue
                made.add(name)
                if shape.kind.upper() == "VIEW":
                    cols = ", ".join(f"cast(null as {t}) as {q(n)}" for n, t in shape.columns)
                    con.execute(f"create view {name} as select {cols} limit 0")
                    continue
                cols = ", ".join(f"{q(n)} {t}" for n, t in shape.columns)
                con.execute(f"create table {name} ({cols})")


# --------------------------------------------------------------------------------------
# the empty build
# --------------------------------------------------------------------------------------

def _outcomes(result: DbtResult, phase: str) -> dict[str, BindOutcome]:
    out: dict[str, BindOutcome] = {}
    for node in result.nodes:
        out[node.unique_id] = BindOutcome(node.unique_id, node.name, node.resource_type,
                                          node.path or "?", _status(node), phase,
                                          node.message or "")
    return out


def _status(node: DbtNodeResult) -> str:
    """ok / error / skipped. A data test that finds rows (fail, warn) over empty relations
    says nothing about the build's data: only a test that does not run is an error. A unit
    test runs on its own rows, so its failure is one the build would have too."""
    if node.status == "skipped":
        return "skipped"
    if node.status in ("error", "runtime error"):
        return "error"
    if node.status == "fail" and node.resource_type == "unit_test":
        return "error"
    return "ok"


def bind_project(settings: Settings, project: Path, profile_name: str, output: Mapping[str, Any],
                 manifest: Mapping[str, Any], work: Path, *, select: Sequence[str] = (),
                 vars_: Mapping[str, Any] | None = None, warehouse: Path | None = None,
                 shapes: tuple[list[SourceShape], dict[str, str], list[str]] | None = None
                 ) -> BindReport:
    """Build `project` empty into a scratch DuckDB under `work` (first run, then the
    incremental run of what built) and return every node's outcome.

    `output` is the profile output the real build would use, `manifest` the manifest of a
    compile of the same project (its sources give the shapes to create), `warehouse` the
    output's DuckDB file (its catalog is preferred for source shapes); `shapes`, when given,
    is `source_shapes` already worked out for them."""
    report = BindReport()
    report.sources, report.unknown_sources, notes = shapes or source_shapes(manifest, warehouse)
    report.notes = list(notes)
    child_map = manifest.get("child_map", {})
    report.source_children = {s: list(child_map.get(s, [])) for s in report.unknown_sources}
    scratch = work / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    profiles = work / "bind-profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    target_name = "pulse_check"
    scratch_profile = scratch_output(output, scratch)
    (profiles / "profiles.yml").write_text(yaml.safe_dump(
        {profile_name: {"target": target_name, "outputs": {target_name: scratch_profile}}}))
    create_sources(scratch, report.sources,
                   [a["alias"] for a in scratch_profile.get("attach") or []])
    common = ["--log-level", "none", "--profiles-dir", str(profiles), "--target", target_name]
    if vars_:
        common += ["--vars", json.dumps(dict(vars_))]
    first = run_dbt(settings, ["build", "--empty", *common, *select], project_dir=project,
                    target=target_name, target_path=work / "bind",
                    env={"PULSE_DUCKDB_PATH": str(scratch / f"{SCRATCH_DB}.duckdb")},
                    check=False, quiet=True)
    report.outcomes.update(_outcomes(first, "first run"))
    if first.error and not first.nodes:
        report.errors.append(f"first run: {_first_lines(first.error, 4)}")
    again = sorted(
        o.name for uid, o in report.outcomes.items()
        if o.status == "ok" and (o.resource_type == "snapshot" or (
            o.resource_type == "model"
            and manifest.get("nodes", {}).get(uid, {}).get("config", {}).get("materialized") == "incremental")))
    if again:
        second = run_dbt(settings, ["build", "--empty", *common, "--select", *again,
                                    "--exclude", "resource_type:test", "resource_type:unit_test"],
                         project_dir=project, target=target_name, target_path=work / "bind",
                         env={"PULSE_DUCKDB_PATH": str(scratch / f"{SCRATCH_DB}.duckdb")},
                         check=False, quiet=True)
        if second.error and not second.nodes:
            report.errors.append(f"incremental run: {_first_lines(second.error, 4)}")
        bound_again = []
        for uid, outcome in _outcomes(second, "incremental run").items():
            if outcome.status != "ok":
                report.outcomes[uid] = outcome
            elif outcome.resource_type in ("model", "snapshot"):
                bound_again.append(outcome.name)
        if bound_again:
            report.notes.append("incremental branches bound (is_incremental() true): "
                                + ", ".join(sorted(bound_again)))
    return report


# --------------------------------------------------------------------------------------
# explaining a failure
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BindFailure:
    """A DuckDB error of the empty build, reduced to its cause and the name it is about."""

    construct: str
    reason: str
    subject: str | None
    #: the words of the translated SQL at DuckDB's caret (``LINE n: ...`` then ``^``)
    at_caret: str | None = None


def explain(message: str) -> BindFailure:
    """`BindFailure` from dbt's message for a node (``Runtime Error in model x ... Binder
    Error: Referenced column "y" not found ...``)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        match = _DUCKDB_ERROR.search(line)
        if match and not line.startswith("Runtime Error in") and not line.startswith("Compilation Error in"):
            reason = match[2]
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if nxt.startswith(("Candidate bindings", "Did you mean")):
                reason += f" ({nxt})"
            func = _FUNCTION.search(reason)
            quoted = _QUOTED.findall(match[2])
            subject = func[1] if func else (quoted[-1] if "column" in match[2] and quoted else
                                            quoted[0] if quoted else None)
            if "column" in match[2] and len(quoted) >= 2 and "does not have a column" in match[2]:
                subject = quoted[-1]
            return BindFailure(match[1], reason, subject, _at_caret(message))
    return BindFailure("dbt", _first_lines(message, 3), None)


def _at_caret(message: str) -> str | None:
    """The text DuckDB's caret points at (``LINE 3: ... a + b AS x ...`` over ``   ^``)."""
    raw = message.splitlines()
    for i, line in enumerate(raw[:-1]):
        caret = raw[i + 1]
        if re.search(r"LINE \d+:", line) and caret.strip() == "^":
            return line[caret.index("^"):].strip().rstrip(".") or None
    return None


def line_of(raw_code: str | None, cause: BindFailure) -> tuple[int | None, str | None]:
    """The line of the node's own file the failure is about: the first line naming its
    subject (a column, table or function, as a whole word), else the first line holding
    the words at DuckDB's caret (three, then two)."""
    if not raw_code:
        return None, None
    lines = [(n, t.strip()) for n, t in enumerate(raw_code.splitlines(), 1)
             if t.strip() and not t.strip().startswith("--")]
    if cause.subject and re.match(r"[\w$]", cause.subject):
        word = re.compile(r"(?<![\w$])" + re.escape(cause.subject.split(".")[-1]) + r"(?![\w$])",
                          re.IGNORECASE)
        for number, text in lines:
            if word.search(text):
                return number, text
    words = (cause.at_caret or "").split()
    for size in (3, 2):
        if len(words) < size:
            continue
        wanted = " ".join(words[:size]).lower()
        for number, text in lines:
            if wanted in " ".join(text.split()).lower():
                return number, text
    return None, None
