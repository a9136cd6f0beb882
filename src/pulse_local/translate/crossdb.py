"""dbt's cross-database macros on the DuckDB target of a BigQuery project.

dbt's cross-database macros (``dbt.dateadd``, ``dbt.hash``, ``dbt.split_part``, ... in
dbt's ``macros/utils``) dispatch on ``target.type``. On the plugin's DuckDB target they would
render DuckDB SQL, which the plugin then translates *as BigQuery SQL*. Every macro was
rendered both ways and run (tests/unit/translate/test_crossdb_macros.py; docs/dbt.md has the
table), and falls in one of three classes:

* `BIGQUERY_RENDERED`: the plugin makes ``adapter.dispatch`` render what dbt-bigquery renders
  (a project's own ``bigquery__<name>`` first, then the rendering here), so the model reads
  the same BigQuery SQL as on the gcp target and the translator gives BigQuery's answer.
  Only while a node's code renders (the SQL the plugin translates): SQL dbt renders while it
  executes a node (unit tests' expected rows through ``safe_cast``, snapshots, freshness)
  runs on DuckDB untranslated and keeps DuckDB's rendering. dbt's ``get_intervals_between``
  (``date_spine``'s period count, a query dbt runs itself while rendering the model) is
  counted with BigQuery's ``datediff``, translated.
* `VERIFIED`: the DuckDB rendering, read as BigQuery SQL, was run against the translated
  dbt-bigquery rendering over NULLs, empty strings, negatives and time zones and gave equal
  values and types; it is left alone.
* anything else in dbt's cross-database macros (`REFUSED`, and any macro a newer dbt adds):
  a node that calls it, itself or through a project or package macro, fails at compile time
  naming the macro and the BigQuery SQL to write instead.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: Cross-database macros kept as DuckDB renders them, with what the comparison showed.
VERIFIED: dict[str, str] = {
    "any_value": "arbitrary(x) = any_value(x), NULL groups included",
    "bool_or": "bool_or(x) = logical_or(x): NULLs ignored, all-NULL group NULL",
    "concat": "same rendering on both targets (x || y; NULL operand gives NULL)",
    "length": "same rendering on both targets",
    "replace": "same rendering on both targets",
    "right": "right(s, n) = BigQuery's substr form, for n = 0, n > length, NULL, ''",
    "position": "position(a in s) = strpos(s, a), empty and NULL substrings",
    "date": "make_date(y, m, d) = date(y, m, d)",
    "cast_bool_to_text": "cast(b as TEXT) = cast(b as string): 'true' / 'false' / NULL",
    "equals": "same rendering on both targets (behaviour flag included)",
    "string_literal": "'v' = '''v''', escapes included",
    "array_append": "array_append(a, x) = array_concat(a, [x]), empty and NULL arrays",
    "array_concat": "array_cat(a, b) = array_concat(a, b), empty and NULL arrays",
    "current_timestamp": "now() = current_timestamp(): TIMESTAMP, UTC",
    "current_timestamp_backcompat": "current_timestamp::timestamp = current_timestamp: TIMESTAMP",
    "current_timestamp_in_utc_backcompat": "as current_timestamp_backcompat",
    "snapshot_get_time": "dbt's snapshot internals (DuckDB SQL they run themselves)",
    "date_spine": "its rows equal a spine of BigQuery's datetime_diff periods by datetime_add "
                  "(its dateadd, generate_series and interval count are BigQuery's here)",
    "get_powers_of_two": "dbt internal of generate_series (plain integers)",
    "default_last_day": "dbt internal of last_day (built on the BigQuery-rendered macros)",
}

#: Cross-database macros refused on this target: why, and what to write instead.
REFUSED: dict[str, str] = {
    "_split_part_negative": "a helper of other databases' split_part; write "
                            "split(s, delimiter)[safe_offset(n)]",
}


#: Type names the DuckDB adapter's ``api.Column.translate_type`` returns where dbt-bigquery's
#: returns another (dbt-bigquery's Column.TYPE_LABELS); a type argument built on the DuckDB
#: target is written as BigQuery's name.
_BIGQUERY_TYPE_NAMES = {"text": "STRING", "float": "FLOAT64", "integer": "INT64"}


def _bigquery_type(type_: str) -> str:
    """`type_` as dbt-bigquery names it (INTEGER -> INT64, TEXT -> STRING, FLOAT -> FLOAT64)."""
    return _BIGQUERY_TYPE_NAMES.get(str(type_).strip().lower(), str(type_))


def _quote_escaped(expression: str) -> str:
    """BigQuery's escape of a single quote inside a '...' literal."""
    return expression.replace("'", "\\'")


