"""Time-zone arguments of FORMAT_TIMESTAMP and TIMESTAMP_TRUNC.

sqlglot drops FORMAT_TIMESTAMP's zone argument (the timestamp is printed in UTC) and
truncates TIMESTAMP_TRUNC(.., HOUR, zone) by re-reading a local wall-clock time, which
picks the wrong instant in the repeated hour of a daylight-saving change. BigQuery
computes the civil time in the zone; for parts below DAY it subtracts the civil minutes,
seconds and sub-seconds from the instant, for DAY and above it takes the start of the
civil period in the zone.
"""

from __future__ import annotations

import re

from sqlglot import exp

from pulse_local.translate.functions import macro_call
from pulse_local.translate.rules import (
    Rule,
    as_date,
    fail,
    fill,
    is_timestamp_like,
    known_type,
    mark,
    unit_of,
)

_UTC_NAMES = {"UTC", "ETC/UTC", "Z", "+00", "+00:00", "GMT"}

_SUBDAY_MICROS = {
    "MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000,
    "MINUTE": 60_000_000, "HOUR": 3_600_000_000,
}


def _instant(value: exp.Expression) -> exp.Expression:
    return exp.cast(value, exp.DataType.build("TIMESTAMPTZ"))


def _is_utc(zone: exp.Expression | None) -> bool:
    return zone is None or (isinstance(zone, exp.Literal) and zone.is_string and zone.name.upper() in _UTC_NAMES)


_OFFSET_US = "(EPOCH_US(TIMEZONE(__z, {i})) - EPOCH_US({i}))"
_EARLY = "CAST(__c AS TIMESTAMPTZ) - TO_MICROSECONDS(" + _OFFSET_US.format(i="CAST(__c AS TIMESTAMPTZ) - INTERVAL 1 DAY") + ")"
_LATE = "CAST(__c AS TIMESTAMPTZ) - TO_MICROSECONDS(" + _OFFSET_US.format(i="CAST(__c AS TIMESTAMPTZ) + INTERVAL 1 DAY") + ")"
_CIVIL_TO_INSTANT = (
    f"CASE WHEN TIMEZONE(__z, {_EARLY}) = __c THEN {_EARLY} "
    f"WHEN TIMEZONE(__z, {_LATE}) = __c THEN {_LATE} ELSE {_EARLY} END"
)


def civil_to_instant(civil: exp.Expression, zone: exp.Expression) -> exp.Expression:
    """The instant of civil time `civil` (DuckDB TIMESTAMP) in `zone`, as ZetaSQL picks it.

    ZetaSQL takes absl's `pre` instant: a repeated civil time (the hour after clocks go
    back) is read with the offset before the change (the earlier instant), a skipped one
    (the hour clocks jump over) too. DuckDB picks the later instant for repeated times.
    The offsets one day before and after bound the change (zones change at most once a
    day): the early offset is used unless only the late one reproduces the civil time.
    """
    return fill(_CIVIL_TO_INSTANT, c=exp.cast(civil, exp.DataType.build("TIMESTAMP")), z=zone)


def rule_timestamp_from_civil(node: exp.Expression) -> exp.Expression | None:
    """TIMESTAMP(string_or_datetime, zone): the civil time read in `zone` (repeated hour: earlier)."""
    if not isinstance(node, exp.Timestamp) or _is_utc(node.args.get("zone")):
        return None
    value = node.this
    if isinstance(value, exp.Literal) and value.is_string and re.search(r"([+-]\d\d(:?\d\d)?|Z|UTC)$", value.name.strip()):
        return None  # the string carries its own offset
    return civil_to_instant(value, node.args["zone"])


def rule_parse_timestamp_zone(node: exp.Expression) -> exp.Expression | None:
    """PARSE_TIMESTAMP(fmt, s, zone): sqlglot dropped the zone (the text was read as UTC)."""
    if not isinstance(node, exp.StrToTime) or _is_utc(node.args.get("zone")):
        return None
    fmt = node.args.get("format")
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise fail(node, "PARSE_TIMESTAMP with a non-literal format and a time zone",
                   "whether the text carries its own offset cannot be checked", "Use a string literal as the format.")
    zone = node.args["zone"]
    civil = node.copy()
    civil.set("zone", None)
    if re.search(r"%E?[zZ]|%Ez", fmt.name):
        return exp.cast(civil, exp.DataType.build("TIMESTAMPTZ"))  # the text's own offset wins
    return civil_to_instant(civil, zone)


