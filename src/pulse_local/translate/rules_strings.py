"""String rules: CHR(0), CODE_POINTS_TO_STRING, FORMAT('%t'/'%T'), LPAD/RPAD errors,
NORMALIZE / NORMALIZE_AND_CASEFOLD, and the helper-backed SOUNDEX / FARM_FINGERPRINT.

BigQuery's CHR(0) is '' and CODE_POINTS_TO_STRING skips 0 and is NULL when an element
is NULL (DuckDB gives '\\0' and skips NULLs). FORMAT's %t prints a value as text and %T
as a GoogleSQL literal ("abc", DATE "2024-01-01", NULL); DuckDB's printf has neither.
Functions DuckDB lacks call the exact helpers of `pulse_local.translate.functions`.
"""

from __future__ import annotations

import re
import re._parser as re_parser

from sqlglot import exp

from pulse_local.translate.functions import macro_call
from pulse_local.translate.rules import (
    Rule,
    fail,
    fill,
    rule_scalar_misc,
    typed_at_bind,
)
from pulse_local.translate.rules_constants import (
    error_calls,
    raise_text,
)


def rule_chr(node: exp.Expression) -> exp.Expression | None:
    """CHR(0) is the empty string in BigQuery."""
    if not isinstance(node, exp.Chr) or len(node.expressions) != 1 or node.args.get("charset"):
        return None
    return fill("CASE WHEN __c = 0 THEN '' ELSE CHR(CAST(__c AS INTEGER)) END", c=node.expressions[0])


def rule_code_points_to_string(node: exp.Expression) -> exp.Expression | None:
    """CODE_POINTS_TO_STRING: 0 adds nothing, a NULL element makes the result NULL."""
    if not isinstance(node, exp.CodePointsToString):
        return None
    return fill(
        "CASE WHEN __a IS NULL OR LEN(LIST_FILTER(__a, c -> c IS NULL)) > 0 THEN NULL ELSE "
        "ARRAY_TO_STRING(LIST_TRANSFORM(__a, c -> CASE WHEN c = 0 THEN '' ELSE CHR(CAST(c AS INTEGER)) END), '') END",
        a=node.this,
    )


def rule_pad(node: exp.Expression) -> exp.Expression | None:
    """LPAD/RPAD raise on a negative length or an empty pattern (DuckDB pads or returns '')."""
    if not isinstance(node, exp.Pad) or node.meta.get("pulse_rule") or isinstance(node.this, exp.ByteString):
        return None
    node.meta["pulse_rule"] = True
    pattern = node.args.get("fill_pattern")
    name = "LPAD" if node.args.get("is_left") else "RPAD"
    if pattern is None:
        pattern = exp.Literal.string(" ")
        node.set("fill_pattern", pattern)
    return fill(
        f"CASE WHEN __n < 0 THEN error('{name}: return_length is negative') "
        f"WHEN __p = '' THEN error('{name}: pattern is empty') ELSE __f END",
        n=node.expression, p=pattern, f=node,
    )


# %t / %T ---------------------------------------------------------------------------

_SPEC = re.compile(r"%([-+ #0']*)(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")

_TEXT = (
    "CASE WHEN __x IS NULL THEN 'NULL' "
    "WHEN regexp_matches(typeof(__x), '^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT"
    "|BOOLEAN|VARCHAR|DATE|TIME|TIMESTAMP|TIMESTAMP WITH TIME ZONE)$') THEN CAST(__x AS VARCHAR) "
    "WHEN typeof(__x) IN ('DOUBLE', 'FLOAT') AND CAST(__x AS VARCHAR) = 'nan' THEN 'NaN' "
    "WHEN typeof(__x) IN ('DOUBLE', 'FLOAT') AND NOT regexp_matches(CAST(__x AS VARCHAR), '[eE]|[0-9]{16,}') "
    "THEN CAST(__x AS VARCHAR) "
    "ELSE error('FORMAT %t: values of type ' || typeof(__x) || ' are not printed as BigQuery does; "
    "cast the argument to STRING first') END"
)

