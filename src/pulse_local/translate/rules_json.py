"""JSON rules: extraction null semantics, JSON_TYPE names, TO_JSON / TO_JSON_STRING text.

BigQuery distinguishes STRING input (JSON-formatted text) from JSON input:
`JSON_QUERY('{"a": null}', '$.a')` is SQL NULL, `JSON_QUERY(JSON '{"a": null}', '$.a')`
is JSON `null`, and the result type follows the input (STRING or JSON). DuckDB returns
the JSON text `null` for both. JSON_TYPE names are lower-case JSON names in BigQuery
(`number`, `string`, ...) and DuckDB type names in DuckDB (`UBIGINT`, `VARCHAR`, ...).
TO_JSON_STRING writes whole FLOAT64 values without `.0` (`126`), non-finite values as
strings (`"NaN"`), INT64 beyond 2^53 as strings, timestamps in ISO 8601 (`T`, `Z`).
"""

from __future__ import annotations

from sqlglot import exp

from pulse_local.translate.dialect import JSON_OBJECT_SIZE_MISMATCH
from pulse_local.translate.rules import (
    Rule,
    fail,
    fill,
)
from pulse_local.translate.rules_constants import (
    raise_text,
)

_JSON_MARK = "pulse_json"

#: A JSON string token, for regular expressions that must skip string contents.
_STRING_TOKEN = r'"(?:[^"\\]|\\.)*"'


def is_json_typed(node: exp.Expression) -> bool:
    """True when `node` is evidently of BigQuery type JSON (not STRING)."""
    if node._meta and node.meta.get(_JSON_MARK):
        return True
    if isinstance(node, (exp.ParseJSON, exp.JSONObject, exp.JSONArray)):
        return True
    if isinstance(node, exp.JSONFormat) and node.args.get("to_json"):
        return True
    return isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.JSON)


def _json(node: exp.Expression) -> exp.Expression:
    node.meta[_JSON_MARK] = True
    return node


def rule_json_extract(node: exp.Expression) -> exp.Expression | None:
    """JSON_QUERY / JSON_EXTRACT: STRING in -> STRING out with JSON null as SQL NULL;
    JSON in -> JSON out (JSON null stays a JSON null)."""
    if not isinstance(node, exp.JSONExtract) or node.meta.get("pulse_rule"):
        return None
    node.meta["pulse_rule"] = True
    if is_json_typed(node.this):
        return _json(exp.cast(node, exp.DataType.build("JSON")))
    return fill("NULLIF(CAST(__e AS VARCHAR), 'null')", e=node)


def rule_json_type(node: exp.Expression) -> exp.Expression | None:
    """JSON_TYPE returns object, array, string, number, boolean or null."""
    if not isinstance(node, exp.JSONType) or node.meta.get("pulse_rule"):
        return None
    node.meta["pulse_rule"] = True
    return fill(
        "CASE JSON_TYPE(__j) WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' "
        "WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' WHEN 'NULL' THEN 'null' "
        "WHEN 'BIGINT' THEN 'number' WHEN 'UBIGINT' THEN 'number' WHEN 'DOUBLE' THEN 'number' "
        "WHEN 'HUGEINT' THEN 'number' WHEN 'UHUGEINT' THEN 'number' END",
        j=node.this,
    )


_TIMESTAMP_TYPE = "(^| )TIMESTAMP(_S|_MS|_NS| WITH TIME ZONE)?([\\[,)]|$)"
_NEVER = "^\\b\\B$"


def _when_timestamps(pattern: str) -> str:
    """A regex applied only when the value's type holds a TIMESTAMP (else one that never matches)."""
    return (f"CASE WHEN regexp_matches(typeof(__x), '{_TIMESTAMP_TYPE}') "
            f"THEN '{pattern}' ELSE '{_NEVER}' END")


def _rewrite_passes() -> str:
    """DuckDB's to_json text rewritten to BigQuery's, one regexp_replace per difference.

    Whole floats lose `.0` (string tokens are matched first and kept); non-finite floats
    are quoted; timestamps become ISO 8601 (`T`, `Z` for TIMESTAMP) with the fraction
    padded to 3 or 6 digits (BigQuery prints milli- or microseconds).
    """
    date_time = '"([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.][0-9]+)?)'
    iso = '"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.])'
    passes = [
        ("'(" + _STRING_TOKEN + ")|(-?[0-9]+)[.]0([^0-9eE]|$)'", "'\\1\\2\\3'"),
        ("'\"((?:[^\"\\\\]|\\\\.)*)\"|(-?Infinity|NaN)'", "'\"\\1\\2\"'"),
        (_when_timestamps(date_time + '[+]00"'), "'\"\\1T\\2Z\"'"),
        (_when_timestamps(date_time + '"'), "'\"\\1T\\2\"'"),
        (_when_timestamps(iso + '([0-9])(Z?)"'), "'\"\\1\\200\\3\"'"),
        (_when_timestamps(iso + '([0-9]{2})(Z?)"'), "'\"\\1\\20\\3\"'"),
        (_when_timestamps(iso + '([0-9]{4})(Z?)"'), "'\"\\1\\200\\3\"'"),
        (_when_timestamps(iso + '([0-9]{5})(Z?)"'), "'\"\\1\\20\\3\"'"),
    ]
    body = "CAST(to_json(__x) AS VARCHAR)"
    for pattern, replacement in passes:
        body = f"regexp_replace({body}, {pattern}, {replacement}, 'g')"
    return body


