"""dbt's cross-database macros on the plugin's DuckDB target give BigQuery's answers, or are refused.

Real dbt, real DuckDB, no fakes: a generated project calls every cross-database macro dbt
ships over sample rows (NULLs, empty strings, negative numbers, month ends, a +02:00
timestamp) and is compiled twice with dbt's CLI: for a ``bigquery`` target (dbt-bigquery
offline, ``--no-populate-cache``, a dummy token; nothing is sent) and for a ``duckdb`` target
with the translation plugin. The bigquery rendering, translated, is the reference; the
plugin's compiled (translated) SQL must return equal values and equal types on DuckDB, and a
refused macro must fail the node's compilation naming the macro and what to write.
About 60 s (two dbt compiles of ~110 models, a dbt run of the refused ones, a dbt build of a
unit-tested model).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytest.importorskip("dbt.adapters.duckdb")
pytest.importorskip("dbt.adapters.bigquery")

from pulse_local.translate import crossdb, session, translate

SRC = Path(__file__).resolve().parents[3] / "src"


def rows(*structs):
    return "unnest([" + ", ".join(f"struct({s})" for s in structs) + "])"

D = rows(
 "1 as id, date '2024-01-31' as d, timestamp '2024-03-10 23:30:00+00' as ts, datetime '2024-02-29 12:00:00' as dtm, 1 as n",
 "2 as id, date '2024-02-29' as d, timestamp '2024-12-31 23:59:59.999999+00' as ts, datetime '2023-12-31 00:00:00' as dtm, -1 as n",
 "3 as id, date '2023-12-31' as d, timestamp '2024-10-27 01:30:00+02' as ts, datetime '2024-01-01 00:00:01' as dtm, 13 as n",
 "4 as id, cast(null as date) as d, cast(null as timestamp) as ts, cast(null as datetime) as dtm, cast(null as int64) as n",
 "5 as id, date '2024-03-31' as d, timestamp '2024-01-01 00:00:00+00' as ts, datetime '2024-05-31 23:00:00' as dtm, 0 as n",
)
PAIRS = rows(
 "1 as id, date '2024-01-31' as a, date '2024-03-01' as b, timestamp '2024-01-01 23:00:00+00' as ta, timestamp '2024-01-02 01:00:00+00' as tb",
 "2 as id, date '2024-03-01' as a, date '2024-01-31' as b, timestamp '2024-01-07 00:00:00+00' as ta, timestamp '2024-01-08 00:00:00+00' as tb",
 "3 as id, date '2023-12-31' as a, date '2024-01-01' as b, timestamp '2024-01-06 12:00:00+00' as ta, timestamp '2024-01-14 00:00:00+00' as tb",
 "4 as id, cast(null as date) as a, date '2024-01-01' as b, cast(null as timestamp) as ta, timestamp '2024-01-01 00:00:00+00' as tb",
 "5 as id, date '2024-01-06' as a, date '2024-01-07' as b, timestamp '2024-12-31 23:59:59+00' as ta, timestamp '2025-01-01 00:00:00+00' as tb",
)
S = rows(
 "1 as id, 'a,b,,c' as s, ',' as sep, 2 as n, 'b' as sub, true as b, '12' as num",
 "2 as id, '' as s, ',' as sep, 1 as n, '' as sub, false as b, 'x1' as num",
 "3 as id, cast(null as string) as s, ',' as sep, 1 as n, cast(null as string) as sub, cast(null as bool) as b, cast(null as string) as num",
 "4 as id, 'héllo wörld' as s, 'ö' as sep, 0 as n, 'wö' as sub, true as b, ' 7 ' as num",
 "5 as id, 'abc' as s, '' as sep, 5 as n, 'z' as sub, false as b, '-3' as num",
 "6 as id, 'x;y;z' as s, ';' as sep, 3 as n, 'y;' as sub, true as b, '1.5' as num",
)
G = rows(
 "1 as g, 1 as o, 'a' as v, true as b, 10 as x", "1 as g, 2 as o, 'b' as v, false as b, 10 as x",
 "1 as g, 3 as o, cast(null as string) as v, cast(null as bool) as b, 10 as x",
 "2 as g, 1 as o, 'c' as v, cast(null as bool) as b, cast(null as int64) as x",
 "3 as g, 1 as o, cast(null as string) as v, false as b, -5 as x", "3 as g, 2 as o, '' as v, false as b, -5 as x",
)
A = rows(
 "1 as id, [1, 2] as a, [3] as c, 4 as e", "2 as id, cast([] as array<int64>) as a, [5, 6] as c, cast(null as int64) as e",
 "3 as id, cast(null as array<int64>) as a, [7] as c, 8 as e", "4 as id, [1, 1] as a, cast(null as array<int64>) as c, -1 as e",
)

CASES = {}
def case(name, sql): CASES[name] = sql
for part in ["day", "week", "month", "quarter", "year", "hour", "minute", "second"]:
    case(f"dateadd_{part}_date", f"select id, {{{{ dbt.dateadd('{part}', 'n', 'd') }}}} as r from {D}")
    case(f"dateadd_{part}_ts", f"select id, {{{{ dbt.dateadd('{part}', 'n', 'ts') }}}} as r from {D}")
case("dateadd_day_datetime", f"select id, {{{{ dbt.dateadd('day', 'n', 'dtm') }}}} as r from {D}")
case("dateadd_month_literal", f"select id, {{{{ dbt.dateadd('month', '-1', 'd') }}}} as r from {D}")
case("dateadd_day_string", f"select id, {{{{ dbt.dateadd('day', 1, \"'2024-02-28'\") }}}} as r from {D}")
for part in ["day", "week", "month", "quarter", "year", "hour"]:
    case(f"datediff_{part}_date", f"select id, {{{{ dbt.datediff('a', 'b', '{part}') }}}} as r from {PAIRS}")
    case(f"datediff_{part}_ts", f"select id, {{{{ dbt.datediff('ta', 'tb', '{part}') }}}} as r from {PAIRS}")
for part in ["day", "week", "month", "year"]:
    case(f"date_trunc_{part}_date", f"select id, {{{{ dbt.date_trunc('{part}', 'd') }}}} as r from {D}")
    case(f"date_trunc_{part}_ts", f"select id, {{{{ dbt.date_trunc('{part}', 'ts') }}}} as r from {D}")
for part in ["month", "quarter", "year"]:
    case(f"last_day_{part}", f"select id, {{{{ dbt.last_day('d', '{part}') }}}} as r from {D}")
case("hash", f"select id, {{{{ dbt.hash('s') }}}} as r from {S}")
case("safe_cast_int", f"select id, {{{{ dbt.safe_cast('num', api.Column.translate_type('integer')) }}}} as r from {S}")
case("safe_cast_string", f"select id, {{{{ dbt.safe_cast('n', api.Column.translate_type('string')) }}}} as r from {S}")
case("cast_int", f"select id, {{{{ dbt.cast('n', api.Column.translate_type('integer')) }}}} as r from {S}")
case("concat", f"select id, {{{{ dbt.concat(['s', \"'-'\", 'sub']) }}}} as r from {S}")
case("concat_int", f"select id, {{{{ dbt.concat(['s', 'n']) }}}} as r from {S}")
for n in [1, 2, 3, -1]:
    case(f"split_part_{n if n > 0 else 'neg' + str(-n)}", f"select id, {{{{ dbt.split_part('s', \"','\", {n}) }}}} as r from {S}")
case("split_part_col", f"select id, {{{{ dbt.split_part('s', 'sep', 2) }}}} as r from {S}")
case("listagg", f"select g, {{{{ dbt.listagg('v', \"', '\", 'order by o') }}}} as r from {G} group by g")
case("listagg_limit", f"select g, {{{{ dbt.listagg('v', \"','\", 'order by o desc', 1) }}}} as r from {G} group by g")
case("listagg_default", f"select g, {{{{ dbt.listagg('x') }}}} as r from {G} where g = 3 group by g")
case("any_value", f"select g, {{{{ dbt.any_value('x') }}}} as r from {G} group by g")
case("bool_or", f"select g, {{{{ dbt.bool_or('b') }}}} as r from {G} group by g")
for t in ["string", "timestamp", "float", "numeric", "bigint", "int", "boolean"]:
    case(f"type_{t}", f"select id, '{{{{ dbt.type_{t}() }}}}' as r from {S} where id = 1")
case("type_string_cast", f"select id, cast(n as {{{{ dbt.type_string() }}}}) as r from {S}")
case("type_timestamp_cast", f"select id, cast(dtm as {{{{ dbt.type_timestamp() }}}}) as r from {D}")
case("type_timestamp_cast_str", f"select id, cast('2024-01-01 10:00:00' as {{{{ dbt.type_timestamp() }}}}) as r from {D}")
case("type_float_cast", f"select id, cast('0.1' as {{{{ dbt.type_float() }}}}) * 3 as r from {S}")
case("type_numeric_cast", f"select id, cast('1.1234567891' as {{{{ dbt.type_numeric() }}}}) as r from {S}")
case("type_bigint_cast", f"select id, cast(n as {{{{ dbt.type_bigint() }}}}) as r from {S}")
case("type_int_cast", f"select id, cast('9000000000' as {{{{ dbt.type_int() }}}}) as r from {S}")
case("type_boolean_cast", f"select id, cast('true' as {{{{ dbt.type_boolean() }}}}) as r from {S}")
case("cast_bool_to_text", f"select id, {{{{ dbt.cast_bool_to_text('b') }}}} as r from {S}")
case("right", f"select id, {{{{ dbt.right('s', 'n') }}}} as r from {S}")
case("right_lit", f"select id, {{{{ dbt.right('s', 2) }}}} as r from {S}")
case("position", f"select id, {{{{ dbt.position('sub', 's') }}}} as r from {S}")
case("replace", f"select id, {{{{ dbt.replace('s', \"','\", \"'|'\") }}}} as r from {S}")
case("replace_empty", f"select id, {{{{ dbt.replace('s', 'sep', \"'|'\") }}}} as r from {S}")
case("length", f"select id, {{{{ dbt.length('s') }}}} as r from {S}")
case("escape_single_quotes", f"select id, '{{{{ dbt.escape_single_quotes(\"they're\") }}}}' as r from {S}")
case("string_literal", f"select id, {{{{ dbt.string_literal('it is') }}}} as r from {S}")
case("string_literal_bs", "select 1 as id, {{ dbt.string_literal('a\\\\nb') }} as r")
case("array_construct", f"select id, {{{{ dbt.array_construct(['id', 'n']) }}}} as r from {S}")
case("array_construct_empty", f"select id, {{{{ dbt.array_construct([], 'int64') }}}} as r from {S}")
case("array_construct_empty_default", f"select id, {{{{ dbt.array_construct() }}}} as r from {S}")
case("array_append", f"select id, {{{{ dbt.array_append('a', 'e') }}}} as r from {A}")
case("array_concat", f"select id, {{{{ dbt.array_concat('a', 'c') }}}} as r from {A}")
case("except", "select x from unnest([1, 1, 2, 3, cast(null as int64)]) as x {{ dbt.except() }} select y from unnest([3]) as y")
case("intersect", "select x from unnest([1, 1, 2, 3, cast(null as int64)]) as x {{ dbt.intersect() }} select y from unnest([1, 1, 2, cast(null as int64)]) as y")
case("equals", f"select id, {{{{ dbt.equals('s', 'sub') }}}} as r from {S}")
case("date", "select 1 as id, {{ dbt.date(2024, 2, 29) }} as r")
case("current_timestamp", "select 1 as id, {{ dbt.current_timestamp() }} is not null as r, {{ dbt.current_timestamp() }} as v")
case("current_timestamp_backcompat", "select 1 as id, {{ dbt.current_timestamp_backcompat() }} as v")
case("current_timestamp_in_utc_backcompat", "select 1 as id, {{ dbt.current_timestamp_in_utc_backcompat() }} as v")
case("generate_series", "select generated_number from ({{ dbt.generate_series(5) }}) as s")
case("date_spine_day", "select date_day from ({{ dbt.date_spine('day', \"cast('2024-01-30' as date)\", \"cast('2024-02-02' as date)\") }}) as s")
case("date_spine_month", "select date_month from ({{ dbt.date_spine('month', \"cast('2023-11-30' as date)\", \"cast('2024-03-01' as date)\") }}) as s")
case("date_spine_week_saturday", "select date_week from ({{ dbt.date_spine('week', \"cast('2024-02-03' as date)\", \"cast('2024-02-25' as date)\") }}) as s")
case("date_spine_year", "select date_year from ({{ dbt.date_spine('year', \"cast('2020-02-29' as date)\", \"cast('2024-02-28' as date)\") }}) as s")
case("date_spine_hour", "select date_hour from ({{ dbt.date_spine('hour', \"cast('2024-03-30 22:00:00' as datetime)\", \"cast('2024-03-31 03:00:00' as datetime)\") }}) as s")
case("split_part_negative_direct", f"select id, {{{{ dbt._split_part_negative('s', \"','\", -1) }}}} as r from {S}")
case("split_part_negative_via_macro", f"select id, {{{{ last_part('s') }}}} as r from {S}")
case("package_interval_count", "select cast({{ adapter.dispatch('get_intervals_between', 'dbt_utils')(\"cast('2024-01-31' as date)\", \"cast('2024-03-01' as date)\", 'month') }} as int64) as n")
case("date_spine_week", "select date_week from ({{ dbt.date_spine('week', \"cast('2024-01-30' as date)\", \"cast('2024-02-20' as date)\") }}) as s")


def _spine(part: str, start: str, end: str) -> str:
    """BigQuery's meaning of dbt's date_spine: datetime_diff(end, start) periods from start, by
    BigQuery's dateadd, kept while <= end."""
    first = f"datetime_add(cast({start} as datetime), interval n {part})"
    return (f"select {first} as date_{part} from unnest(generate_array(0, "
            f"datetime_diff(cast({end} as datetime), cast({start} as datetime), {part}) - 1)) as n "
            f"where {first} <= {end}")