_STRING_IN_ZONE = (
    "STRFTIME(TIMEZONE(__z, __t), '%Y-%m-%d %H:%M:%S') "
    "|| CASE WHEN ((EPOCH_US(__t) % 1000000) + 1000000) % 1000000 = 0 THEN '' "
    "WHEN ((EPOCH_US(__t) % 1000000) + 1000000) % 1000 = 0 "
    "THEN '.' || LPAD(CAST(((EPOCH_US(__t) % 1000000) + 1000000) % 1000000 // 1000 AS VARCHAR), 3, '0') "
    "ELSE '.' || LPAD(CAST(((EPOCH_US(__t) % 1000000) + 1000000) % 1000000 AS VARCHAR), 6, '0') END "
    "|| CASE WHEN EPOCH_US(TIMEZONE(__z, __t)) - EPOCH_US(__t) < 0 THEN '-' ELSE '+' END "
    "|| LPAD(CAST(ABS(EPOCH_US(TIMEZONE(__z, __t)) - EPOCH_US(__t)) // 3600000000 AS VARCHAR), 2, '0') "
    "|| CASE WHEN (ABS(EPOCH_US(TIMEZONE(__z, __t)) - EPOCH_US(__t)) // 60000000) % 60 = 0 THEN '' "
    "ELSE ':' || LPAD(CAST((ABS(EPOCH_US(TIMEZONE(__z, __t)) - EPOCH_US(__t)) // 60000000) % 60 AS VARCHAR), 2, '0') END"
)


def rule_string_in_zone(node: exp.Expression) -> exp.Expression | None:
    """STRING(ts, zone): civil time in `zone`, fraction in 0/3/6 digits, offset `-07` / `+05:30`."""
    if not isinstance(node, exp.String) or _is_utc(node.args.get("zone")):
        return None
    return exp.cast(fill(_STRING_IN_ZONE, t=_instant(node.this), z=node.args["zone"]), exp.DataType.build("VARCHAR"))


def rule_timestamp_trunc_zone(node: exp.Expression) -> exp.Expression | None:
    """TIMESTAMP_TRUNC(ts, part, zone) with BigQuery's civil-time semantics."""
    if not isinstance(node, exp.TimestampTrunc):
        return None
    zone = node.args.get("zone")
    if zone is None:
        return None
    if _is_utc(zone):
        if zone is not None:
            node.set("zone", None)
        return None
    part, weekday = unit_of(node.args.get("unit"))
    ts = _instant(node.this)
    local = fill("TIMEZONE(__z, __t)", z=zone, t=ts)
    if part in _SUBDAY_MICROS:
        unit = _SUBDAY_MICROS[part]
        return fill(
            f"__t - TO_MICROSECONDS(((EPOCH_US(__l) % {unit}) + {unit}) % {unit})", t=ts, l=local,
        )
    if part == "WEEK":
        start = fill(
            f"DATE_TRUNC('day', __l) - TO_DAYS(CAST((DAYOFWEEK(__l) - {weekday} + 7) % 7 AS INTEGER))",
            l=local,
        )
    elif part in {"DAY", "MONTH", "QUARTER", "YEAR", "ISOWEEK", "ISOYEAR"}:
        duck_part = {"ISOWEEK": "week"}.get(part, part.lower())
        start = fill(f"DATE_TRUNC('{duck_part}', __l)", l=local)
    else:
        raise fail(node, f"TIMESTAMP_TRUNC(..., {part}, zone)", "this part is not a BigQuery TIMESTAMP_TRUNC part")
    return civil_to_instant(start, zone)


_FORMAT_TOKEN = re.compile(r"%%|%E?[zZ]|%[^%]|[^%]+|%$")


