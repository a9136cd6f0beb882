"""Golden cases: BigQuery SQL with the result BigQuery returns, checked on DuckDB.

A case file (YAML) holds a `family` and `cases`; each case has an `id`, the BigQuery
`sql`, the BigQuery `types` of the result columns, the expected `rows`, optionally
`ordered: true` (row order matters) and `xfail: <reason>` (a documented difference).
Values are written as BigQuery prints them: DATE '2008-12-25', DATETIME
'2008-12-25T05:30:00', TIMESTAMP '2008-12-25 15:30:00+00', NUMERIC as a string.

Comparison is typed: DuckDB result types are mapped back to BigQuery types
(`bigquery_type`) and must equal the expected ones before values are compared.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import yaml

from pulse_local.translate import session
from pulse_local.translate.core import translate
from pulse_local.translate.errors import UntranslatableSQL

_SCALAR_TYPES = {
    "BIGINT": "INT64", "INTEGER": "INT64", "SMALLINT": "INT64", "TINYINT": "INT64",
    "HUGEINT": "INT64", "UBIGINT": "INT64", "UINTEGER": "INT64", "USMALLINT": "INT64",
    "UTINYINT": "INT64", "DOUBLE": "FLOAT64", "FLOAT": "FLOAT64", "VARCHAR": "STRING",
    "BOOLEAN": "BOOL", "DATE": "DATE", "TIMESTAMP": "DATETIME",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP", "TIME": "TIME", "BLOB": "BYTES",
    "JSON": "JSON", "INTERVAL": "INTERVAL", "\"NULL\"": "NULL",
    "TIMESTAMP_NS": "DATETIME", "TIMESTAMP_MS": "DATETIME", "TIMESTAMP_S": "DATETIME",
}


@dataclass
class GoldenCase:
    """One BigQuery documentation example and the result BigQuery returns."""

    id: str
    family: str
    sql: str
    types: list[str]
    rows: list[list[Any]]
    ordered: bool = False
    xfail: str | None = None


@dataclass
class CaseResult:
    """The outcome of running one case through the translator on DuckDB."""

    case: GoldenCase
    passed: bool
    detail: str = ""
    translate_ms: float = 0.0


@dataclass
class Report:
    """Pass rates by family plus translation timings."""

    results: list[CaseResult] = field(default_factory=list)

    def by_family(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for r in self.results:
            ok, total = out.get(r.case.family, (0, 0))
            out[r.case.family] = (ok + int(r.passed), total + 1)
        return dict(sorted(out.items()))

    @property
    def pass_rate(self) -> float:
        return sum(r.passed for r in self.results) / max(len(self.results), 1)

    def timing_ms(self) -> tuple[float, float]:
        times = sorted(r.translate_ms for r in self.results if r.translate_ms)
        if not times:
            return 0.0, 0.0
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        return statistics.median(times), p95


def load_cases(directory: Path) -> list[GoldenCase]:
    """Read every `*.yaml` case file of `directory`."""
    cases: list[GoldenCase] = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        family = data["family"]
        for raw in data["cases"]:
            cases.append(GoldenCase(
                id=f"{family}/{raw['id']}", family=family, sql=raw["sql"].strip(),
                types=list(raw["types"]), rows=[list(r) for r in raw["rows"]],
                ordered=bool(raw.get("ordered", False)), xfail=raw.get("xfail"),
            ))
    return cases


def bigquery_type(duck_type: Any) -> str:
    """Map a DuckDB result type to the BigQuery type it stands for."""
    type_id = getattr(duck_type, "id", None)
    if type_id == "list" or type_id == "array":
        (_, child), = duck_type.children[:1]
        return f"ARRAY<{bigquery_type(child)}>"
    if type_id == "struct":
        fields = ", ".join(f"{name} {bigquery_type(t)}" for name, t in duck_type.children)
        return f"STRUCT<{fields}>"
    text = str(duck_type).upper()
    if text.startswith("DECIMAL"):
        return "NUMERIC"
    return _SCALAR_TYPES.get(text, text)


def _split_top(inner: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _format_ts(value: dt.datetime) -> str:
    text = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "+00"


def normalise(value: Any, bq_type: str) -> Any:
    """Turn a DuckDB Python value into the BigQuery printed form used in case files."""
    if value is None:
        return None
    if bq_type.startswith("ARRAY<"):
        inner = bq_type[6:-1]
        return [normalise(v, inner) for v in value]
    if bq_type.startswith("STRUCT<"):
        fields = [f.split(" ", 1) for f in _split_top(bq_type[7:-1])]
        return {name: normalise(value.get(name), t) for name, t in fields}
    if bq_type == "TIMESTAMP" and isinstance(value, dt.datetime):
        return _format_ts(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    if bq_type == "DATETIME" and isinstance(value, dt.datetime):
        return value.isoformat(sep="T")
    if bq_type in {"DATE", "TIME"}:
        return value.isoformat()
    if bq_type in {"NUMERIC", "BIGNUMERIC"}:
        return Decimal(str(value)).normalize()
    if bq_type == "BYTES":
        return bytes(value).hex()
    return value


def expected_value(value: Any, bq_type: str) -> Any:
    """Normalise a value written in a case file the same way as `normalise`."""
    if value is None:
        return None
    if bq_type.startswith("ARRAY<"):
        return [expected_value(v, bq_type[6:-1]) for v in value]
    if bq_type.startswith("STRUCT<"):
        fields = [f.split(" ", 1) for f in _split_top(bq_type[7:-1])]
        return {name: expected_value(value.get(name), t) for name, t in fields}
    if bq_type in {"NUMERIC", "BIGNUMERIC"}:
        return Decimal(str(value)).normalize()
    if bq_type == "DATETIME":
        return str(value).replace(" ", "T")
    if bq_type in {"DATE", "TIME", "TIMESTAMP"}:
        return str(value)
    return value


def values_equal(actual: Any, expected: Any) -> bool:
    """Equality with float tolerance (1e-9 relative), NaN == NaN, recursive."""
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(values_equal, actual, expected))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(values_equal(actual[k], expected[k]) for k in actual)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected or actual == expected and type(actual) is type(expected)
    if isinstance(actual, float) or isinstance(expected, float):
        if actual is None or expected is None:
            return False
        a, e = float(actual), float(expected)
        if math.isnan(a) or math.isnan(e):
            return math.isnan(a) and math.isnan(e)
        return math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-12)
    return actual == expected


def _sort_key(row: list[Any]) -> str:
    return repr(row)


def connect() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB session configured like BigQuery (UTC, helper functions)."""
    con = duckdb.connect()
    session.configure(con)
    return con