#: date_spine and interval counts cannot compile for BigQuery offline (they query the warehouse
#: for the count); their reference is written from BigQuery's functions.
SPINE_REFERENCE = {
    "date_spine_day": _spine("day", "date '2024-01-30'", "date '2024-02-02'"),
    "date_spine_month": _spine("month", "date '2023-11-30'", "date '2024-03-01'"),
    "date_spine_week": _spine("week", "date '2024-01-30'", "date '2024-02-20'"),
    "package_interval_count": "select datetime_diff(datetime '2024-03-01', datetime '2024-01-31', "
                              "month) as n",
    "date_spine_week_saturday": _spine("week", "date '2024-02-03'", "date '2024-02-25'"),
    "date_spine_year": _spine("year", "date '2020-02-29'", "date '2024-02-28'"),
    "date_spine_hour": _spine("hour", "datetime '2024-03-30 22:00:00'", "datetime '2024-03-31 03:00:00'"),
}
#: Cases whose SQL returns the current time: values differ by the time between the runs.
CLOCK_CASES = {"current_timestamp", "current_timestamp_backcompat",
               "current_timestamp_in_utc_backcompat"}
REFUSED_CASES = {"split_part_negative_direct", "split_part_negative_via_macro"}
#: A project macro over a refused macro: the guard follows project macros. And a package-style
#: interval count (as dbt_utils' date_spine dispatches to): it runs dbt.datediff in a statement
#: while the model renders, which the plugin answers with BigQuery's count instead.
PROJECT_MACROS = """{% macro last_part(column) -%}
    {{ dbt._split_part_negative(column, "','", -1) }}
{%- endmacro %}

{% macro default__get_intervals_between(start_date, end_date, datepart) -%}
    {%- call statement('count_periods', fetch_result=True) -%}
        select {{ dbt.datediff(start_date, end_date, datepart) }}
    {%- endcall -%}
    {%- set counted = load_result('count_periods') -%}
    {{ return(counted['data'][0][0] if counted else 1) }}
{%- endmacro %}
"""

