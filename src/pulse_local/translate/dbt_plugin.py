"""dbt-duckdb plugin: run a BigQuery-SQL dbt project on DuckDB.

Use it from profiles.yml::

    outputs:
      local:
        type: duckdb
        path: "{{ env_var('PULSE_DUCKDB_PATH') }}"
        plugins:
          - module: pulse_local.translate.dbt_plugin

Mechanism (see docs/translation.md for the reasoning):

* Translation happens when dbt *compiles* a node. The plugin wraps
  ``dbt.compilation.Compiler._compile_code`` so that, for SQL nodes of a DuckDB
  target that uses this plugin, the rendered BigQuery SQL (``compiled_code``) is
  replaced by its DuckDB translation. Models, tests, snapshots, ephemeral CTEs and
  hooks all pass through that method; the SQL that dbt-duckdb's own macros wrap
  around it (create table, information_schema queries, merge, ...) is DuckDB SQL
  and is never touched.
* An untranslatable construct stops the run with a dbt compilation error naming the
  model, its file, the line and column, and the construct.
* BigQuery-only configs (`pulse_local.translate.partitioning`): a `partition_by` dict is
  checked and kept off dbt-duckdb (which refuses dicts), ``_dbt_max_partition`` becomes the
  table's maximum partition value, and the adapter learns the `insert_overwrite` strategy.
* Wildcard tables (`dataset.prefix*`) are looked up in the warehouse through dbt's own
  connection when the node compiles, i.e. just before it runs
  (`pulse_local.translate.wildcards`).
* dbt's cross-database macros (`pulse_local.translate.crossdb`) render dbt-bigquery's SQL
  where that is safe; those verified equal keep DuckDB's rendering; any other one a node
  calls is refused at compile time with the BigQuery SQL to write.
* A self-check runs when dbt-duckdb opens the database (``configure_connection``):
  it verifies the compile hook is installed on the method dbt calls and that a
  BigQuery-only probe returns BigQuery's answer (a DATE) on this DuckDB. If either
  fails it raises, naming the dbt-core and dbt-duckdb versions.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any

from pulse_local.errors import PulseError
from pulse_local.translate import crossdb, functions, session
from pulse_local.translate.core import translate
from pulse_local.translate.errors import UntranslatableSQL
from pulse_local.translate.partitioning import (
    MAX_PARTITION,
    BigQueryConfigError,
    PartitionBy,
    install_strategies,
    max_partition_sql,
    substitute_max_partition,
)
from pulse_local.translate.wildcards import Catalog, Wildcard, catalog_sql, shards_from_rows

try:  # dbt-duckdb is an optional runtime dependency of this module
    from dbt.adapters.duckdb.plugins import BasePlugin
except ImportError:  # pragma: no cover - only without dbt-duckdb installed
    BasePlugin = object  # type: ignore[misc,assignment]

PLUGIN_MODULE = __name__
MARKER = "/* pulse-local: translated from BigQuery SQL */"
PROBE_SQL = "SELECT DATE_TRUNC(DATE '2024-02-15', MONTH) AS probe"
_HOOK_ATTR = "__pulse_translate_hook__"


class TranslationHookError(PulseError):
    """The BigQuery -> DuckDB translation does not apply in this dbt installation."""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> str:
    """'dbt-core X, dbt-duckdb Y, duckdb Z, sqlglot W' for error messages."""
    return ", ".join(f"{d} {_version(d)}" for d in ("dbt-core", "dbt-duckdb", "duckdb", "sqlglot"))


def _plugin_entry(credentials: Any) -> Any:
    """This plugin's entry in `credentials` (DuckDB ones), or None."""
    if getattr(credentials, "type", None) != "duckdb":
        return None
    for plugin in getattr(credentials, "plugins", None) or []:
        module = getattr(plugin, "module", None) or (plugin.get("module") if isinstance(plugin, dict) else None)
        if module == PLUGIN_MODULE:
            return plugin
    return None


def _uses_plugin(credentials: Any) -> bool:
    """True when `credentials` are DuckDB ones that list this plugin."""
    return _plugin_entry(credentials) is not None


def _plugin_option(credentials: Any, name: str) -> Any:
    """An option of this plugin's ``config`` in profiles.yml (None when not set)."""
    entry = _plugin_entry(credentials)
    config = entry.get("config") if isinstance(entry, dict) else getattr(entry, "config", None)
    return (config or {}).get(name)


#: ``dbt build --empty`` reads a relation as ``(select * from <relation> where false limit 0)``
#: (dbt-adapters' ``render_limited``; no alias on DuckDB). Around a wildcard table that hides
#: ``_TABLE_SUFFIX`` (BigQuery's ``SELECT *`` never returns it), so a model reading the suffix
#: fails under ``--empty`` on BigQuery and here alike.
_EMPTY_WILDCARD = re.compile(r'\(select \* from ((?:"[^"]*"\.){0,2}"[^"]*\*") where false limit 0\)')

