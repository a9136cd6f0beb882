"""The translator's rule table: the first rules (rules.py) with the family modules' ahead.

Apart from rules.py so the family modules (rules_*.py), which build on rules.py's helpers, are
not imported by it (no import circle). `core` reads `RULES_BY_TYPE` from here.
"""

from __future__ import annotations

from pulse_local.translate.rules import RULES_BY_TYPE, Rule
from pulse_local.translate.rules_arrays import RULES as ARRAY_RULES
from pulse_local.translate.rules_conformance import CONFORMANCE_RULES
from pulse_local.translate.rules_dml import RULES as DML_RULES
from pulse_local.translate.rules_json import RULES as JSON_RULES
from pulse_local.translate.rules_numbers import LATE_RULES as LATE_NUMBER_RULES
from pulse_local.translate.rules_numbers import RULES as NUMBER_RULES
from pulse_local.translate.rules_query import RULES as QUERY_RULES
from pulse_local.translate.rules_routines import RULES as ROUTINE_RULES
from pulse_local.translate.rules_strings import LATE_RULES as LATE_STRING_RULES
from pulse_local.translate.rules_strings import RULES as STRING_RULES
from pulse_local.translate.rules_structs import RULES as STRUCT_RULES
from pulse_local.translate.rules_time import RULES as TIME_RULES
from pulse_local.translate.rules_windows import LATE_RULES as LATE_WINDOW_RULES
from pulse_local.translate.rules_windows import RULES as WINDOW_RULES

__all__ = ["ALL_RULES", "RULES_BY_TYPE"]


def _register_module_rules() -> None:
    """Put the rules of the family modules (rules_*.py) and those learned from ZetaSQL's
    compliance tests ahead of the ones of rules.py (in `rules.RULES_BY_TYPE` itself)."""
    # NUMBER_RULES first, so that they run after the others (they wrap whole windows)
    tables = [NUMBER_RULES, QUERY_RULES, TIME_RULES, JSON_RULES, STRING_RULES, ARRAY_RULES,
              ROUTINE_RULES, STRUCT_RULES, WINDOW_RULES, DML_RULES]
    for table in (*tables, CONFORMANCE_RULES):
        for node_type, rules in table.items():
            RULES_BY_TYPE[node_type] = rules + RULES_BY_TYPE.get(node_type, ())
    for late in (LATE_STRING_RULES, LATE_WINDOW_RULES, LATE_NUMBER_RULES):
        for node_type, rules in late.items():
            RULES_BY_TYPE[node_type] = RULES_BY_TYPE.get(node_type, ()) + rules


_register_module_rules()

ALL_RULES: tuple[Rule, ...] = tuple(dict.fromkeys(r for rules in RULES_BY_TYPE.values() for r in rules))