def rule_format_timestamp_zone(node: exp.Expression) -> exp.Expression | None:
    """FORMAT_TIMESTAMP(fmt, ts, zone) prints the civil time in `zone`; %z is its offset."""
    if not isinstance(node, exp.TimeToStr) or node.meta.get("pulse_zone"):
        return None
    name = str(node.meta.get("bigquery_name", "")).upper() if node._meta else ""
    zone = node.args.get("zone")
    fmt = node.args.get("format")
    has_offset_element = isinstance(fmt, exp.Literal) and re.search(r"(?<!%)(%%)*%E?[zZ]", fmt.name or "")
    if zone is None and not (name == "FORMAT_TIMESTAMP" and has_offset_element):
        return None
    if zone is None:
        zone = exp.Literal.string("UTC")
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        if has_offset_element or not _is_utc(zone):
            raise fail(node, "FORMAT_TIMESTAMP with a non-literal format and a time zone",
                       "the offset elements cannot be checked", "Use a string literal as the format.")
        return None
    value = node.this
    if isinstance(value, exp.TsOrDsToTimestamp):
        value = value.this
    ts = _instant(value)
    local = fill("TIMEZONE(__z, __t)", z=zone, t=ts)
    pieces: list[exp.Expression] = []
    literal = ""
    for token in _FORMAT_TOKEN.findall(fmt.name):
        if token in {"%z", "%Ez", "%Z", "%EZ"}:
            if literal:
                pieces.append(_strftime(local, literal))
                literal = ""
            if token.endswith("Z"):
                if not _is_utc(zone):
                    raise fail(node, "FORMAT_TIMESTAMP element %Z with a time zone other than UTC",
                               "BigQuery prints its own zone names", "Use %z (the numeric offset) instead.")
                pieces.append(exp.Literal.string("UTC"))
            else:
                pieces.append(_offset(ts, local, colon=token == "%Ez"))
        else:
            literal += token
    if literal or not pieces:
        pieces.append(_strftime(local, literal))
    result = pieces[0] if len(pieces) == 1 else exp.DPipe(this=pieces[0], expression=pieces[1], safe=True)
    for piece in pieces[2:]:
        result = exp.DPipe(this=result, expression=piece, safe=True)
    return result


def _strftime(local: exp.Expression, fmt: str) -> exp.Expression:
    """A TimeToStr on the local wall clock; sqlglot maps the format elements to DuckDB's."""
    fmt = fmt.replace("%R", "%H:%M").replace("%T", "%H:%M:%S").replace("%D", "%m/%d/%y")
    out = exp.TimeToStr(this=local.copy(), format=exp.Literal.string(fmt))
    out.meta["pulse_zone"] = True
    out.meta["pulse_rule"] = True
    return out


def _offset(ts: exp.Expression, local: exp.Expression, *, colon: bool) -> exp.Expression:
    sep = ":" if colon else ""
    return fill(
        "PRINTF('%s%02d" + sep + "%02d', CASE WHEN (EPOCH_US(__l) - EPOCH_US(__t)) < 0 THEN '-' ELSE '+' END, "
        "ABS(EPOCH_US(__l) - EPOCH_US(__t)) // 3600000000, "
        "(ABS(EPOCH_US(__l) - EPOCH_US(__t)) // 60000000) % 60)",
        l=local, t=ts,
    )


def _bindable_column_value(value: exp.Expression) -> bool:
    """True when DuckDB knows `value`'s type when it picks a macro overload: no aggregate,
    window function or subquery inside, and not a literal (whose type the rules already know)."""
    if isinstance(value, (exp.Literal, exp.Null)) or known_type(value) is not None:
        return False
    return not any(isinstance(n, (exp.AggFunc, exp.Window, exp.Subquery, exp.Select)) for n in value.walk())


