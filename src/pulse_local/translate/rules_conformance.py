"""Rules learned from ZetaSQL's compliance tests (`make conformance`): their dispatch table.

Each rule fixes a place where DuckDB returned an answer where BigQuery returns a different
one or raises an error (division by zero, literal NULL operands, argument checks of window
and aggregate functions, GROUPING SETS, casts to STRING, ...). The rules live in the module
of their domain (rules_arithmetic, rules_windows, rules_grouping, rules_casts, rules_strings,
rules_json, rules_arrays, rules_time, rules_structs); this table registers them ahead of
every other rule of the same node type (registry.py), in this order.
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.rules import Rule
from pulse_local.translate.rules_arithmetic import (
    rule_division_by_zero,
    rule_ieee_divide,
    rule_literal_null_operand,
    rule_not_literal_null,
    rule_safe_aggregate,
    rule_safe_divide_overflow,
    rule_safe_guards,
)
from pulse_local.translate.rules_arrays import (
    rule_aggregate_arguments,
    rule_aggregate_limit_zero,
    rule_generate_array_step,
    rule_nested_array,
)
from pulse_local.translate.rules_casts import (
    rule_bignumeric_precision,
    rule_bytes_to_string,
    rule_cast_to_int64,
    rule_civil_string,
    rule_number_to_string,
    rule_string_length_parameter,
    rule_string_to_bytes,
    rule_time_literal_range,
)
from pulse_local.translate.rules_grouping import (
    rule_grouping_sets,
    rule_limit_null,
    rule_numeric_literal_coercion,
    rule_top_level_select_as_struct,
)
from pulse_local.translate.rules_json import (
    rule_json_int64,
    rule_json_object_duplicate_keys,
    rule_json_path_prefix,
    rule_string_of_json,
)
from pulse_local.translate.rules_strings import (
    rule_cast_format_to_text,
    rule_format_pattern,
    rule_negative_length,
    rule_split_null_delimiter,
    rule_string_argument_errors,
)
from pulse_local.translate.rules_structs import rule_struct_equality
from pulse_local.translate.rules_time import rule_extract_subsecond
from pulse_local.translate.rules_windows import (
    rule_corr_few_pairs,
    rule_count_empty_frame,
    rule_frame_offsets,
    rule_navigation_arguments,
    rule_nth_value_n,
    rule_window_checks,
)

#: Registered ahead of every other rule of the same node type (see registry.py).
CONFORMANCE_RULES: dict[type, tuple[Rule, ...]] = {
    exp.Add: (rule_literal_null_operand,),
    exp.Sub: (rule_literal_null_operand,),
    exp.Mul: (rule_literal_null_operand,),
    exp.Div: (rule_literal_null_operand, rule_division_by_zero),
    exp.IntDiv: (rule_literal_null_operand, rule_division_by_zero),
    exp.Mod: (rule_literal_null_operand, rule_division_by_zero),
    exp.Anonymous: (rule_ieee_divide,),
    exp.Lag: (rule_navigation_arguments,),
    exp.Lead: (rule_navigation_arguments,),
    exp.Left: (rule_negative_length,),
    exp.Right: (rule_negative_length,),
    exp.Repeat: (rule_negative_length,),
    exp.Substring: (rule_negative_length,),
    exp.Extract: (rule_extract_subsecond,),
    exp.Corr: (rule_corr_few_pairs,),
    exp.SafeFunc: (rule_safe_aggregate, rule_safe_guards),
    exp.Select: (rule_top_level_select_as_struct,),
    exp.NthValue: (rule_nth_value_n,),
    exp.Group: (rule_grouping_sets,),
    exp.Window: (rule_window_checks, rule_count_empty_frame),
    exp.String: (rule_string_of_json, rule_civil_string),
    exp.Cast: (rule_cast_format_to_text, rule_time_literal_range, rule_string_length_parameter, rule_bytes_to_string, rule_civil_string,
               rule_number_to_string, rule_cast_to_int64, rule_string_to_bytes),
    exp.TryCast: (rule_cast_format_to_text, rule_number_to_string, rule_cast_to_int64, rule_string_to_bytes),
    exp.JSONObject: (rule_json_object_duplicate_keys,),
    exp.SafeDivide: (rule_safe_divide_overflow,),
    exp.EQ: (rule_struct_equality,),
    exp.NEQ: (rule_struct_equality,),
    exp.Nullif: (rule_struct_equality,),
    exp.Case: (rule_struct_equality,),
    exp.Union: (rule_numeric_literal_coercion,),
    exp.Array: (rule_nested_array, rule_numeric_literal_coercion),
    exp.Limit: (rule_limit_null,),
    exp.GenerateSeries: (rule_generate_array_step,),
    exp.ArrayAgg: (rule_aggregate_arguments, rule_aggregate_limit_zero),
    exp.GroupConcat: (rule_aggregate_arguments, rule_aggregate_limit_zero),
    exp.GenerateDateArray: (rule_generate_array_step,),
    exp.Offset: (rule_limit_null,),
    exp.WindowSpec: (rule_window_checks, rule_frame_offsets),
    exp.Split: (rule_split_null_delimiter,),
    exp.Translate: (rule_string_argument_errors,),
    exp.Not: (rule_not_literal_null,),
    exp.ArrayConcatAgg: (rule_aggregate_arguments,),
    exp.Format: (rule_format_pattern,),
    exp.JSONExtract: (rule_json_path_prefix,),
    exp.JSONExtractScalar: (rule_json_path_prefix,),
    exp.JSONExtractArray: (rule_json_path_prefix,),
    exp.Int64: (rule_json_int64,),
    exp.DataType: (rule_bignumeric_precision,),
    exp.Ascii: (rule_string_argument_errors,),
}