def _split_part(string_text: str, delimiter_text: str, part_number: int) -> str:
    """split(...)[safe_offset(n - 1)]; a negative part counts from the end, as dbt-bigquery's."""
    if not isinstance(part_number, int):
        raise TypeError("dbt.split_part needs an integer part_number on BigQuery")
    if part_number >= 0:
        return f"split({string_text}, {delimiter_text})[safe_offset({part_number - 1})]"
    count = (f"length({string_text}) - length(replace({string_text}, {delimiter_text}, ''))"
             f" + 1 + {part_number}")
    return f"split({string_text}, {delimiter_text})[safe_offset({count})]"


def _listagg(measure: str, delimiter_text: str = "','", order_by_clause: str | None = None,
             limit_num: int | None = None) -> str:
    """string_agg with BigQuery's in-call ORDER BY and LIMIT."""
    order = f" {order_by_clause}" if order_by_clause else ""
    limit = f" limit {limit_num}" if limit_num else ""
    return f"string_agg({measure}, {delimiter_text}{order}{limit})"


def _safe_cast(field: Any, type_: str) -> str:
    """safe_cast(field as type), as dbt-bigquery renders it: `field` is SQL text, or a value
    from a unit-test fixture (a number, a list for an ARRAY type, a dict for JSON)."""
    type_ = _bigquery_type(type_)
    lowered = type_.lower()
    if lowered.startswith("array") and isinstance(field, (list, tuple)) and field:
        element = type_[6:-1]
        if element.lower().startswith("struct") or element.lower() == "geography":
            items = ", ".join(str(item).strip('"').strip("'") for item in field)
            return f"(select array_agg(safe_cast(i as {element})) from unnest([{items}]) i)"
        return f"(select array_agg(safe_cast(i as {element})) from unnest({field}) i)"
    if lowered == "json" and isinstance(field, Mapping):
        return f"safe_cast(json '{_quote_escaped(json.dumps(field))}' as json)"
    if isinstance(field, str) and (lowered.startswith("struct") or lowered == "geography"):
        field = field.strip('"').strip("'")
    return f"safe_cast({field} as {type_})"


def _array_construct(inputs: list[str] | None = None, data_type: str = "INT64") -> str:
    """An array literal; an empty one is typed ARRAY<type>[]."""
    if inputs:
        return f"[ {' , '.join(str(i) for i in inputs)} ]"
    return f"ARRAY<{_bigquery_type(data_type)}>[]"


#: SQL renderings of dbt-bigquery for macros whose text has no Jinja dependencies.
_TEXT_RENDERINGS: dict[str, Callable[..., str]] = {
    "datediff": lambda first_date, second_date, datepart:
        f"datetime_diff(cast({second_date} as datetime), cast({first_date} as datetime), {datepart})",
    "dateadd": lambda datepart, interval, from_date_or_timestamp:
        f"datetime_add(cast({from_date_or_timestamp} as datetime), interval {interval} {datepart})",
    "date_trunc": lambda datepart, date: f"timestamp_trunc(cast({date} as timestamp), {datepart})",
    "hash": lambda field: f"to_hex(md5(cast({field} as string)))",
    "split_part": _split_part,
    "listagg": _listagg,
    "safe_cast": _safe_cast,
    "cast": lambda field, type_: f"cast({field} as {_bigquery_type(type_)})",
    "except": lambda: "except distinct",
    "intersect": lambda: "intersect distinct",
    "escape_single_quotes": _quote_escaped,
    "array_construct": _array_construct,
    "type_string": lambda: "string",
    "type_timestamp": lambda: "timestamp",
    "type_float": lambda: "FLOAT64",
    "type_numeric": lambda: "numeric",
    "type_bigint": lambda: "bigint",
    "type_int": lambda: "INT64",
    "type_boolean": lambda: "boolean",
}

#: Macros for which dbt-bigquery uses dbt's ``default__`` implementation (taken from dbt itself).
_DEFAULT_IMPLEMENTATIONS = ("last_day", "generate_series")

def _intervals_between(wrapper: Any) -> Callable[..., int]:
    """dbt's ``get_intervals_between`` (date_spine's period count), counted as BigQuery counts:
    BigQuery's ``datediff`` rendering, translated, run on the warehouse through dbt's adapter.
    While dbt parses (no warehouse) it returns 1, as dbt's own macro does."""

    def get_intervals_between(start_date: str, end_date: str, datepart: str) -> int:
        from dbt.context.providers import RuntimeDatabaseWrapper
        from dbt_common.exceptions import CompilationError

        from pulse_local.translate.core import translate
        from pulse_local.translate.errors import UntranslatableSQL

        if not isinstance(wrapper, RuntimeDatabaseWrapper):
            return 1
        bigquery = "select " + _TEXT_RENDERINGS["datediff"](start_date, end_date, datepart)
        try:
            duck = translate(bigquery)
        except UntranslatableSQL as err:
            raise CompilationError(f"dbt.date_spine's interval count {bigquery!r} cannot run on "
                                   f"DuckDB: {err}") from err
        _, table = wrapper._adapter.execute(duck, fetch=True)
        rows = list(table.rows)
        return int(rows[0][0]) if rows and rows[0][0] is not None else 1

    return get_intervals_between


