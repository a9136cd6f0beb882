"""The translator's rule table: the first rules (rules.py) with the family modules' ahead.

Apart from rules.py so the family modules (rules_*.py), which build on rules.py's helpers, are
not imported by it (no import circle). `core` reads `RULES_BY_TYPE` from here.
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.rules import (
    Rule,
    rule_byte_length,
    rule_concat,
    rule_create,
    rule_float_literal,
    rule_format,
    rule_ieee_divide,
    rule_json_query,
    rule_numeric_type,
    rule_safe_prefix,
    rule_scalar_misc,
)
from pulse_local.translate.rules_arrays import RULES as ARRAY_RULES
from pulse_local.translate.rules_arrays import (
    rule_array_agg_limit,
    rule_array_functions,
    rule_array_slice,
    rule_code_points,
    rule_string_agg_limit,
    rule_unnest_offset,
    rule_unnest_struct_columns,
)
from pulse_local.translate.rules_casts import LATE_RULES as LATE_CAST_RULES
from pulse_local.translate.rules_conformance import CONFORMANCE_RULES
from pulse_local.translate.rules_dml import RULES as DML_RULES
from pulse_local.translate.rules_json import RULES as JSON_RULES
from pulse_local.translate.rules_numbers import RULES as NUMBER_RULES
from pulse_local.translate.rules_query import RULES as QUERY_RULES
from pulse_local.translate.rules_routines import RULES as ROUTINE_RULES
from pulse_local.translate.rules_strings import LATE_RULES as LATE_STRING_RULES
from pulse_local.translate.rules_strings import RULES as STRING_RULES
from pulse_local.translate.rules_structs import RULES as STRUCT_RULES
from pulse_local.translate.rules_time import RULES as TIME_RULES
from pulse_local.translate.rules_time import (
    rule_date_add,
    rule_date_diff,
    rule_date_from_unix_date,
    rule_date_trunc,
    rule_extract,
    rule_time_functions,
    rule_timestamp_diff,
    rule_timestamp_result,
    rule_timestamp_string,
)
from pulse_local.translate.rules_windows import LATE_RULES as LATE_WINDOW_RULES
from pulse_local.translate.rules_windows import RULES as WINDOW_RULES

__all__ = ["ALL_RULES", "RULES_BY_TYPE"]

#: The first rules (sqlglot's translation corrected), by node type; the family modules'
#: rules and CONFORMANCE_RULES are put ahead of these in this same dict, which the
#: translator reads (core._apply_rules).
RULES_BY_TYPE: dict[type, tuple[Rule, ...]] = {
    exp.DateTrunc: (rule_date_trunc,),
    exp.TimestampTrunc: (rule_date_trunc,),
    exp.DatetimeTrunc: (rule_date_trunc,),
    exp.DateAdd: (rule_date_add,),
    exp.DateSub: (rule_date_add,),
    exp.DateDiff: (rule_date_diff,),
    exp.Extract: (rule_extract,),
    exp.TimestampDiff: (rule_timestamp_diff,),
    exp.DateFromUnixDate: (rule_date_from_unix_date,),
    exp.Unnest: (rule_unnest_offset, rule_unnest_struct_columns),
    exp.ArrayAgg: (rule_array_agg_limit,),
    exp.ArraySlice: (rule_array_slice,),
    exp.ToCodePoints: (rule_code_points,),
    exp.CodePointsToString: (rule_code_points,),
    exp.SafeFunc: (rule_safe_prefix,),
    exp.Literal: (rule_float_literal,),
    exp.GenerateTimestampArray: (rule_timestamp_result,),
    exp.StrToTime: (rule_timestamp_result,),
    exp.UnixToTime: (rule_timestamp_result,),
    exp.TimeTrunc: (rule_time_functions,),
    exp.TimeToStr: (rule_time_functions,),
    exp.String: (rule_timestamp_string,),
    exp.GroupConcat: (rule_string_agg_limit,),
    exp.ArrayFirst: (rule_array_functions,),
    exp.ArrayLast: (rule_array_functions,),
    exp.RangeBucket: (rule_array_functions,),
    exp.GenerateSeries: (rule_array_functions,),
    exp.Substring: (rule_scalar_misc,),
    exp.Unicode: (rule_scalar_misc,),
    exp.Normalize: (rule_scalar_misc,),
    exp.ParseNumeric: (rule_scalar_misc,),
    exp.Sign: (rule_scalar_misc,),
    exp.Concat: (rule_concat,),
    exp.DataType: (rule_numeric_type,),
    exp.Format: (rule_format,),
    exp.ByteLength: (rule_byte_length,),
    exp.JSONExtract: (rule_json_query,),
    exp.JSONExtractArray: (rule_json_query,),
    exp.Anonymous: (rule_ieee_divide, rule_array_functions, rule_scalar_misc),
    exp.Create: (rule_create,),
}


def _register_module_rules() -> None:
    """Put the rules of the family modules (rules_*.py) and those learned from ZetaSQL's
    compliance tests ahead of the first rules (in `RULES_BY_TYPE` itself)."""
    # NUMBER_RULES first, so that they run after the others (they wrap whole windows)
    tables = [NUMBER_RULES, QUERY_RULES, TIME_RULES, JSON_RULES, STRING_RULES, ARRAY_RULES,
              ROUTINE_RULES, STRUCT_RULES, WINDOW_RULES, DML_RULES]
    for table in (*tables, CONFORMANCE_RULES):
        for node_type, rules in table.items():
            RULES_BY_TYPE[node_type] = rules + RULES_BY_TYPE.get(node_type, ())
    for late in (LATE_STRING_RULES, LATE_WINDOW_RULES, LATE_CAST_RULES):
        for node_type, rules in late.items():
            RULES_BY_TYPE[node_type] = RULES_BY_TYPE.get(node_type, ()) + rules


_register_module_rules()

ALL_RULES: tuple[Rule, ...] = tuple(dict.fromkeys(r for rules in RULES_BY_TYPE.values() for r in rules))
