"""Run ZetaSQL compliance cases through the translator on DuckDB and classify each one.

Each in-scope file gets a fresh DuckDB connection (``SET TimeZone = 'UTC'``, as the dbt
plugin does). Its ``[prepare_database]`` tables are created from their *expected* rows
(so the oracle's data, not our translation of it, fills them); each case is translated
with `bigquery_to_duckdb`, run inside a transaction that is rolled back, and its typed
result compared with the oracle's. Outcomes: correct, wrong, untranslatable, error,
skipped (with the reason).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import queue
import re
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from pulse_local.conformance.comparison import compare, compare_rows, show
from pulse_local.conformance.scope import (
    BIGQUERY_FEATURES,
    FRAMEWORK_FEATURES,
    NON_BIGQUERY_TYPES,
    uint64_literal,
    uint64_value,
)
from pulse_local.conformance.source import ComplianceSource
from pulse_local.conformance.testfile import (
    Section,
    TestFile,
    bind_parameters,
    parse_test_file,
    split_parameters,
    table_name,
)
from pulse_local.conformance.values import (
    ArrayValue,
    FormatError,
    Interval,
    JsonValue,
    SqlType,
    UnsupportedType,
    parse_typed,
)
from pulse_local.translate import UntranslatableSQL, bigquery_to_duckdb, session

OUTCOMES = ("correct", "wrong", "untranslatable", "error", "skipped")
UTC_ZONES = frozenset({"UTC", "Etc/UTC", "+00", "+00:00", "Z"})
CASE_TIMEOUT_S = 5.0
CASE_WALL_TIMEOUT_S = 8.0
WORKER_MEMORY_BYTES = 3 * 1024**3

logging.getLogger("sqlglot").setLevel(logging.ERROR)

_DML = re.compile(r"^\s*(?:INSERT\s+(?:INTO\s+)?|UPDATE\s+|DELETE\s+(?:FROM\s+)?|MERGE\s+(?:INTO\s+)?)([A-Za-z_]\w*)",
                  re.IGNORECASE)
_ZONE_SENSITIVE = re.compile(r"(?i)timestamp|current_|\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[+-]\d|UTC\b|Z\b)")
_NON_BQ = re.compile(NON_BIGQUERY_TYPES)
_STAR = re.compile(r"(?i)(?:\bSELECT(?:\s+(?:ALL|DISTINCT|AS\s+(?:STRUCT|VALUE)))?|,)\s*(?:\w+\.)?\*")


@dataclass
class CaseResult:
    """The outcome of one case, with what is needed to look at a wrong answer."""

    file: str
    name: str
    outcome: str
    reason: str = ""
    sql: str = ""
    translated: str = ""
    expected: str = ""
    got: str = ""


@dataclass
class FileReport:
    """All case results of one file."""

    file: str
    results: list[CaseResult] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(r.outcome for r in self.results)


@dataclass
class _Table:
    name: str
    type: SqlType | None
    skip_reason: str = ""
    dropped: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- tables


def duck_type(t: SqlType) -> str:
    """The DuckDB column type holding a BigQuery value of type `t`."""
    family = t.family
    if family == "array":
        if t.element is None:
            raise FormatError("ARRAY<> column without element type")
        return duck_type(t.element) + "[]"
    if family == "struct":
        parts = [f'"{name or f"_field_{i + 1}"}" {duck_type(ft)}' for i, (name, ft) in enumerate(t.fields)]
        return "STRUCT(" + ", ".join(parts) + ")"
    return {
        "bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE", "numeric": "DECIMAL(38, 9)",
        "string": "VARCHAR", "bytes": "BLOB", "date": "DATE", "timestamp": "TIMESTAMPTZ",
        "datetime": "TIMESTAMP", "time": "TIME", "json": "JSON", "interval": "INTERVAL",
    }[family]


def sql_literal(value: Any, t: SqlType) -> str:
    """A DuckDB literal of `value` typed as `t` (used to load the oracle's rows)."""
    target = duck_type(t)
    if value is None:
        return f"CAST(NULL AS {target})"
    family = t.family
    if family == "array":
        element = t.element or value.element
        assert element is not None
        return "CAST([" + ", ".join(sql_literal(v, element) for v in value.items) + f"] AS {target})"
    if family == "struct":
        parts = [f"'{(name or f'_field_{i + 1}')}': {sql_literal(v, ft)}"
                 for i, ((name, ft), v) in enumerate(zip(t.fields, value, strict=True))]
        return "CAST({" + ", ".join(parts) + f"}} AS {target})"
    if family == "bool":
        return "TRUE" if value else "FALSE"
    if family == "int":
        return f"CAST({int(value)} AS BIGINT)"
    if family == "float":
        return f"CAST('{value!r}' AS DOUBLE)"
    if family == "numeric":
        return f"CAST('{Decimal(value)}' AS DECIMAL(38, 9))"
    if family == "bytes":
        return f"UNHEX('{value.hex()}')"
    if family == "string":
        return "'" + value.replace("'", "''") + "'"
    if family in ("date", "time", "datetime"):
        return f"CAST('{value.isoformat(sep=' ') if isinstance(value, dt.datetime) else value.isoformat()}' AS {target})"
    if family == "timestamp":
        return f"CAST('{value.astimezone(dt.UTC).isoformat(sep=' ')}' AS TIMESTAMPTZ)"
    if family == "json":
        return "CAST('" + json.dumps(value.value).replace("'", "''") + "' AS JSON)"
    if family == "interval":
        assert isinstance(value, Interval)
        return f"(TO_MONTHS({value.months}) + TO_DAYS({value.days}) + TO_MICROSECONDS({value.micros}))"
    raise FormatError(f"no literal for {t}")


_NUMERIC_LIMIT = Decimal("1e29")


def _scale(value: Decimal) -> int:
    """Digits after the decimal point of a Decimal as written (0 for integers)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _column_problem(ftype: SqlType, values: list[Any]) -> str:
    """Why a table column cannot hold BigQuery values ("" when it can)."""
    try:
        ftype.check_supported()
    except UnsupportedType as err:
        return str(err)
    family = ftype.family
    present = [v for v in values if v is not None]
    if family == "int" and any(not -(2**63) <= v < 2**63 for v in present):
        return f"{ftype.name} values beyond INT64"
    if family == "numeric" and any(v.copy_abs() >= _NUMERIC_LIMIT or _scale(v) > 9 for v in present):
        return f"{ftype.name} values beyond NUMERIC(38, 9)"
    if family == "array" and ftype.element is None:
        typed = next((v.element for v in present if isinstance(v, ArrayValue) and v.element), None)
        if typed is None:
            return "ARRAY<> column without element type"
    return ""


def _create_table(con: duckdb.DuckDBPyConnection, section: Section) -> _Table:
    """Create a table from a [prepare_database] section's expected rows.

    Columns BigQuery could not hold (PROTO, ENUM, RANGE, UINT64 beyond INT64, ...) are left
    out and remembered, so that only the cases naming them are skipped.
    """
    name = table_name(section) or "?"
    expected = section.expected
    if expected is None:
        return _Table(name, None, f"table {name}: no content")
    t, rows_value = expected.type, expected.value
    try:
        if t is None:
            t, rows_value, _end = parse_typed(expected.text, lenient=True)
        row_type = t.element
        if row_type is None or row_type.name != "STRUCT" or not isinstance(rows_value, ArrayValue):
            raise FormatError("table content is not ARRAY<STRUCT<...>>")
        rows = rows_value.items
        kept: list[tuple[int, str, SqlType]] = []
        dropped: dict[str, str] = {}
        for i, (fname, ftype) in enumerate(row_type.fields):
            column = [r[i] for r in rows]
            problem = _column_problem(ftype, column)
            if problem:
                dropped[str(fname)] = problem
                continue
            if ftype.name == "ARRAY" and ftype.element is None:
                ftype = SqlType("ARRAY", next(v.element for v in column if isinstance(v, ArrayValue) and v.element))
            kept.append((i, str(fname), ftype))
        if not kept:
            raise FormatError("no column BigQuery can hold")
        columns = ", ".join(f'"{fname}" {duck_type(ft)}' for _i, fname, ft in kept)
        con.execute(f'CREATE TABLE "{name}" ({columns})')
        for start in range(0, len(rows), 200):
            values = ", ".join(
                "(" + ", ".join(sql_literal(row[i], ft) for i, _n, ft in kept) + ")"
                for row in rows[start : start + 200]
            )
            con.execute(f'INSERT INTO "{name}" VALUES {values}')
    except (FormatError, duckdb.Error, AssertionError, ValueError, IndexError, StopIteration) as err:
        con.execute(f'DROP TABLE IF EXISTS "{name}"')
        return _Table(name, None, f"table {name} cannot be loaded ({str(err).splitlines()[0][:120]})")
    return _Table(name, SqlType("STRUCT", None, tuple((n, ft) for _i, n, ft in kept)), dropped=dropped)


# --------------------------------------------------------------------------- cases


def _skip_reason(test: TestFile, case: Section, tables: dict[str, _Table], sql: str) -> str:
    missing = sorted(case.required_features - BIGQUERY_FEATURES - FRAMEWORK_FEATURES)
    if missing:
        return "requires " + ", ".join(missing) + " (not in BigQuery)"
    forbidden = sorted(case.forbidden_features & BIGQUERY_FEATURES)
    if forbidden:
        return "expects the behaviour without " + ", ".join(forbidden)
    if case.expected is None:
        return "no expected output"
    if case.expected.unreadable:
        return case.expected.unreadable
    if case.expected.error and ("primary_key_mode" in case.options or "primary key" in case.expected.error.lower()):
        return "expects the error of an enforced primary key (BigQuery tables do not enforce one)"
    if case.expected.error and re.search(r"(?i)\b(u?int32|uint64|float)\b", case.expected.error):
        return "expects an error of a type BigQuery does not have (INT32, UINT*, FLOAT)"
    m = _NON_BQ.search(sql)
    if m:
        return f"uses {m.group(0).strip()}, which BigQuery does not have"
    if not case.expected.error:
        big = uint64_literal(sql)
        if big is None and case.expected.type is not None:
            value = uint64_value(case.expected.type, case.expected.value)
            big = None if value is None else str(value)
        if big is not None:
            return f"needs the UINT64 value {big}, beyond INT64: not a BigQuery type"
    used = [t for key, t in tables.items() if re.search(rf"(?i)\b{re.escape(key)}\b", sql)]
    for table in used:
        if table.skip_reason:
            return table.skip_reason
        for column, problem in table.dropped.items():
            if re.search(rf"(?i)\b{re.escape(column)}\b", sql) or _STAR.search(sql):
                return f"table {table.name}: column {column} not loaded ({problem})"
    if test.default_time_zone not in UTC_ZONES:
        zone_types = [t for t in used if t.type is not None and t.type.mentions("TIMESTAMP")]
        result_ts = case.expected.type is not None and case.expected.type.mentions("TIMESTAMP")
        if zone_types or result_ts or _ZONE_SENSITIVE.search(sql):
            return f"depends on the default time zone ({test.default_time_zone}; BigQuery's is UTC)"
    if case.expected.type is not None and case.expected.type.mentions("INTERVAL"):
        return "INTERVAL results are not compared (DuckDB's Python API drops their months)"
    return ""


def _run_with_timeout(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    timer = threading.Timer(CASE_TIMEOUT_S, con.interrupt)
    timer.start()
    try:
        return con.execute(sql)
    finally:
        timer.cancel()


def _execute(con: duckdb.DuckDBPyConnection, translated: str, dml_table: str | None,
             ) -> tuple[list[tuple[Any, ...]], list[Any], int | None]:
    """Run the statement(s); for DML also read the table: (rows, column types, rows modified)."""
    cur = _run_with_timeout(con, translated)
    if dml_table is None:
        rows = cur.fetchall()
        return rows, [d[1] for d in cur.description], None
    count_rows = cur.fetchall()
    modified = int(count_rows[0][0]) if count_rows else 0
    cur = con.execute(f'SELECT * FROM "{dml_table}"')
    rows = cur.fetchall()
    return rows, [d[1] for d in cur.description], modified


def run_case(con: duckdb.DuckDBPyConnection, test: TestFile, case: Section, tables: dict[str, _Table]) -> CaseResult:
    """Translate, run and compare one case."""
    name = case.name or f"line {case.line}"
    result = CaseResult(test.name, name, "skipped", sql=case.sql)
    try:
        params = split_parameters(case.options["parameters"]) if "parameters" in case.options else {}
    except FormatError as err:
        result.reason = str(err)
        return result
    sql = bind_parameters(case.sql, params).rstrip().rstrip(";")
    result.sql = sql
    reason = _skip_reason(test, case, tables, sql)
    if reason:
        result.reason = reason
        return result
    expected = case.expected
    assert expected is not None
    result.expected = f"ERROR: {expected.error}" if expected.error else f"{expected.type} {show(expected.value)}"
    try:
        translated = bigquery_to_duckdb(sql)
    except UntranslatableSQL as err:
        result.outcome = "correct" if expected.error else "untranslatable"
        result.reason = str(err)
        return result
    result.translated = translated
    m = _DML.match(sql)
    dml_table = m.group(1) if m else None
    con.execute("BEGIN")
    try:
        rows, types, modified = _execute(con, translated, dml_table)
    except (duckdb.Error, RuntimeError) as err:
        result.outcome = "correct" if expected.error else "error"
        result.reason = str(err).splitlines()[0][:300]
        return result
    finally:
        con.execute("ROLLBACK")
    result.got = _show_rows(rows, modified)
    if expected.error:
        result.outcome = "wrong"
        result.reason = "returned a result where BigQuery raises an error"
        return result
    mismatch = _compare(expected.type, expected.value, rows, types, modified)
    result.outcome = "wrong" if mismatch else "correct"
    result.reason = str(mismatch) if mismatch else ""
    return result


def _compare(t: SqlType | None, value: Any, rows: list[tuple[Any, ...]], types: list[Any],
             modified: int | None) -> str | None:
    assert t is not None
    if modified is not None:  # DML: STRUCT<num_rows_modified INT64, all_rows ARRAY<>>
        if t.name != "STRUCT" or len(t.fields) != 2:
            return f"unexpected DML result type {t}"
        exp_count, all_rows = value
        if exp_count != modified:
            return f"{modified} rows modified, expected {exp_count}"
        row_type = all_rows.element
        bad = compare_rows(all_rows, row_type, rows, types) if row_type else None
        return str(bad) if bad else None
    if t.name != "ARRAY" or t.element is None or t.element.name != "STRUCT":
        # A single value (rare): compare it with the only column of the only row.
        if len(rows) != 1 or len(types) != 1:
            return f"expected one value, got {len(rows)} rows of {len(types)} columns"
        bad = compare(value, t, rows[0][0], types[0])
        return str(bad) if bad else None
    bad = compare_rows(value, t.element, rows, types)
    return str(bad) if bad else None


def _show_rows(rows: list[tuple[Any, ...]], modified: int | None) -> str:
    text = repr(rows[:20]) + (" ..." if len(rows) > 20 else "")
    return text if modified is None else f"{modified} rows modified; table now {text}"


# --------------------------------------------------------------------------- files


def _cases_of(source: ComplianceSource, name: str, start: int, emit: Callable[[str, Any], None]) -> None:
    """Run the cases of one file from index `start`, reporting ("start", i) and ("result", r)."""
    test = parse_test_file(name, source.read(name))
    con = duckdb.connect()
    try:
        session.configure(con)  # UTC and the helper functions, as the dbt plugin
        con.execute("SET memory_limit = '512MB'")
        con.execute("SET threads = 1")
        tables: dict[str, _Table] = {}
        for section in test.tables:
            missing = section.required_features - BIGQUERY_FEATURES - FRAMEWORK_FEATURES
            tname = table_name(section)
            if tname is None:
                continue
            if missing:
                tables[tname] = _Table(tname, None, f"table {tname} requires {', '.join(sorted(missing))}")
                continue
            tables[tname] = _create_table(con, section)
        for index, case in enumerate(test.cases):
            if index < start:
                continue
            emit("start", index)
            emit("result", run_case(con, test, case, tables))
    finally:
        con.close()
    emit("done", None)


def run_file(source: ComplianceSource, name: str) -> FileReport:
    """Run every case of one compliance file (`name` without ``.test``) in this process."""
    report = FileReport(name)

    def emit(kind: str, payload: Any) -> None:
        if kind == "result":
            report.results.append(payload)

    _cases_of(source, name, 0, emit)
    return report


def _worker(source_path: str, name: str, start: int, out: Any) -> None:
    """Child process: a memory ceiling, then the cases from `start`, results through `out`."""
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    _cases_of(ComplianceSource(source_path), name, start, lambda kind, payload: out.put((kind, payload)))


def run_file_isolated(source: ComplianceSource, name: str) -> FileReport:
    """Run a file in a child process; a case that hangs or kills DuckDB is an error, then go on.

    DuckDB cannot always interrupt a query (a recursive CTE that never ends, a string of
    gigabytes), so the parent stops the child after `CASE_WALL_TIMEOUT_S` without news and
    restarts it after that case.

    The children come from a fork server (a fresh process that imported this module once),
    not from forks of the caller: a caller holding threads (an RPC loop, a test runner's
    worker) may fork with a lock held, and its address space, already past
    `WORKER_MEMORY_BYTES` in a long-lived process, would leave the child's ceiling below what
    it inherited, so every allocation failed.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    report = FileReport(name)
    start = 0
    while True:
        out = ctx.Queue()
        proc = ctx.Process(target=_worker, args=(str(source.path), name, start, out), daemon=True)
        proc.start()
        current, last_news, finished = start, time.monotonic(), False
        while True:
            try:
                kind, payload = out.get(timeout=1.0)
            except queue.Empty:
                if not proc.is_alive() or time.monotonic() - last_news > CASE_WALL_TIMEOUT_S:
                    break
                continue
            last_news = time.monotonic()
            if kind == "start":
                current = payload
            elif kind == "result":
                report.results.append(payload)
                current += 1
            else:
                finished = True
                break
        alive = proc.is_alive()
        if alive:
            proc.kill()
        proc.join()
        if finished:
            return report
        test = parse_test_file(name, source.read(name))
        if current >= len(test.cases):
            return report
        case = test.cases[current]
        why = (f"no answer within {CASE_WALL_TIMEOUT_S:.0f} s (the runner stopped DuckDB)" if alive
               else f"DuckDB's process died (exit code {proc.exitcode})")
        report.results.append(CaseResult(name, case.name or f"line {case.line}", "error", why, sql=case.sql))
        start = current + 1


__all__ = ["OUTCOMES", "ArrayValue", "CaseResult", "FileReport", "JsonValue", "run_case", "run_file", "run_file_isolated"]