#: Renderings that need dbt's adapter (they run SQL while the model compiles).
_ADAPTER_RENDERINGS: dict[str, Callable[[Any], Callable[..., Any]]] = {
    "get_intervals_between": _intervals_between,
}

#: Packages whose ``get_intervals_between`` (a date spine's period count, a query the macro
#: runs itself while the model renders) the plugin counts as BigQuery counts: dbt's own and
#: dbt_utils' (whose ``date_spine`` runs ``dbt.datediff`` in it).
_INTERVAL_COUNT_NAMESPACES = frozenset({"dbt", "dbt_utils"})

#: Every macro the plugin renders as BigQuery SQL.
BIGQUERY_RENDERED: frozenset[str] = (frozenset(_TEXT_RENDERINGS) | frozenset(_ADAPTER_RENDERINGS)
                                     | frozenset(_DEFAULT_IMPLEMENTATIONS))

#: dbt's cross-database macros outside ``macros/utils`` (they live in ``macros/adapters``).
_TIMESTAMP_MACROS = frozenset({"current_timestamp", "current_timestamp_backcompat",
                               "current_timestamp_in_utc_backcompat", "snapshot_get_time"})
#: Packages whose ``macros/utils`` hold dbt's cross-database macros and their implementations.
_DBT_PACKAGES = frozenset({"dbt", "dbt_duckdb"})
#: Adapter packages whose macros are internals of their adapter (never followed).
_ADAPTER_PACKAGES = frozenset({"dbt_duckdb", "dbt_bigquery", "dbt_postgres"})
_HOOK_ATTR = "__pulse_crossdb_dispatch__"

#: True while dbt renders a node's code, the SQL the plugin translates as BigQuery SQL. SQL dbt
#: renders while it *executes* a node (materializations, unit tests' expected rows, snapshots,
#: freshness) runs on DuckDB as it is, so it keeps DuckDB's renderings.
_RENDERING_NODE_SQL: ContextVar[bool] = ContextVar("pulse_rendering_node_sql", default=False)


@contextmanager
def rendering_node_sql() -> Iterator[None]:
    """Within this block (the plugin's compile hook) dispatch renders BigQuery SQL."""
    token = _RENDERING_NODE_SQL.set(True)
    try:
        yield
    finally:
        _RENDERING_NODE_SQL.reset(token)


def macro_name(unique_id: str) -> tuple[str, str]:
    """(package, name without a ``default__``/``duckdb__`` prefix) of ``macro.<pkg>.<name>``."""
    package, _, name = unique_id.removeprefix("macro.").partition(".")
    for prefix in ("default__", "duckdb__"):
        name = name.removeprefix(prefix)
    return package, name


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def _macros_called(item: Any) -> list[str]:
    """``depends_on.macros`` of a dbt node or macro, as an object or as manifest.json reads."""
    depends = _get(item, "depends_on")
    return list(_get(depends, "macros") or []) if depends is not None else []


def is_cross_database(package: str, name: str, macro: Any) -> bool:
    """True for one of dbt's cross-database macros (its ``macros/utils`` or timestamps)."""
    if package not in _DBT_PACKAGES:
        return False
    if name in _TIMESTAMP_MACROS or name in VERIFIED or name in REFUSED or name in BIGQUERY_RENDERED:
        return True
    path = str(_get(macro, "original_file_path") or "").replace("\\", "/")
    return path.startswith("macros/utils/")


def unverified_macros(node: Any, manifest: Any) -> list[str]:
    """dbt cross-database macros, neither verified nor rendered as BigQuery SQL, that the node
    or a project/package macro it uses calls directly (dbt's own macros are not followed:
    they are verified as a whole or run as DuckDB SQL). `manifest` is dbt's Manifest or the
    dict of its manifest.json."""
    macros = _get(manifest, "macros") or {}
    seen: set[str] = set()
    found: set[str] = set()
    stack = _macros_called(node)
    while stack:
        unique_id = stack.pop()
        if unique_id in seen:
            continue
        seen.add(unique_id)
        package, name = macro_name(unique_id)
        macro = macros.get(unique_id)
        if package in _DBT_PACKAGES:
            if is_cross_database(package, name, macro) and name not in VERIFIED \
                    and name not in BIGQUERY_RENDERED:
                found.add(name)
            continue
        if package in _ADAPTER_PACKAGES:
            continue
        stack.extend(_macros_called(macro))
    return sorted(found)