#: A dbt unit test: its input rows are rendered into the node's code (BigQuery renderings of
#: safe_cast / escape_single_quotes, translated), its expected rows while dbt executes it (DuckDB
#: renderings, run untranslated). Both must hold a quote, a NULL and a negative number.
UNIT_MODELS = {
    "unit_input": "select 'x' as s, 1 as n",
    "unit_subject": "select upper(s) as u, n * 2 as n2, "
                    "{{ dbt.concat(['s', \"'!'\"]) }} as c from {{ ref('unit_input') }}",
}
UNIT_TESTS = """unit_tests:
  - name: unit_subject_keeps_quotes_nulls_and_signs
    model: unit_subject
    given:
      - input: ref('unit_input')
        rows:
          - {s: "it's", n: 2}
          - {s: null, n: -1}
    expect:
      rows:
        - {u: "IT'S", n2: 4, c: "it's!"}
        - {u: null, n2: -2, c: null}
"""
UNIT_SELECTION = ["unit_input", "unit_subject"]

PROFILES = """crossdb:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{db}"
      threads: 1
      plugins:
        - module: pulse_local.translate.dbt_plugin
    bigquery:
      type: bigquery
      method: oauth-secrets
      token: not-a-token
      project: offline-project
      dataset: crossdb
      threads: 1
"""