def run_case(case: GoldenCase) -> CaseResult:
    """Translate and execute `case` on DuckDB, comparing types then values."""
    start = time.perf_counter()
    try:
        duck_sql = translate(case.sql)
    except UntranslatableSQL as err:
        return CaseResult(case, False, f"untranslatable: {err}")
    translate_ms = (time.perf_counter() - start) * 1000
    con = connect()
    try:
        cursor = con.execute(duck_sql)
        rows = cursor.fetchall()
        types = [bigquery_type(d[1]) for d in cursor.description]
    except duckdb.Error as err:
        return CaseResult(case, False, f"DuckDB error: {err}\nSQL: {duck_sql}", translate_ms)
    finally:
        con.close()
    # DuckDB folds an all-NULL constant expression to the untyped NULL type; it carries
    # no BigQuery type to compare, so it matches the expected type when every value is NULL
    # (a column the case does not expect pads with "", which matches no type).
    types = [
        exp_t if t == "NULL" and all(r[i] is None for r in rows) else t
        for i, (t, exp_t) in enumerate(zip(types, case.types + [""] * len(types)))
    ]
    if types != case.types:
        return CaseResult(case, False, f"types {types} != expected {case.types}\nSQL: {duck_sql}", translate_ms)
    actual = [[normalise(v, t) for v, t in zip(row, types)] for row in rows]
    expected = [[expected_value(v, t) for v, t in zip(row, case.types)] for row in case.rows]
    if not case.ordered:
        actual, expected = sorted(actual, key=_sort_key), sorted(expected, key=_sort_key)
    same = len(actual) == len(expected) and all(map(values_equal, actual, expected))
    if not same:
        return CaseResult(case, False, f"rows {actual} != expected {expected}\nSQL: {duck_sql}", translate_ms)
    return CaseResult(case, True, "", translate_ms)


def run_all(directory: Path) -> Report:
    """Run every case of `directory` and collect a Report."""
    return Report([run_case(c) for c in load_cases(directory)])


def default_golden_dir() -> Path:
    """tests/unit/translate/golden of this repository."""
    return Path(__file__).resolve().parents[3] / "tests" / "unit" / "translate" / "golden"