def advice(name: str) -> str:
    """What to write instead of the refused macro `name`."""
    return REFUSED.get(name, "not verified to give BigQuery's answer on DuckDB: write the "
                             "BigQuery SQL it stands for in the model or a project macro")


def refusal_message(node: Any, names: list[str]) -> str:
    """The compile error for a node that calls the refused cross-database macros `names`."""
    lines = "\n".join(f"  dbt.{name}: {advice(name)}" for name in names)
    return (
        f"{_get(node, 'name') or 'node'} ({_get(node, 'original_file_path') or '?'}) uses dbt's "
        "cross-database macro(s) that pulse-local cannot render as BigQuery SQL on this DuckDB "
        "target: their DuckDB rendering, read as BigQuery SQL, would not give BigQuery's answer. "
        f"Write BigQuery SQL instead (in the model or a project macro):\n{lines}"
    )


def refuse_unverified_macros(node: Any, manifest: Any) -> None:
    """Raise dbt's CompilationError when the node uses a refused cross-database macro."""
    found = unverified_macros(node, manifest)
    if not found:
        return
    from dbt_common.exceptions import CompilationError

    raise CompilationError(refusal_message(node, found), node=node)


class Rendering:
    """What the wrapped ``adapter.dispatch`` returns: called from Jinja it renders BigQuery SQL;
    ``.macro`` is the macro dbt's own dispatch chose, which dbt's static parser records as the
    caller's dependency (so manifests and the guard see the same dependencies as without the
    plugin)."""

    def __init__(self, render: Callable[..., Any], macro: Any) -> None:
        self._render = render
        self.macro = macro

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._render(*args, **kwargs)


def bigquery_rendering(wrapper: Any, name: str, namespace: str | None) -> Any:
    """What ``adapter.dispatch(name, namespace)`` returns on BigQuery, for a macro in
    `BIGQUERY_RENDERED`: the project's (or a package's) own ``bigquery__<name>``, else
    dbt-bigquery's rendering (dbt's ``default__<name>`` where dbt-bigquery uses it)."""
    from dbt_common.exceptions import CompilationError

    for package in wrapper._get_search_packages(namespace):
        try:
            found = wrapper._namespace.get_from_package(package, f"bigquery__{name}")
        except CompilationError:  # an unknown package, as dbt's own dispatch: keep looking
            found = None
        if found is not None:
            return found
    if name in _TEXT_RENDERINGS:
        return _TEXT_RENDERINGS[name]
    if name in _ADAPTER_RENDERINGS:
        return _ADAPTER_RENDERINGS[name](wrapper)
    return wrapper._namespace.get_from_package("dbt", f"default__{name}")


def _renders_as_bigquery(name: str, namespace: str | None) -> bool:
    """True for a dispatch the plugin answers with BigQuery's rendering."""
    if name == "get_intervals_between":
        return namespace in _INTERVAL_COUNT_NAMESPACES
    return namespace == "dbt" and name in BIGQUERY_RENDERED


def install_dispatch_hook(uses_plugin: Callable[[Any], bool]) -> None:
    """Wrap dbt's ``adapter.dispatch`` so that, while a node's code renders
    (`rendering_node_sql`) on a target whose credentials `uses_plugin`, the macros in
    `BIGQUERY_RENDERED` of the ``dbt`` namespace render BigQuery SQL (idempotent)."""
    from dbt.context.providers import BaseDatabaseWrapper

    original = BaseDatabaseWrapper.dispatch
    if getattr(original, _HOOK_ATTR, False):
        return

    @functools.wraps(original)
    def dispatch(self: Any, macro_name: str, macro_namespace: str | None = None,
                 packages: Any = None) -> Any:
        if packages is None and _RENDERING_NODE_SQL.get() and _renders_as_bigquery(
                macro_name, macro_namespace) and uses_plugin(
                    getattr(self._adapter.config, "credentials", None)):
            chosen = original(self, macro_name, macro_namespace, packages)
            rendering = bigquery_rendering(self, macro_name, macro_namespace)
            if hasattr(rendering, "macro"):  # a dbt macro (bigquery__<name> or default__<name>)
                return rendering
            return Rendering(rendering, getattr(chosen, "macro", None))
        return original(self, macro_name, macro_namespace, packages)

    setattr(dispatch, _HOOK_ATTR, True)
    BaseDatabaseWrapper.dispatch = dispatch  # type: ignore[method-assign]