def _dbt(root: Path, target: str, command: str, selection: list[str]) -> Path:
    """Run dbt's CLI `command` for `target` over the models in `selection` (``--select`` /
    ``--exclude`` arguments); return its target path."""
    target_path = root / f"target_{target}_{command}"
    args = [sys.executable, "-c", "from dbt.cli.main import cli; cli()"]
    args += ["--no-populate-cache"] if target == "bigquery" else []
    args += [command, "--project-dir", str(root), "--profiles-dir", str(root), "--target", target,
             "--target-path", str(target_path), "--log-path", str(root / "logs"), *selection]
    paths = [str(SRC), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=400, check=False)
    return target_path


def _compiled_code(target_path: Path) -> dict[str, str]:
    manifest = json.loads((target_path / "manifest.json").read_text())
    return {n["name"]: n["compiled_code"] for n in manifest["nodes"].values()
            if n["resource_type"] == "model" and n.get("compiled_code")}


def _errors(target_path: Path) -> dict[str, str]:
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["message"] for r in results if r["status"] == "error"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("crossdb")
    (root / "models").mkdir()
    (root / "dbt_project.yml").write_text(
        "name: crossdb\nversion: '1.0'\nprofile: crossdb\nmodel-paths: [models]\n")
    (root / "profiles.yml").write_text(PROFILES.format(db=root / "crossdb.duckdb"))
    (root / "macros").mkdir()
    (root / "macros" / "last_part.sql").write_text(PROJECT_MACROS)
    for name, sql in {**CASES, **UNIT_MODELS}.items():
        (root / "models" / f"{name}.sql").write_text(sql + "\n")
    (root / "models" / "unit_tests.yml").write_text(UNIT_TESTS)
    refused = sorted(REFUSED_CASES)
    local = _compiled_code(_dbt(root, "duckdb", "compile", ["--exclude", *refused, *UNIT_SELECTION]))
    local_errors = _errors(_dbt(root, "duckdb", "run", ["--select", *refused]))
    unit_results = _dbt(root, "duckdb", "build", ["--select", *UNIT_SELECTION]) / "run_results.json"
    bigquery = _compiled_code(_dbt(root, "bigquery", "compile", [
        "--exclude", *SPINE_REFERENCE, *REFUSED_CASES, *UNIT_SELECTION]))
    con = duckdb.connect()
    session.configure(con)
    yield {"local": local, "local_errors": local_errors, "bigquery": bigquery, "con": con,
           "unit_results": json.loads(unit_results.read_text())["results"]}
    con.close()