_LITERAL = (
    "CASE WHEN __x IS NULL THEN 'NULL' "
    "WHEN typeof(__x) = 'VARCHAR' AND NOT regexp_matches(CAST(__x AS VARCHAR), '[\"''\\\\\\x00-\\x1f]') "
    "THEN '\"' || CAST(__x AS VARCHAR) || '\"' "
    "WHEN regexp_matches(typeof(__x), '^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT"
    "|BOOLEAN)$') THEN CAST(__x AS VARCHAR) "
    "WHEN typeof(__x) IN ('DOUBLE', 'FLOAT') AND NOT regexp_matches(CAST(__x AS VARCHAR), '[eE]|[0-9]{16,}|nan|inf') "
    "THEN CAST(__x AS VARCHAR) "
    "WHEN typeof(__x) = 'DATE' THEN 'DATE \"' || CAST(__x AS VARCHAR) || '\"' "
    "WHEN typeof(__x) = 'TIMESTAMP WITH TIME ZONE' THEN 'TIMESTAMP \"' || CAST(__x AS VARCHAR) || '\"' "
    "WHEN typeof(__x) = 'TIMESTAMP' THEN 'DATETIME \"' || CAST(__x AS VARCHAR) || '\"' "
    "WHEN typeof(__x) = 'TIME' THEN 'TIME \"' || CAST(__x AS VARCHAR) || '\"' "
    "ELSE error('FORMAT %T: this ' || typeof(__x) || ' value is not printed as a BigQuery literal here; "
    "format it explicitly') END"
)


def rule_format_text(node: exp.Expression) -> exp.Expression | None:
    """FORMAT with %t / %T: convert those arguments to BigQuery's text, print them with %s."""
    if not isinstance(node, exp.Format) or node.meta.get("pulse_rule"):
        return None
    fmt = node.this
    if not (isinstance(fmt, exp.Literal) and fmt.is_string) or not re.search(r"%[^%]*?[tT]", fmt.this):
        return None
    if "%'" in fmt.this:
        return None  # rules.rule_format rejects the grouping flag
    args = list(node.expressions)
    out: list[str] = []
    index = 0
    last = 0
    for match in _SPEC.finditer(fmt.this):
        flags, width, precision, conv = match.groups()
        out.append(fmt.this[last:match.start()])
        last = match.end()
        if conv == "%":
            out.append("%%")
            continue
        index += (width == "*") + (precision == "*")
        if index >= len(args):
            raise fail(node, "FORMAT", "the format has more specifiers than arguments")
        if conv in "tT":
            args[index] = fill(_TEXT if conv == "t" else _LITERAL, x=args[index])
            conv = "s"
        spec = "%" + flags + (width or "") + (f".{precision}" if precision else "") + conv
        out.append(spec)
        index += 1
    out.append(fmt.this[last:])
    new = exp.Format(this=exp.Literal.string("".join(out)), expressions=args)
    new.meta["pulse_rule"] = True
    return exp.Anonymous(this="PRINTF", expressions=[new.this, *new.expressions])


# helpers ---------------------------------------------------------------------------


def _form_name(form: exp.Expression | None | bool) -> str:
    if form is None or form is True or form is False:
        return "NFC"
    return form.name.upper()


def rule_normalize(node: exp.Expression) -> exp.Expression | None:
    """NORMALIZE(s, NFKC/NFD/NFKD) and NORMALIZE_AND_CASEFOLD(s[, form]) via exact helpers."""
    if not isinstance(node, exp.Normalize):
        return None
    form = _form_name(node.args.get("form"))
    if form not in {"NFC", "NFKC", "NFD", "NFKD"}:
        raise fail(node, f"normalization mode {form}", "BigQuery accepts NFC, NFKC, NFD or NFKD")
    if node.args.get("is_casefold"):
        return exp.Anonymous(this="bq_normalize_and_casefold", expressions=[node.this, exp.Literal.string(form)])
    if form == "NFC":
        return None  # rules.rule_scalar_misc: DuckDB's nfc_normalize
    return exp.Anonymous(this="bq_normalize", expressions=[node.this, exp.Literal.string(form)])


def rule_helper_functions(node: exp.Expression) -> exp.Expression | None:
    """SOUNDEX, FARM_FINGERPRINT and JSON_KEYS call the helpers registered on the session."""
    if isinstance(node, exp.Soundex):
        return exp.Anonymous(this="bq_soundex", expressions=[node.this])
    if isinstance(node, exp.FarmFingerprint):
        if len(node.expressions) != 1:
            raise fail(node, "FARM_FINGERPRINT", "it takes exactly one argument")
        value = node.expressions[0]
        is_bytes = isinstance(value, exp.ByteString) or (
            isinstance(value, exp.Cast) and value.to.is_type(exp.DataType.Type.VARBINARY, exp.DataType.Type.BINARY)
        )
        name = "bq_farm_fingerprint_bytes" if is_bytes else "bq_farm_fingerprint"
        return exp.Anonymous(this=name, expressions=[value])
    if isinstance(node, exp.JSONKeysAtDepth):
        if node.args.get("mode") is not None:
            raise fail(node, "JSON_KEYS(..., mode)", "only the default 'strict' mode is reproduced")
        document = exp.cast(node.this, exp.DataType.build("VARCHAR"))
        depth = node.args.get("expression")
        if depth is None:
            return exp.Anonymous(this="bq_json_keys", expressions=[document])
        return exp.Anonymous(this="bq_json_keys_depth", expressions=[document, depth])
    return None