#: Plugin option set by `pulse-local dbt check` for its empty build into a scratch database
#: whose source tables are empty: a wildcard is read directly instead of through the wrapper.
EMPTY_BUILD_OPTION = "empty_build_over_empty_sources"


def unwrap_empty_wildcards(code: str) -> str:
    """`code` with dbt's ``--empty`` wrapper removed around wildcard tables (only right when
    every table the wildcard matches is empty, as in the check's scratch database)."""
    return _EMPTY_WILDCARD.sub(r"\1", code)


def _first_line_text(sql: str, line: int | None) -> str:
    if not line:
        return ""
    lines = sql.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _config(node: Any, key: str) -> Any:
    config = getattr(node, "config", None)
    return config.get(key) if config is not None else None


def apply_bigquery_configs(node: Any, code: str) -> str:
    """Check a BigQuery `partition_by` dict and keep it away from dbt-duckdb; return `code`
    with ``_dbt_max_partition`` replaced by the table's maximum partition value.

    dbt-duckdb reads `partitioned_by` before `partition_by` and ignores both outside DuckLake
    (with a warning), so the field is put there; the dict itself stays in the config for
    `insert_overwrite`. Raises dbt's CompilationError for an invalid or unsupported dict."""
    from dbt_common.exceptions import CompilationError

    raw = _config(node, "partition_by")
    name = getattr(node, "name", "model")
    partition: PartitionBy | None = None
    if isinstance(raw, dict):
        try:
            partition = PartitionBy.parse(raw, name)
        except BigQueryConfigError as err:
            raise CompilationError(str(err), node=node) from err
        if not _config(node, "partitioned_by"):
            node.config["partitioned_by"] = [partition.field]
    if MAX_PARTITION not in code.lower():
        return code
    relation = getattr(node, "relation_name", None)
    if partition is None or not relation:
        raise CompilationError(
            f"{name} reads {MAX_PARTITION}, which dbt-bigquery only declares for models with a "
            "partition_by config: add partition_by={'field': ..., 'data_type': ...}", node=node)
    return substitute_max_partition(code, max_partition_sql(partition, relation))


#: The cross-database macro guard and dispatch lives in `pulse_local.translate.crossdb`; these
#: names stay for callers of the plugin (`pulse-local dbt check`).
DUCKDB_FLAVOURED_MACROS = crossdb.REFUSED
_duckdb_flavoured_macros = crossdb.unverified_macros
refuse_duckdb_flavoured_macros = crossdb.refuse_unverified_macros


def warehouse_catalog(config: Any) -> Catalog:
    """A wildcard `Catalog` that asks the warehouse through dbt's adapter (its open connection)."""

    def look_up(wildcard: Wildcard) -> Any:
        from dbt.adapters.factory import get_adapter

        adapter = get_adapter(config)
        database = getattr(getattr(config, "credentials", None), "database", None)
        sql = catalog_sql(wildcard, default_catalog=database)
        if adapter.connections.get_if_exists() is None:
            with adapter.connection_named("pulse_wildcard_tables"):
                _, table = adapter.execute(sql, fetch=True)
        else:
            _, table = adapter.execute(sql, fetch=True)
        return shards_from_rows([tuple(row) for row in table.rows])

    return look_up


def translate_node_sql(node: Any, catalog: Catalog | None = None) -> None:
    """Replace `node.compiled_code` (BigQuery) by its DuckDB translation, in place.

    `catalog` resolves wildcard tables (without it they are refused). Raises dbt's
    CompilationError naming the node, file, line and construct when the SQL cannot be
    translated.
    """
    code = getattr(node, "compiled_code", None)
    if not code or MARKER in code or getattr(node, "language", "sql") != "sql":
        return
    code = apply_bigquery_configs(node, code)
    try:
        duck = translate(code, dbt_relations=True, catalog=catalog)
    except UntranslatableSQL as err:
        from dbt_common.exceptions import CompilationError

        path = getattr(node, "original_file_path", "?")
        name = getattr(node, "name", "?")
        resource = str(getattr(node, "resource_type", "node")).split(".")[-1].lower()
        text = _first_line_text(code, err.line)
        where = f"{path}, line {err.line}, column {err.col}" if err.line else path
        message = (
            f"BigQuery SQL of {resource} '{name}' ({where}) cannot run on DuckDB: "
            f"{err.construct} - {err.reason}."
            + (f"\n  offending line: {text}" if text else "")
            + f"\n  {err.hint}"
        )
        raise CompilationError(message, node=node) from err
    node.compiled_code = f"{duck}\n{MARKER}"
    if functions.MACRO_CATALOG.upper() in duck.upper():
        _ensure_macros()