def rule_date_or_datetime(node: exp.Expression) -> exp.Expression | None:
    """DATE_TRUNC / DATE_ADD / DATE_SUB of a DATETIME return a DATETIME in BigQuery; the
    translator returns a DATE when it cannot see the argument's type. For a column (or
    another expression DuckDB types when it binds a macro) `bq_date_pick` (functions.py)
    chooses the DATE form or the DATETIME form by the argument's DuckDB type."""
    if not isinstance(node, (exp.DateTrunc, exp.DateAdd, exp.DateSub)) or node.meta.get("pulse_rule"):
        return None
    value = node.this
    if value is None or not _bindable_column_value(value):
        return None
    date_rule = rule_date_trunc if isinstance(node, exp.DateTrunc) else rule_date_add
    date_form = date_rule(node.copy()) or node.copy()
    node.meta["pulse_rule"] = True
    as_datetime = exp.cast(value.copy(), exp.DataType.build("TIMESTAMP"))
    if isinstance(node, exp.DateTrunc):
        civil = exp.DatetimeTrunc(this=as_datetime, unit=node.args.get("unit"))
        datetime_form = rule_date_trunc(civil) or civil
    else:
        kind = exp.DatetimeAdd if isinstance(node, exp.DateAdd) else exp.DatetimeSub
        datetime_form = kind(this=as_datetime, expression=node.expression.copy(), unit=node.args.get("unit"))
    datetime_form.meta["pulse_rule"] = True
    return exp.Anonymous(this=macro_call("bq_date_pick"), expressions=[as_date(value.copy()), date_form, datetime_form])


def rule_iso_year_short(node: exp.Expression) -> exp.Expression | None:
    """%g (ISO year without century) in a FORMAT_/PARSE_ pattern: DuckDB reads %g as
    milliseconds, so the text would be wrong; %G (the full ISO year) is the same in both."""
    if not isinstance(node, (exp.TimeToStr, exp.StrToTime, exp.StrToDate)):
        return None
    fmt = node.args.get("format")
    if isinstance(fmt, exp.Literal) and fmt.is_string and re.search(r"(?<!%)(?:%%)*%g", fmt.name):
        raise fail(node, "format element %g", "DuckDB's %g is milliseconds, not the 2-digit ISO year",
                   "Use %G (the 4-digit ISO year) and SUBSTR, or FORMAT the year yourself.")
    return None


def rule_format_date_of_datetime(node: exp.Expression) -> exp.Expression | None:
    """FORMAT_DATE(fmt, datetime_column) prints the DATETIME's time too (ZetaSQL); the
    translator read the argument as a DATE (00:00:00). `bq_date_pick` chooses by the column's type."""
    if not isinstance(node, exp.TimeToStr) or node.meta.get("pulse_rule") or not isinstance(node.this, exp.TsOrDsToDate):
        return None
    value, fmt = node.this.this, node.args.get("format")
    if value is None or not isinstance(fmt, exp.Literal) or not _bindable_column_value(value):
        return None
    text = fmt.name.replace("%R", "%H:%M").replace("%T", "%H:%M:%S").replace("%D", "%m/%d/%y")
    node.set("format", exp.Literal.string(text))
    date_form = node.copy()
    node.meta["pulse_rule"] = True
    datetime_form = exp.Anonymous(this="STRFTIME", expressions=[exp.cast(value.copy(), exp.DataType.build("TIMESTAMP")),
                                                                exp.Literal.string(text)])
    return exp.Anonymous(this=macro_call("bq_date_pick"), expressions=[value.copy(), date_form, datetime_form])


def rule_date_trunc(node: exp.Expression) -> exp.Expression | None:
    """DATE_TRUNC(d, part) returns DATE in BigQuery; WEEK(<day>) starts weeks on <day>."""
    if not isinstance(node, (exp.DateTrunc, exp.TimestampTrunc, exp.DatetimeTrunc)):
        return None
    if node.meta.get("pulse_rule"):
        return None
    part, weekday = unit_of(node.args.get("unit"))
    value = node.this
    date_result = isinstance(node, exp.DateTrunc) and not is_timestamp_like(value)
    if date_result:
        value = as_date(value)
        if part == "WEEK":
            return fill(
                f"CAST(__d AS DATE) - CAST((DAYOFWEEK(__d) - {weekday} + 7) % 7 AS INTEGER)",
                d=value,
            )
        duck_part = {"ISOWEEK": "week", "ISOYEAR": "isoyear"}.get(part, part.lower())
        return fill(f"CAST(DATE_TRUNC('{duck_part}', __d) AS DATE)", d=value)
    if isinstance(value, exp.Literal) and value.is_string:
        target = "TIMESTAMP" if isinstance(node, exp.DatetimeTrunc) else "TIMESTAMPTZ"
        value = exp.cast(value, exp.DataType.build(target))
        node.set("this", value)
    if part == "WEEK":
        return fill(
            f"DATE_TRUNC('day', __d) - TO_DAYS(CAST((DAYOFWEEK(__d) - {weekday} + 7) % 7 AS INTEGER))",
            d=value,
        )
    if part in {"ISOWEEK", "ISOYEAR"}:
        duck_part = {"ISOWEEK": "week", "ISOYEAR": "isoyear"}[part]
        return fill(f"DATE_TRUNC('{duck_part}', __d)", d=value)
    return None