def _bigquery_json_text(value: exp.Expression, *, quote_wide_ints: bool) -> exp.Expression:
    """DuckDB SQL giving BigQuery's JSON text for `value` (or raising at run time).

    Errors (DuckDB `error()`) where the text would differ in a way not reproduced:
    NUMERIC, BYTES and INTERVAL values, FLOAT64 values BigQuery prints in exponent
    notation, integers near or beyond 2^53, and timestamps mixed with strings.
    """
    wide = "|[0-9]{17,}|9[0-9]{15}" if quote_wide_ints else "|[0-9]{17,}"
    template = (
        "CASE WHEN __x IS NULL THEN 'null' "
        "WHEN regexp_matches(typeof(__x), '(^| )(DECIMAL|BLOB|INTERVAL|UUID|MAP|UNION|BIT)([(\\[,)]|$)') "
        "THEN error('TO_JSON_STRING/TO_JSON: NUMERIC, BYTES and INTERVAL values are not encoded as BigQuery does; "
        "cast them to STRING or FLOAT64 first') "
        + ("WHEN regexp_full_match(CAST(to_json(__x) AS VARCHAR), '-?[0-9]+') "
           "THEN CASE WHEN abs(TRY_CAST(CAST(to_json(__x) AS VARCHAR) AS HUGEINT)) > 9007199254740992 "
           "THEN '\"' || CAST(to_json(__x) AS VARCHAR) || '\"' ELSE CAST(to_json(__x) AS VARCHAR) END "
           if quote_wide_ints else "")
        + "WHEN regexp_matches(regexp_replace(CAST(to_json(__x) AS VARCHAR), '" + _STRING_TOKEN + "', '', 'g'), "
        "'[0-9][eE]|[0-9]{16,}[.]" + wide + "') "
        "THEN error('TO_JSON_STRING/TO_JSON: a FLOAT64 in exponent notation or an integer near 2^53 is not "
        "encoded as BigQuery does') "
        "WHEN regexp_matches(typeof(__x), '(^| )TIMESTAMP(_S|_MS|_NS| WITH TIME ZONE)?([\\[,)]|$)') AND regexp_matches(typeof(__x), '(^| )(VARCHAR|JSON)([\\[,)]|$)') "
        "THEN error('TO_JSON_STRING/TO_JSON: a value holding both TIMESTAMP/DATETIME and STRING fields "
        "is not encoded as BigQuery does; format the timestamps with FORMAT_TIMESTAMP first') "
        "ELSE " + _rewrite_passes() + " END"
    )
    return fill(template, x=value)


def rule_to_json(node: exp.Expression) -> exp.Expression | None:
    """TO_JSON_STRING(x) and TO_JSON(x) with BigQuery's encoding of values."""
    if not isinstance(node, exp.JSONFormat) or node.meta.get("pulse_rule"):
        return None
    options = node.args.get("options")
    if options is not None and not (isinstance(options, exp.Boolean) and not options.this):
        raise fail(node, "TO_JSON_STRING(..., pretty_print) / TO_JSON(..., options)",
                   "BigQuery's pretty-printing and stringify options are not reproduced",
                   "Drop the second argument.")
    value = node.this
    if is_json_typed(value) and not node.args.get("to_json"):
        return fill("CAST(__j AS VARCHAR)", j=value)
    if node.args.get("to_json"):
        if is_json_typed(value):
            return _json(fill("CAST(__j AS JSON)", j=value))
        text = _bigquery_json_text(value, quote_wide_ints=False)
        return _json(exp.cast(text, exp.DataType.build("JSON")))
    return _bigquery_json_text(value, quote_wide_ints=True)


def rule_json_extract_array(node: exp.Expression) -> exp.Expression | None:
    """JSON_QUERY_ARRAY / JSON_EXTRACT_ARRAY: ARRAY<JSON> for JSON input, ARRAY<STRING> of JSON
    texts for STRING input; a JSON null element is JSON `null` (text 'null'), not SQL NULL as
    in DuckDB's cast to JSON[]; a value that is not an array gives NULL."""
    if not isinstance(node, exp.JSONExtractArray) or node.meta.get("pulse_rule"):
        return None
    node.meta["pulse_rule"] = True
    path = node.expression
    extracted = exp.JSONExtract(this=node.this.copy(), expression=path.copy()) if path is not None else node.this.copy()
    elements = fill(
        "CASE WHEN JSON_TYPE(__e) = 'ARRAY' THEN LIST_TRANSFORM(RANGE(CAST(JSON_ARRAY_LENGTH(__e) AS BIGINT)), "
        "pulse_i -> JSON_EXTRACT(__e, '$[' || pulse_i || ']')) END",
        e=extracted,
    )
    if is_json_typed(node.this):
        return _json(elements)
    return fill("LIST_TRANSFORM(__l, pulse_x -> CAST(pulse_x AS VARCHAR))", l=elements)