def _run(con: duckdb.DuckDBPyConnection, duck_sql: str) -> tuple[list[Any], list[str]]:
    cursor = con.execute(duck_sql)
    rows = cursor.fetchall()
    return sorted(rows, key=repr), [str(d[1]) for d in cursor.description]


@pytest.mark.parametrize("name", sorted(set(CASES) - REFUSED_CASES - CLOCK_CASES))
def test_local_answer_equals_the_bigquery_rendering(compiled: dict[str, Any], name: str) -> None:
    reference = SPINE_REFERENCE.get(name) or compiled["bigquery"][name]
    expected = _run(compiled["con"], translate(reference))
    assert _run(compiled["con"], compiled["local"][name]) == expected


@pytest.mark.parametrize("name", sorted(CLOCK_CASES))
def test_current_timestamp_has_bigquerys_type(compiled: dict[str, Any], name: str) -> None:
    local_rows, local_types = _run(compiled["con"], compiled["local"][name])
    _, bigquery_types = _run(compiled["con"], translate(compiled["bigquery"][name]))
    assert local_types == bigquery_types
    assert all(value is not None for value in local_rows[0])


@pytest.mark.parametrize("name", sorted(REFUSED_CASES))
def test_refused_macro_fails_compilation_naming_what_to_write(
        compiled: dict[str, Any], name: str) -> None:
    message = compiled["local_errors"].get(name, "")
    assert "dbt._split_part_negative:" in message, message
    assert "split(s, delimiter)[safe_offset(n)]" in message, message
    assert f"models/{name}.sql" in message