def rule_cast_format_to_text(node: exp.Expression) -> exp.Expression | None:
    """CAST(x AS STRING FORMAT ...) / CAST(x AS BYTES FORMAT ...): sqlglot drops the format
    of a date/time to STRING cast (DATE '2020-01-01' FORMAT 'YYYY' printed the whole date)
    and writes the others in a syntax DuckDB does not read. Refused, naming the format."""
    if not isinstance(node, exp.Cast) or node.args.get("format") is None:
        return None
    if not node.to.is_type("text", "varchar", "blob", "binary", "varbinary"):
        return None
    target = "BYTES" if node.to.is_type("blob", "binary", "varbinary") else "STRING"
    raise fail(node, f"CAST(... AS {target} FORMAT {node.args['format'].sql(dialect='bigquery')})",
               "the format clause has no DuckDB translation here",
               "Use FORMAT_DATE / FORMAT_TIMESTAMP, TO_BASE64 / FROM_BASE64, TO_HEX / FROM_HEX or FORMAT instead.")


_REGEXP_GROUPS_ERROR = "REGEXP_INSTR: the regular expression has more than one capturing group (BigQuery raises this error)"


def rule_regexp_instr_groups(node: exp.Expression) -> exp.Expression | None:
    """REGEXP_INSTR with a capturing group returns the group's position in BigQuery (and
    raises for more than one group); DuckDB's translation gives the whole match's. A
    literal pattern with one group is refused, one with more raises when run (so SAFE.
    gives NULL, as in BigQuery)."""
    if not isinstance(node, exp.RegexpInstr) or node.meta.get("pulse_rule"):
        return None
    pattern = node.expression
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return None
    try:
        groups = re.compile(pattern.name).groups
    except re.error:
        return None
    if groups == 0:
        return None
    if groups == 1:
        raise fail(node, "REGEXP_INSTR with a capturing group",
                   "BigQuery returns the position of the group, the translation that of the whole match",
                   "Make the group non-capturing, (?:...), or use REGEXP_EXTRACT with INSTR.")
    node.meta["pulse_rule"] = True
    return fill(f"CASE WHEN CAST('{_REGEXP_GROUPS_ERROR}' AS BIGINT) IS NULL THEN NULL ELSE __r END", r=node)


def _cannot_match_empty(pattern: exp.Expression) -> bool:
    """True when `pattern` is a string literal whose every match is at least one character
    (the shortest width of its parse, where Python's syntax reads it; else not proven)."""
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return False
    try:
        return re_parser.parse(pattern.name).getwidth()[0] > 0
    except (re.error, OverflowError, RecursionError):
        return False


_EMPTY_MATCH_ERROR = (
    "REGEXP_EXTRACT_ALL: the pattern matched the empty string inside a non-empty input, where the "
    "translation would differ from BigQuery (an extra or repeated empty match); use a pattern that "
    "cannot match the empty string"
)


def rule_regexp_extract_all_empty(node: exp.Expression) -> exp.Expression | None:
    """REGEXP_EXTRACT_ALL with a pattern that can match the empty string: BigQuery (ZetaSQL's
    ExtractAllIterator) takes an empty match, moves one character on, and stops at the end of
    the input; DuckDB adds a last empty match at the end and repeats an empty match found past
    its start position (`'abc', 'x*'`: 4 matches for 3; `'ab cd', '\\b'`: 6 for 4). Unless
    the pattern is a literal that cannot match the empty string, the call raises when an empty
    match occurs in a non-empty input (the cases where both agree: no empty match, or input '')."""
    if not isinstance(node, exp.RegexpExtractAll) or node.meta.get("pulse_rule"):
        return None
    if _cannot_match_empty(node.expression):
        return None
    node.meta["pulse_rule"] = True
    probe = exp.RegexpExtractAll(this=node.this.copy(), expression=node.expression.copy())
    probe.meta["pulse_rule"] = True
    out = fill(
        f"CASE WHEN __s <> '' AND LIST_CONTAINS(__probe, '') THEN ERROR('{_EMPTY_MATCH_ERROR}') ELSE __r END",
        s=node.this.copy(), probe=probe, r=node,
    )
    guarded = rule_regexp_column_pattern_group(node)  # the rule chain stops at this one's result
    if guarded is not None:
        return _group_guard(node.expression, out)
    return out