def _ensure_macros() -> None:
    """Define the translator's SQL macros on the DuckDB database dbt-duckdb has open.

    `configure_connection` defines them too; this covers a database dbt-duckdb opened
    without calling the plugin (seen in the integration stack), so a model that calls
    them never meets "Catalog pulse_bq does not exist". The Python helpers first: some
    macros call them, and DuckDB binds a macro's body when it is created."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is what runs this hook
        return
    environment = DuckDBConnectionManager._ENV
    conn = getattr(environment, "conn", None)
    if conn is not None:
        functions.register(conn)


def install_compile_hook() -> None:
    """Wrap dbt-core's ``Compiler._compile_code`` so compiled SQL is translated (idempotent)."""
    try:
        from dbt.compilation import Compiler
    except ImportError as err:  # pragma: no cover
        raise TranslationHookError(
            f"cannot import dbt.compilation.Compiler ({versions()}); pulse-local cannot translate "
            "BigQuery SQL. Pin dbt-core to a version listed in docs/translation.md."
        ) from err
    original = getattr(Compiler, "_compile_code", None)
    if original is None:
        raise TranslationHookError(
            f"dbt.compilation.Compiler._compile_code is gone ({versions()}); pulse-local cannot "
            "translate BigQuery SQL. Pin dbt-core to a version listed in docs/translation.md."
        )
    if getattr(original, _HOOK_ATTR, False):
        return

    @functools.wraps(original)
    def _compile_code(self: Any, node: Any, manifest: Any, extra_context: Any = None) -> Any:
        uses_plugin = _uses_plugin(getattr(self.config, "credentials", None))
        with crossdb.rendering_node_sql() if uses_plugin else contextlib.nullcontext():
            node = original(self, node, manifest, extra_context)
        if uses_plugin:
            refuse_duckdb_flavoured_macros(node, manifest)
            if _plugin_option(self.config.credentials, EMPTY_BUILD_OPTION) and getattr(
                    node, "compiled_code", None):
                node.compiled_code = unwrap_empty_wildcards(node.compiled_code)
            translate_node_sql(node, warehouse_catalog(self.config))
        return node

    setattr(_compile_code, _HOOK_ATTR, True)
    Compiler._compile_code = _compile_code  # type: ignore[method-assign]


def hook_in_place() -> bool:
    """Cheap check: is dbt-core's ``Compiler._compile_code`` still the translation hook?"""
    try:
        from dbt.compilation import Compiler
    except ImportError:  # pragma: no cover
        return False
    method: Callable[..., Any] | None = getattr(Compiler, "_compile_code", None)
    return method is not None and bool(getattr(method, _HOOK_ATTR, False))


def _not_applied_error() -> TranslationHookError:
    return TranslationHookError(
        "pulse-local BigQuery->DuckDB translation is NOT applied: dbt does not compile "
        f"through the translation hook ({versions()}). Models would run untranslated and "
        "return wrong results, so the run is stopped. Use the dbt-core/dbt-duckdb versions "
        "pinned in pyproject.toml or update pulse_local/translate/dbt_plugin.py."
    )


def hook_installed() -> bool:
    """True when dbt's compile path goes through the translation hook."""
    from dbt.compilation import Compiler

    if not hook_in_place():
        return False
    try:
        source = inspect.getsource(Compiler.compile_node) + inspect.getsource(Compiler._recursively_prepend_ctes)
    except (OSError, TypeError, AttributeError):
        return False
    return "_compile_code(" in source


def self_check(conn: Any) -> None:
    """Fail loudly unless translation is installed and gives BigQuery's answer on `conn`."""
    if not hook_installed():
        raise _not_applied_error()
    duck = translate(PROBE_SQL)
    cursor = conn.cursor()
    try:
        result = cursor.execute(duck)
        value = result.fetchone()[0]
        type_name = str(result.description[0][1]).upper()
    finally:
        cursor.close()
    if type_name != "DATE" or str(value) != "2024-02-01":
        raise TranslationHookError(
            f"pulse-local translation self-check failed: {PROBE_SQL!r} returned {value!r} of type "
            f"{type_name} on DuckDB, BigQuery returns DATE 2024-02-01 ({versions()})."
        )


class Plugin(BasePlugin):  # type: ignore[misc,valid-type]
    """dbt-duckdb plugin that makes DuckDB run the project's BigQuery SQL."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        """Install the compile hook, BigQuery renderings of dbt's cross-database macros and the
        `insert_overwrite` strategy as soon as dbt-duckdb loads the plugin."""
        install_compile_hook()
        crossdb.install_dispatch_hook(_uses_plugin)
        install_strategies(_uses_plugin)

    def configure_connection(self, conn: Any) -> None:
        """BigQuery runs in UTC; then prove that translation really applies."""
        session.configure(conn, global_scope=True)
        self_check(conn)

    def configure_cursor(self, cursor: Any) -> None:
        """Cursors are separate DuckDB sessions: keep them in UTC with the helpers; re-check the hook.

        dbt-duckdb keeps one database open per process, so the full self-check runs
        once; this cheap check catches the hook being removed later in the process.
        """
        if not hook_in_place():
            raise _not_applied_error()
        session.configure(cursor)
