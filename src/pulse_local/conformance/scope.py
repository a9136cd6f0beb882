"""Which compliance files and language features the conformance run measures.

In scope: the SQL a warehouse dbt project writes (dates and timestamps, strings, JSON,
arrays, aggregates, analytic functions, casts, NULL handling, joins, set operations,
DML). Out of scope, with the reason, in docs/translation.md.
"""

from __future__ import annotations

import re
from typing import Any

from pulse_local.conformance.values import ArrayValue, SqlType

#: In-scope compliance files (name without ``.test``), grouped by what they exercise.
IN_SCOPE_FILES: dict[str, tuple[str, ...]] = {
    "dates and timestamps": (
        "date", "civil_time", "timezones", "timestamp_with_default_time_zone",
        "timestamp_with_default_time_zone_2", "default_timezone_utc",
    ),
    "strings": ("strings", "concat_function", "regexp_functions", "bytes"),
    "json": ("json_queries",),
    "arrays": (
        "array_functions", "array_constructors", "array_queries", "array_joins",
        "array_aggregation", "unnest_queries",
    ),
    "aggregates": (
        "aggregation_queries", "aggregation_distinct_queries", "aggregation_order_by_queries",
        "groupby_queries", "groupby_queries_2", "grouping_sets_queries", "group_by_all",
        "having_queries", "numeric_aggregation_queries", "stat_aggregation", "logical_functions",
    ),
    "analytic": (
        "analytic_any_value", "analytic_array_aggregation", "analytic_avg", "analytic_bit_and",
        "analytic_bit_or", "analytic_bit_xor", "analytic_count", "analytic_count_if",
        "analytic_cume_dist", "analytic_dense_rank", "analytic_first_value", "analytic_lag",
        "analytic_last_value", "analytic_lead", "analytic_logical_and", "analytic_logical_or",
        "analytic_min_max", "analytic_nth_value", "analytic_ntile", "analytic_null_handling_modifier_queries",
        "analytic_numeric_range_window_frames", "analytic_partitionby_orderby", "analytic_percent_rank",
        "analytic_percentile_cont", "analytic_percentile_disc", "analytic_rank", "analytic_row_number",
        "analytic_stat_aggregation", "analytic_string_aggregation", "analytic_sum",
        "analytic_window_frames", "qualify",
    ),
    "casts and types": ("cast_function", "safe_function", "numeric", "struct_queries"),
    "nulls, conditionals and math": (
        "comparison_functions", "case_statement_queries", "in_queries", "math_functions",
        "arithmetic_functions", "constant_queries",
    ),
    "joins and subqueries": (
        "join_queries", "with_queries", "with_recursive", "subquery_expression_queries",
        "select_distinct", "orderby_queries", "limit_queries", "pivot",
    ),
    "set operations": ("unionall_queries", "union_distinct_queries", "except_intersect_queries"),
    "dml": ("dml_insert", "dml_update", "dml_delete"),
}


def in_scope_files() -> list[str]:
    """All in-scope file names, in report order."""
    return [name for names in IN_SCOPE_FILES.values() for name in names]


#: ZetaSQL language features that BigQuery has; a case requiring any other is skipped.
BIGQUERY_FEATURES = frozenset({
    "ANALYTIC_FUNCTIONS", "NUMERIC_TYPE", "BIGNUMERIC_TYPE", "CIVIL_TIME", "JSON_TYPE",
    "SAFE_FUNCTION_CALL", "ORDER_BY_IN_AGGREGATE", "LIMIT_IN_AGGREGATE", "HAVING_IN_AGGREGATE",
    "NULL_HANDLING_MODIFIER_IN_AGGREGATE", "NULL_HANDLING_MODIFIER_IN_ANALYTIC",
    "GROUPING_SETS", "GROUP_BY_ROLLUP", "GROUPING_BUILTIN", "GROUP_BY_STRUCT", "GROUP_BY_ALL",
    "QUALIFY", "PIVOT", "UNPIVOT", "WITH_RECURSIVE", "JSON_VALUE_EXTRACTION_FUNCTIONS",
    "JSON_CONSTRUCTOR_FUNCTIONS", "JSON_ARRAY_FUNCTIONS", "JSON_MUTATOR_FUNCTIONS",
    "JSON_KEYS_FUNCTION", "NAMED_ARGUMENTS", "NULLS_FIRST_LAST_IN_ORDER_BY", "IS_DISTINCT",
    "INTERVAL_TYPE", "LIKE_ANY_SOME_ALL", "SELECT_STAR_EXCEPT_REPLACE", "DATE_TIME_CONSTRUCTORS",
    "EXTENDED_DATE_TIME_SIGNATURES", "ADDITIONAL_STRING_FUNCTIONS", "ENFORCE_CONDITIONAL_EVALUATION",
    "FORMAT_IN_CAST", "PARAMETERIZED_TYPES", "DML_UPDATE_WITH_JOIN",
})

#: Feature names that only switch on checks of the test framework itself.
FRAMEWORK_FEATURES = frozenset({""})

#: ZetaSQL types BigQuery does not have: a query naming one is skipped.
NON_BIGQUERY_TYPES = r"(?i)\b(INT32|UINT32|UINT64|FLOAT|PROTO|ENUM|UUID)\b|\b(RANGE|MAP)\s*<|\bNEW\s+\w"

_INT64_MAX = 2**63 - 1
#: A run of digits standing alone (not part of a name, a decimal or a quoted string).
_BIG_INTEGER = re.compile(r"(?<![\w.'\"])(-\s*)?(\d{19,})(?![\w.])")


def uint64_literal(sql: str) -> str | None:
    """An integer literal of the query beyond INT64 (only UINT64 holds it), else None.

    BigQuery rejects such a literal ("Invalid integer literal"); a case whose answer needs
    it tests a type BigQuery does not have."""
    for m in _BIG_INTEGER.finditer(sql):
        value = int(m.group(2))
        if value > _INT64_MAX + (1 if m.group(1) else 0):
            return m.group(2)
    return None


def uint64_value(t: SqlType, value: Any) -> int | None:
    """An integer of the expected result beyond INT64's range (a UINT64 value), else None."""
    if value is None:
        return None
    if t.name == "ARRAY" and isinstance(value, ArrayValue):
        element = t.element or value.element
        return next((v for v in (uint64_value(element, i) for i in value.items) if v is not None), None) \
            if element is not None else None
    if t.name == "STRUCT" and isinstance(value, tuple):
        found = (uint64_value(ft, v) for (_n, ft), v in zip(t.fields, value, strict=False))
        return next((v for v in found if v is not None), None)
    if t.name in ("INT64", "UINT64", "INT32", "UINT32") and isinstance(value, int):
        return value if not -(2**63) <= value <= _INT64_MAX else None
    return None