_GROUP_PATTERN_ERROR = (
    "REGEXP_EXTRACT/REGEXP_EXTRACT_ALL: a pattern read at run time that may hold a capturing group "
    "(an opening parenthesis not followed by ?, or a named group) is not reproduced: BigQuery returns "
    "the group, the translation the whole match; write the pattern as a string literal"
)


def rule_regexp_column_pattern_group(node: exp.Expression) -> exp.Expression | None:
    """REGEXP_EXTRACT / REGEXP_EXTRACT_ALL return the capturing group's text in BigQuery; sqlglot
    passes DuckDB the group index only for a literal pattern, so a pattern read from a column
    holding `(b)` gave the whole match. Such a call raises when the pattern holds an opening
    parenthesis that is not `(?:`-like, or a named group (an escaped `\\(` raises too: loud)."""
    if not isinstance(node, (exp.RegexpExtract, exp.RegexpExtractAll)) or node.meta.get("pulse_group_rule"):
        return None
    pattern = node.expression
    if isinstance(pattern, exp.Null) or (isinstance(pattern, exp.Literal) and pattern.is_string):
        return None
    group = node.args.get("group")
    if group is not None and not (isinstance(group, exp.Literal) and group.name == "0"):
        return None  # sqlglot's default group is 0; another one was not written in BigQuery
    node.meta["pulse_group_rule"] = True
    return _group_guard(pattern, node)


def _group_guard(pattern: exp.Expression, call: exp.Expression) -> exp.Expression:
    """`call`, raising when the run-time `pattern` may hold a capturing group."""
    return fill(
        "CASE WHEN REGEXP_MATCHES(__p, '\\((?:[^?]|$)|\\(\\?P?<') "
        f"THEN ERROR('{_GROUP_PATTERN_ERROR}') ELSE __r END",
        p=pattern.copy(), r=call,
    )


def _aggregated_value(agg: exp.GroupConcat) -> exp.Expression | None:
    """The value STRING_AGG aggregates (under DISTINCT / ORDER BY / LIMIT)."""
    value = agg.this
    while isinstance(value, (exp.Limit, exp.Order)):
        value = value.this
    if isinstance(value, exp.Distinct):
        value = value.expressions[0] if len(value.expressions) == 1 else None
    return value


def rule_bytes_string_agg(node: exp.Expression) -> exp.Expression | None:
    """STRING_AGG of BYTES is BYTES in BigQuery; DuckDB's string_agg gives the escaped text
    (VARCHAR). The typed macro `bq_bytes_agg` casts that text back to BLOB when the value is
    a BLOB (decided when DuckDB binds the query); a BYTES separator is passed as its text."""
    window = node if isinstance(node, exp.Window) else None
    agg = node.this if window is not None else node
    if not isinstance(agg, exp.GroupConcat) or agg.meta.get("pulse_bytes_agg"):
        return None
    if window is None and isinstance(node.parent, exp.Window):
        return None  # handled on the window
    if node.find_ancestor(exp.Pivot) is not None:
        return None
    value = _aggregated_value(agg)
    if value is None or isinstance(value, exp.Null) or not typed_at_bind(value):
        return None
    agg.meta["pulse_bytes_agg"] = True
    separator = agg.args.get("separator")
    if isinstance(separator, exp.ByteString) or (
        isinstance(separator, exp.Cast) and separator.to.is_type("blob", "binary", "varbinary")
    ):
        agg.set("separator", exp.cast(separator, exp.DataType.build("VARCHAR")))
    return exp.Anonymous(this=macro_call("bq_bytes_agg"), expressions=[value.copy(), node.copy()])


def _negative_length_error(function: str) -> str:
    return f"ERROR('{function} with a negative length (BigQuery raises an error here)')"


def rule_negative_length(node: exp.Expression) -> exp.Expression | None:
    """LEFT/RIGHT/REPEAT/SUBSTR with a negative length raise in BigQuery; DuckDB returns a string."""
    if isinstance(node, (exp.Left, exp.Right)):
        length, name = node.expression, node.key.upper()
    elif isinstance(node, exp.Repeat):
        length, name = node.args.get("times"), "REPEAT"
        if isinstance(node.this, exp.Null):  # REPEAT(NULL, n) is a STRING (DuckDB picks BLOB)
            node.set("this", exp.cast(exp.Null(), exp.DataType.build("VARCHAR")))
    elif isinstance(node, exp.Substring):
        length, name = node.args.get("length"), "SUBSTR"
        node = rule_scalar_misc(node) or node
    else:
        return None
    if length is None or (isinstance(length, exp.Literal) and not length.is_string):
        return node if node.meta.get("pulse_rule") else None
    guarded = fill(f"CASE WHEN __n < 0 THEN {_negative_length_error(name)} ELSE __x END", n=length, x=node)
    return guarded