def rule_date_add(node: exp.Expression) -> exp.Expression | None:
    """DATE_ADD / DATE_SUB return DATE (DuckDB's DATE + INTERVAL is a TIMESTAMP)."""
    if not isinstance(node, (exp.DateAdd, exp.DateSub)) or is_timestamp_like(node.this):
        return None
    node.set("this", as_date(node.this))
    return exp.cast(node, exp.DataType.build("DATE"))


def rule_date_diff(node: exp.Expression) -> exp.Expression | None:
    """DATE_DIFF counts part boundaries; WEEK(<day>), ISOWEEK and ISOYEAR need help."""
    if not isinstance(node, exp.DateDiff):
        return None
    part, weekday = unit_of(node.args.get("unit"))
    a, b = as_date(node.this), as_date(node.expression)
    if part == "WEEK":
        start = "CAST(__{x} AS DATE) - CAST((DAYOFWEEK(__{x}) - " + str(weekday) + " + 7) % 7 AS INTEGER)"
        return fill(
            f"CAST(DATE_DIFF('day', {start.format(x='b')}, {start.format(x='a')}) // 7 AS BIGINT)",
            a=a, b=b,
        )
    if part == "ISOWEEK":
        return fill(
            "CAST(DATE_DIFF('day', CAST(DATE_TRUNC('week', __b) AS DATE), "
            "CAST(DATE_TRUNC('week', __a) AS DATE)) // 7 AS BIGINT)",
            a=a, b=b,
        )
    if part == "ISOYEAR":
        return fill("CAST(ISOYEAR(__a) - ISOYEAR(__b) AS BIGINT)", a=a, b=b)
    node.set("this", a)
    node.set("expression", b)
    return None


def rule_timestamp_diff(node: exp.Expression) -> exp.Expression | None:
    """TIMESTAMP_DIFF counts whole elapsed units (DuckDB's date_diff counts boundaries)."""
    if not isinstance(node, exp.TimestampDiff):
        return None
    part, _ = unit_of(node.args.get("unit"))
    if part not in {"MICROSECOND", "MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY"}:
        raise fail(node, f"TIMESTAMP_DIFF(..., {part})", "BigQuery only accepts parts up to DAY here")
    return fill(f"DATE_SUB('{part.lower()}', __b, __a)", a=node.this, b=node.expression)


def rule_extract(node: exp.Expression) -> exp.Expression | None:
    """EXTRACT parts whose numbering differs: DAYOFWEEK (Sunday = 1), WEEK, ISOWEEK, DATE."""
    if not isinstance(node, exp.Extract):
        return None
    part, weekday = unit_of(node.this)
    value = node.expression
    if known_type(value) == "TIMESTAMPTZ":
        # The session runs in UTC (like BigQuery), so the wall-clock parts are the UTC ones.
        value = exp.cast(value, exp.DataType.build("TIMESTAMP"))
        node.set("expression", value)
    if part == "DAYOFWEEK":
        return fill("CAST(DAYOFWEEK(__d) + 1 AS BIGINT)", d=value)
    if part == "WEEK":
        return fill(
            f"CAST((DAYOFYEAR(__d) - CAST((DAYOFWEEK(__d) - {weekday} + 7) % 7 AS INTEGER) + 6)"
            " // 7 AS BIGINT)",
            d=value,
        )
    if part == "ISOWEEK":
        return fill("CAST(WEEKOFYEAR(__d) AS BIGINT)", d=value)
    if part == "ISOYEAR":
        return fill("CAST(ISOYEAR(__d) AS BIGINT)", d=value)
    if part == "DATE":
        return exp.cast(value, exp.DataType.build("DATE"))
    return mark(node) if value is not node.expression else None