def rule_json_object_array_sizes(node: exp.Expression) -> exp.Expression | None:
    """JSON_OBJECT([keys], [values]) with arrays of different lengths raises in BigQuery;
    sqlglot's parser zips them, dropping the extra items (marked by `dialect`)."""
    if isinstance(node, exp.JSONObject) and node.meta.get(JSON_OBJECT_SIZE_MISMATCH):
        raise fail(node, "JSON_OBJECT with key and value arrays of different lengths",
                   "BigQuery raises an error for it",
                   "Give JSON_OBJECT as many keys as values.")
    return None


def rule_json_path_prefix(node: exp.Expression) -> exp.Expression | None:
    """A JSONPath must start with '$' in BigQuery (no 'lax'/'strict' mode prefix); DuckDB accepts more."""
    if isinstance(node, (exp.JSONExtract, exp.JSONExtractScalar, exp.JSONExtractArray)):
        path = node.expression
        if isinstance(path, exp.Literal) and path.is_string and not path.name.lstrip().startswith("$"):
            raise fail(node, f"JSONPath '{path.name}'", "BigQuery requires a JSONPath starting with '$'")
    return None


_JSON_INT64_ERROR = "INT64(JSON): the JSON value is not an integer number (BigQuery raises this error)"


def rule_json_int64(node: exp.Expression) -> exp.Expression | None:
    """INT64(json) accepts only a JSON number without fractional part (BigQuery raises for a
    string, a bool or 10.1); DuckDB's cast converts and rounds them."""
    if not isinstance(node, exp.Int64) or node.meta.get("pulse_rule"):
        return None
    node.meta["pulse_rule"] = True
    raise_ = raise_text(_JSON_INT64_ERROR, "__j")
    return fill(
        "CASE WHEN JSON_TYPE(__j) IN ('NULL') OR __j IS NULL THEN NULL "
        "WHEN JSON_TYPE(__j) IN ('BIGINT', 'UBIGINT') THEN CAST(__j AS BIGINT) "
        "WHEN JSON_TYPE(__j) = 'DOUBLE' AND CAST(__j AS DOUBLE) = TRUNC(CAST(__j AS DOUBLE)) "
        f"THEN CAST(CAST(__j AS DOUBLE) AS BIGINT) ELSE {raise_} END",
        j=node.this,
    )


def rule_json_object_duplicate_keys(node: exp.Expression) -> exp.Expression | None:
    """JSON_OBJECT keeps the first of repeated keys in BigQuery; DuckDB writes every pair.
    Repeated string-literal keys are dropped here; computed keys that collide when the query
    runs are a known difference (docs/translation.md)."""
    if not isinstance(node, exp.JSONObject):
        return None
    seen: set[str] = set()
    kept: list[exp.Expression] = []
    for pair in node.expressions:
        key = pair.this if isinstance(pair, exp.JSONKeyValue) else None
        if isinstance(key, exp.Literal) and key.is_string:
            if key.name in seen:
                continue
            seen.add(key.name)
        kept.append(pair)
    if len(kept) != len(node.expressions):
        node.set("expressions", kept)
    return None


def rule_string_of_json(node: exp.Expression) -> exp.Expression | None:
    """STRING(json) is the JSON string's text in BigQuery (an error for other JSON values);
    the translator read every STRING(x) as a TIMESTAMP. Applied when x is evidently JSON."""
    if not isinstance(node, exp.String) or node.args.get("zone") is not None or not is_json_typed(node.this):
        return None
    raise_ = raise_text("STRING(JSON): the JSON value is not a string (BigQuery raises this error)", "__j")
    return fill(f"CASE WHEN __j IS NULL OR JSON_TYPE(__j) = 'NULL' THEN NULL WHEN JSON_TYPE(__j) = 'VARCHAR' "
                f"THEN JSON_EXTRACT_STRING(__j, '$') ELSE {raise_} END", j=node.this)


RULES: dict[type, tuple[Rule, ...]] = {
    exp.JSONObject: (rule_json_object_array_sizes,),
    exp.JSONExtractArray: (rule_json_extract_array,),
    exp.JSONExtract: (rule_json_extract,),
    exp.JSONType: (rule_json_type,),
    exp.JSONFormat: (rule_to_json,),
}