def test_dbt_unit_test_renders_inputs_as_bigquery_and_expected_rows_as_duckdb(
        compiled: dict[str, Any]) -> None:
    statuses = {r["unique_id"].split(".")[-1]: (r["status"], r["message"])
                for r in compiled["unit_results"]}
    assert statuses.get("unit_subject_keeps_quotes_nulls_and_signs", ("absent",))[0] == "pass", statuses
    assert statuses["unit_subject"][0] == "success", statuses


def test_every_cross_database_macro_dbt_ships_is_classified() -> None:
    """Each macro in dbt's macros/utils and the timestamp macros is verified, rendered as
    BigQuery SQL or refused, and every macro the plugin renders or allows has a case above."""
    from dbt.include import global_project

    utils = Path(global_project.__file__).parent / "macros" / "utils"
    shipped = set()
    for path in utils.glob("*.sql"):
        for line in path.read_text().splitlines():
            if line.strip().startswith("{%") and " macro " in line:
                name = line.split(" macro ", 1)[1].split("(", 1)[0].strip()
                shipped.add(crossdb.macro_name(f"macro.dbt.{name}")[1])
    classified = set(crossdb.VERIFIED) | set(crossdb.REFUSED) | crossdb.BIGQUERY_RENDERED
    internal = {"get_intervals_between", "get_powers_of_two", "default_last_day", "snapshot_get_time"}
    untested = {m for m in classified - internal - set(crossdb.REFUSED)
                if not any(case == m or case.startswith(m + "_") for case in CASES)}
    assert not untested, sorted(untested)


def test_an_unclassified_cross_database_macro_is_refused_and_internals_are_not() -> None:
    """The guard is an allowlist: a macro of dbt's macros/utils that no class names (one a
    newer dbt adds) is refused; dbt macros elsewhere (materializations, is_incremental) and
    adapter packages are not followed. The manifest is a dict as manifest.json reads (a fake)."""
    manifest = {"macros": {
        "macro.proj.helper": {"depends_on": {"macros": ["macro.dbt.shiny_new_util",
                                                        "macro.dbt.is_incremental"]}},
        "macro.dbt.shiny_new_util": {"original_file_path": "macros/utils/shiny_new_util.sql"},
        "macro.dbt.is_incremental": {"original_file_path": "macros/materializations/x.sql"},
    }}
    node = {"name": "m", "original_file_path": "models/m.sql",
            "depends_on": {"macros": ["macro.proj.helper", "macro.dbt.hash",
                                      "macro.dbt_duckdb.duckdb__dateadd"]}}
    assert crossdb.unverified_macros(node, manifest) == ["shiny_new_util"]
    message = crossdb.refusal_message(node, ["shiny_new_util"])
    assert "models/m.sql" in message and "dbt.shiny_new_util: not verified" in message