def rule_date_from_unix_date(node: exp.Expression) -> exp.Expression | None:
    """DATE_FROM_UNIX_DATE returns a DATE."""
    if isinstance(node, exp.DateFromUnixDate):
        return fill("CAST(DATE '1970-01-01' + CAST(__n AS INTEGER) AS DATE)", n=node.this)
    return None


_TIMESTAMP_RESULT_FUNCTIONS = {
    "PARSE_TIMESTAMP", "TIMESTAMP_MILLIS", "TIMESTAMP_MICROS", "TIMESTAMP_SECONDS",
}


def rule_timestamp_result(node: exp.Expression) -> exp.Expression | None:
    """Functions returning TIMESTAMP (an instant) where DuckDB builds a naive TIMESTAMP."""
    name = str(node.meta.get("bigquery_name", "")).upper() if node._meta else None
    if isinstance(node, exp.GenerateTimestampArray):
        return exp.cast(node, exp.DataType.build("TIMESTAMPTZ[]", dialect="duckdb"))
    if isinstance(node, (exp.StrToTime, exp.UnixToTime)) and name in _TIMESTAMP_RESULT_FUNCTIONS:
        return exp.cast(node, exp.DataType.build("TIMESTAMPTZ"))
    return None


def rule_time_functions(node: exp.Expression) -> exp.Expression | None:
    """TIME_TRUNC and FORMAT_TIME: DuckDB only truncates/formats timestamps."""
    if isinstance(node, exp.TimeTrunc):
        part, _ = unit_of(node.args.get("unit"))
        return fill(f"CAST(DATE_TRUNC('{part.lower()}', DATE '1970-01-01' + __t) AS TIME)", t=node.this)
    if isinstance(node, exp.TimeToStr):
        fmt = node.args.get("format")
        if isinstance(fmt, exp.Literal) and re.search(r"%[RTD]", fmt.name):
            text = fmt.name.replace("%R", "%H:%M").replace("%T", "%H:%M:%S").replace("%D", "%m/%d/%y")
            node.set("format", exp.Literal.string(text))
    if isinstance(node, exp.TimeToStr) and node._meta and str(node.meta.get("bigquery_name", "")).upper() == "FORMAT_TIME":
        node.set("this", fill("DATE '1970-01-01' + CAST(__t AS TIME)", t=node.this))
        return mark(node)
    return None


def rule_timestamp_string(node: exp.Expression) -> exp.Expression | None:
    """STRING(ts[, zone]) / CAST(ts AS STRING) print the offset: '2008-12-25 15:30:00+00'."""
    if isinstance(node, exp.String) and node.args.get("zone") is None or (
        isinstance(node, exp.String) and isinstance(node.args.get("zone"), exp.Literal)
        and node.args["zone"].name.upper() in {"UTC", "+00", "Z"}
    ):
        return fill("STRFTIME(CAST(__t AS TIMESTAMPTZ), '%Y-%m-%d %H:%M:%S+00')", t=node.this)
    return None


def rule_extract_subsecond(node: exp.Expression) -> exp.Expression | None:
    """EXTRACT(MILLISECOND|MICROSECOND ...) is the part below the second; DuckDB counts the seconds too."""
    if not isinstance(node, exp.Extract):
        return None
    part, _ = unit_of(node.this)
    modulus = {"MILLISECOND": 1000, "MICROSECOND": 1_000_000}.get(part)
    if modulus is None:
        return None
    inner = rule_extract(node) or node
    return fill(f"CAST(__e % {modulus} AS BIGINT)", e=inner)


RULES: dict[type, tuple[Rule, ...]] = {
    exp.DateTrunc: (rule_date_or_datetime,),
    exp.DateAdd: (rule_date_or_datetime,),
    exp.DateSub: (rule_date_or_datetime,),
    exp.String: (rule_string_in_zone,),
    exp.StrToTime: (rule_iso_year_short, rule_parse_timestamp_zone),
    exp.Timestamp: (rule_timestamp_from_civil,),
    exp.TimestampTrunc: (rule_timestamp_trunc_zone,),
    exp.TimeToStr: (rule_iso_year_short, rule_format_date_of_datetime, rule_format_timestamp_zone),
    exp.StrToDate: (rule_iso_year_short,),
}