def rule_split_null_delimiter(node: exp.Expression) -> exp.Expression | None:
    """SPLIT(s, NULL) is NULL in BigQuery; DuckDB's STR_SPLIT returns [s]."""
    if not isinstance(node, exp.Split) or node.meta.get("pulse_rule"):
        return None
    delimiter = node.expression
    if delimiter is None or isinstance(delimiter, exp.Literal) and delimiter.is_string:
        return None
    node.meta["pulse_rule"] = True
    return fill("CASE WHEN __d IS NULL THEN NULL ELSE __x END", d=delimiter, x=node)


def rule_string_argument_errors(node: exp.Expression) -> exp.Expression | None:
    """Inputs BigQuery rejects: TRANSLATE with a repeated source character; ASCII of a
    string whose first character is not ASCII."""
    if isinstance(node, exp.Translate) and not node.meta.get("pulse_rule"):
        node.meta["pulse_rule"] = True
        source = node.args.get("from_") or node.args.get("expression")
        if source is None:
            return None
        raise_ = raise_text("TRANSLATE source has a repeated character (BigQuery raises this error)", "__f")
        return fill(
            f"CASE WHEN LENGTH(__f) <> LENGTH(LIST_DISTINCT(STRING_SPLIT(__f, ''))) AND __f <> '' "
            f"THEN {raise_} ELSE __t END",
            f=source, t=node,
        )
    if isinstance(node, exp.Ascii) and not node.meta.get("pulse_rule"):
        node.meta["pulse_rule"] = True
        raise_ = raise_text("ASCII of a non-ASCII first character (BigQuery raises this error)", "__s")
        return fill(f"CASE WHEN TYPEOF(__s) = 'VARCHAR' AND UNICODE(CAST(__s AS VARCHAR)) > 127 THEN {raise_} ELSE __a END",
                    s=node.this, a=node)
    return None


def rule_format_pattern(node: exp.Expression) -> exp.Expression | None:
    """FORMAT with a pattern that is not a string literal: DuckDB's printf neither checks the
    argument count nor the types against the pattern as BigQuery does, nor reads `%.*d` alike."""
    if isinstance(node, exp.Format) and (
        any(isinstance(n, (exp.Column, exp.Subquery, exp.Select)) for n in node.this.walk())
        or error_calls(node.this)  # DuckDB folds printf(ERROR(..), ..) to NULL without raising
    ):
        raise fail(node, "FORMAT with a computed pattern",
                   "only a string-literal pattern can be checked and translated as BigQuery reads it",
                   "Write the FORMAT pattern as a string literal.")
    if isinstance(node, exp.Format) and isinstance(node.this, exp.Literal) and not node.meta.get("pulse_rule"):
        wanted = sum(
            1 + (width == "*") + (precision == "*")
            for _flags, width, precision, conv in _SPEC.findall(node.this.name) if conv != "%"
        )
        if wanted != len(node.expressions):
            raise fail(node, "FORMAT", f"the pattern takes {wanted} argument(s) but {len(node.expressions)} are given "
                       "(BigQuery raises an error)")
    return None


RULES: dict[type, tuple[Rule, ...]] = {
    exp.RegexpInstr: (rule_regexp_instr_groups,),
    exp.Chr: (rule_chr,),
    exp.CodePointsToString: (rule_code_points_to_string,),
    exp.Pad: (rule_pad,),
    exp.Format: (rule_format_text,),
    exp.Normalize: (rule_normalize,),
    exp.Soundex: (rule_helper_functions,),
    exp.FarmFingerprint: (rule_helper_functions,),
    exp.JSONKeysAtDepth: (rule_helper_functions,),
}

#: Run after every other rule of their node types (registry.py appends them): they wrap the node.
LATE_RULES: dict[type, tuple[Rule, ...]] = {
    exp.RegexpInstr: (rule_regexp_instr_groups,),
    exp.RegexpExtractAll: (rule_regexp_extract_all_empty, rule_regexp_column_pattern_group),
    exp.RegexpExtract: (rule_regexp_column_pattern_group,),
    exp.GroupConcat: (rule_bytes_string_agg,),
    exp.Window: (rule_bytes_string_agg,),
}
