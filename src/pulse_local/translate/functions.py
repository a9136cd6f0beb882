"""BigQuery functions DuckDB lacks, implemented exactly and registered on a DuckDB connection.

The translator rewrites calls such as `FARM_FINGERPRINT(s)` into calls of the helpers
below (`bq_farm_fingerprint(s)`); `register(con)` makes them exist on a connection.
`pulse_local.translate.session.configure` calls it, and both the dbt plugin and the
golden runner use that, so every DuckDB session that runs translated SQL has them.

- `bq_farm_fingerprint`: FarmHash Fingerprint64 (farmhashna::Hash64) of the UTF-8
  bytes, as a signed INT64 like BigQuery's FARM_FINGERPRINT.
- `bq_normalize` / `bq_normalize_and_casefold`: Unicode normalisation (NFC, NFKC, NFD,
  NFKD), then full case folding for the latter (ICU's default folding, as ZetaSQL).
- `bq_soundex`: BigQuery's SOUNDEX (non-Latin characters ignored; '' when none left).
- `bq_json_keys`: JSON_KEYS(json[, max_depth]): the sorted, distinct key paths.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from pulse_local.translate.bytes_helpers import (
    bytes_ascii,
    bytes_lower,
    bytes_to_latin1,
    bytes_upper,
    latin1_to_bytes,
)

_MASK = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F


# --------------------------------------------------------------------------- FarmHash


def _fetch64(data: bytes, i: int) -> int:
    return int.from_bytes(data[i:i + 8], "little")


def _fetch32(data: bytes, i: int) -> int:
    return int.from_bytes(data[i:i + 4], "little")


def _rotate(value: int, shift: int) -> int:
    return value if shift == 0 else ((value >> shift) | (value << (64 - shift))) & _MASK


def _shift_mix(value: int) -> int:
    return value ^ (value >> 47)


def _hash_len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK
    b ^= b >> 47
    return (b * mul) & _MASK


def _hash_len0to16(data: bytes) -> int:
    length = len(data)
    if length >= 8:
        mul = _K2 + length * 2
        a = (_fetch64(data, 0) + _K2) & _MASK
        b = _fetch64(data, length - 8)
        c = (_rotate(b, 37) * mul + a) & _MASK
        d = ((_rotate(a, 25) + b) * mul) & _MASK
        return _hash_len16(c, d, mul)
    if length >= 4:
        mul = _K2 + length * 2
        a = _fetch32(data, 0)
        return _hash_len16((length + (a << 3)) & _MASK, _fetch32(data, length - 4), mul)
    if length > 0:
        a, b, c = data[0], data[length >> 1], data[length - 1]
        y = (a + (b << 8)) & 0xFFFFFFFF
        z = (length + (c << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * _K2) ^ (z * _K0)) & _MASK) * _K2) & _MASK
    return _K2


def _hash_len17to32(data: bytes) -> int:
    length = len(data)
    mul = _K2 + length * 2
    a = (_fetch64(data, 0) * _K1) & _MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, length - 8) * mul) & _MASK
    d = (_fetch64(data, length - 16) * _K2) & _MASK
    return _hash_len16(
        (_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK,
        (a + _rotate((b + _K2) & _MASK, 18) + c) & _MASK,
        mul,
    )


def _hash_len33to64(data: bytes) -> int:
    length = len(data)
    mul = _K2 + length * 2
    a = (_fetch64(data, 0) * _K2) & _MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, length - 8) * mul) & _MASK
    d = (_fetch64(data, length - 16) * _K2) & _MASK
    y = (_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK
    z = _hash_len16(y, (a + _rotate((b + _K2) & _MASK, 18) + c) & _MASK, mul)
    e = (_fetch64(data, 16) * mul) & _MASK
    f = _fetch64(data, 24)
    g = ((y + _fetch64(data, length - 32)) * mul) & _MASK
    h = ((z + _fetch64(data, length - 24)) * mul) & _MASK
    return _hash_len16(
        (_rotate((e + f) & _MASK, 43) + _rotate(g, 30) + h) & _MASK,
        (e + _rotate((f + a) & _MASK, 18) + g) & _MASK,
        mul,
    )


def _weak_hash_len32_with_seeds(data: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = (_fetch64(data, i + k) for k in (0, 8, 16, 24))
    a = (a + w) & _MASK
    b = _rotate((b + a + z) & _MASK, 21)
    c = a
    a = (a + x + y) & _MASK
    b = (b + _rotate(a, 44)) & _MASK
    return (a + z) & _MASK, (b + c) & _MASK


def fingerprint64(data: bytes) -> int:
    """FarmHash Fingerprint64 of `data` as an unsigned 64-bit integer."""
    length = len(data)
    if length <= 16:
        return _hash_len0to16(data)
    if length <= 32:
        return _hash_len17to32(data)
    if length <= 64:
        return _hash_len33to64(data)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _MASK
    z = (_shift_mix((y * _K2 + 113) & _MASK) * _K2) & _MASK
    v = (0, 0)
    w = (0, 0)
    x = (x * _K2 + _fetch64(data, 0)) & _MASK
    end = ((length - 1) // 64) * 64
    last64 = end + ((length - 1) & 63) - 63
    s = 0
    while True:
        x = (_rotate((x + y + v[0] + _fetch64(data, s + 8)) & _MASK, 37) * _K1) & _MASK
        y = (_rotate((y + v[1] + _fetch64(data, s + 48)) & _MASK, 42) * _K1) & _MASK
        x ^= w[1]
        y = (y + v[0] + _fetch64(data, s + 40)) & _MASK
        z = (_rotate((z + w[0]) & _MASK, 33) * _K1) & _MASK
        v = _weak_hash_len32_with_seeds(data, s, (v[1] * _K1) & _MASK, (x + w[0]) & _MASK)
        w = _weak_hash_len32_with_seeds(data, s + 32, (z + w[1]) & _MASK, (y + _fetch64(data, s + 16)) & _MASK)
        z, x = x, z
        s += 64
        if s == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    s = last64
    w0 = (w[0] + ((length - 1) & 63)) & _MASK
    v0 = (v[0] + w0) & _MASK
    w0 = (w0 + v0) & _MASK
    v, w = (v0, v[1]), (w0, w[1])
    x = (_rotate((x + y + v[0] + _fetch64(data, s + 8)) & _MASK, 37) * mul) & _MASK
    y = (_rotate((y + v[1] + _fetch64(data, s + 48)) & _MASK, 42) * mul) & _MASK
    x ^= (w[1] * 9) & _MASK
    y = (y + v[0] * 9 + _fetch64(data, s + 40)) & _MASK
    z = (_rotate((z + w[0]) & _MASK, 33) * mul) & _MASK
    v = _weak_hash_len32_with_seeds(data, s, (v[1] * mul) & _MASK, (x + w[0]) & _MASK)
    w = _weak_hash_len32_with_seeds(data, s + 32, (z + w[1]) & _MASK, (y + _fetch64(data, s + 16)) & _MASK)
    z, x = x, z
    return _hash_len16(
        (_hash_len16(v[0], w[0], mul) + _shift_mix(y) * _K0 + z) & _MASK,
        (_hash_len16(v[1], w[1], mul) + x) & _MASK,
        mul,
    )


def farm_fingerprint(value: str | bytes) -> int:
    """BigQuery FARM_FINGERPRINT: Fingerprint64 of the UTF-8 bytes, as a signed INT64."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    result = fingerprint64(data)
    return result - (1 << 64) if result >= 1 << 63 else result


# --------------------------------------------------------------------------- strings


_NORMAL_FORMS = frozenset({"NFC", "NFKC", "NFD", "NFKD"})


def normalize(value: str, form: str) -> str:
    """BigQuery NORMALIZE(value, form)."""
    form = form.upper()
    if form not in _NORMAL_FORMS:
        raise ValueError(f"NORMALIZE: unknown normalization mode {form!r}; use NFC, NFKC, NFD or NFKD")
    return unicodedata.normalize(form, value)  # type: ignore[arg-type]


def normalize_and_casefold(value: str, form: str) -> str:
    """BigQuery NORMALIZE_AND_CASEFOLD: normalise, then full Unicode case folding."""
    return normalize(value, form).casefold()


_SOUNDEX_CODES = {
    **dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"), **dict.fromkeys("DT", "3"),
    "L": "4", **dict.fromkeys("MN", "5"), "R": "6",
    **dict.fromkeys("AEIOUY", "0"), **dict.fromkeys("HW", ""),
}


def soundex(value: str) -> str:
    """BigQuery SOUNDEX: a letter and three digits; non-Latin characters are ignored.

    American Soundex: letters coding the same as the previous kept letter are dropped,
    H and W do not separate equal codes, vowels do.
    """
    letters = [c for c in value.upper() if "A" <= c <= "Z"]
    if not letters:
        return ""
    first = letters[0]
    digits: list[str] = []
    previous = _SOUNDEX_CODES[first]
    for char in letters[1:]:
        code = _SOUNDEX_CODES[char]
        if code == "":
            continue  # H, W: transparent
        if code != "0" and code != previous:
            digits.append(code)
        previous = code
        if len(digits) == 3:
            break
    return first + "".join(digits).ljust(3, "0")


# --------------------------------------------------------------------------- JSON


def _key_paths(value: Any, prefix: str, depth: int, max_depth: int | None) -> Iterator[str]:
    if max_depth is not None and depth > max_depth:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{_quote_key(key)}" if prefix else _quote_key(key)
            yield path
            yield from _key_paths(child, path, depth + 1, max_depth)
    # Arrays are not entered: BigQuery's default mode ('strict') ignores keys inside arrays.


def _quote_key(key: str) -> str:
    plain = key.replace("_", "").isalnum() and key.isascii()
    return key if plain else json.dumps(key, ensure_ascii=False)


def json_keys(document: str, max_depth: int | None = None) -> list[str]:
    """BigQuery JSON_KEYS(json_expr[, max_depth]) in the default 'strict' mode.

    Distinct key paths (`a`, `a.b`), sorted; keys inside arrays are ignored.
    """
    if max_depth is not None and max_depth < 1:
        raise ValueError("JSON_KEYS: max_depth must be positive")
    parsed = json.loads(document)
    return sorted(set(_key_paths(parsed, "", 1, max_depth)))


def percentile_cont_numeric(values: list[Decimal | None], fraction: Decimal) -> Decimal | None:
    """BigQuery PERCENTILE_CONT of NUMERIC values with a NUMERIC percentile: exact linear
    interpolation between the closest ranks, rounded half away from zero to 9 digits
    (DuckDB interpolates in DOUBLE). NULL values are ignored; no value gives NULL."""
    if not Decimal(0) <= fraction <= Decimal(1):
        raise ValueError("PERCENTILE_CONT: the percentile must be between 0 and 1")
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    with localcontext() as context:
        context.prec = 100
        position = fraction * (len(ordered) - 1)
        index = int(position)
        low, high = ordered[index], ordered[min(index + 1, len(ordered) - 1)]
        exact = low + (high - low) * (position - index)
        return exact.quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- registration


@dataclass(frozen=True)
class Helper:
    """One helper function: its DuckDB name, Python implementation and signature."""

    name: str
    function: Callable[..., Any]
    parameters: tuple[str, ...]
    returns: str


HELPERS: tuple[Helper, ...] = (
    Helper("bq_farm_fingerprint", farm_fingerprint, ("VARCHAR",), "BIGINT"),
    Helper("bq_farm_fingerprint_bytes", farm_fingerprint, ("BLOB",), "BIGINT"),
    Helper("bq_normalize", normalize, ("VARCHAR", "VARCHAR"), "VARCHAR"),
    Helper("bq_normalize_and_casefold", normalize_and_casefold, ("VARCHAR", "VARCHAR"), "VARCHAR"),
    Helper("bq_soundex", soundex, ("VARCHAR",), "VARCHAR"),
    Helper("bq_json_keys", lambda document: json_keys(document), ("VARCHAR",), "VARCHAR[]"),
    Helper("bq_json_keys_depth", json_keys, ("VARCHAR", "BIGINT"), "VARCHAR[]"),
    Helper("bq_bytes_latin1", bytes_to_latin1, ("BLOB",), "VARCHAR"),
    Helper("bq_latin1_bytes", latin1_to_bytes, ("VARCHAR",), "BLOB"),
    Helper("bq_bytes_lower", bytes_lower, ("BLOB",), "BLOB"),
    Helper("bq_bytes_upper", bytes_upper, ("BLOB",), "BLOB"),
    Helper("bq_bytes_ascii", bytes_ascii, ("BLOB",), "BIGINT"),
    Helper("bq_percentile_cont_numeric", percentile_cont_numeric, ("DECIMAL(38, 9)[]", "DECIMAL(38, 9)"),
           "DECIMAL(38, 9)"),
)

# --------------------------------------------------------------------------- typed macros

#: DuckDB types that BigQuery's AVG turns into FLOAT64 (INT64, FLOAT64 and what DuckDB may
#: hold them as); a typed macro overload per type, so DuckDB picks it at bind time.
_FLOAT_AVERAGE_TYPES = (
    "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT",
    "UTINYINT", "DOUBLE", "FLOAT", "INTERVAL", "BOOLEAN", "VARCHAR",
)

#: A NUMERIC (DECIMAL(38, 9)) value as a whole number of 1e-9 units (exact, HUGEINT).
_NUMERIC_UNITS = "(CAST(TRUNC(x) AS HUGEINT) * 1000000000 + CAST((x - TRUNC(x)) * 1000000000 AS HUGEINT))"

#: t / n in 1e-9 units, rounded half away from zero, as a NUMERIC (no intermediate overflow).
_NUMERIC_QUOTIENT = (
    "CASE WHEN n = 0 THEN NULL ELSE CAST(t // n + CASE WHEN 2 * ABS(t % n) >= n THEN SIGN(t) ELSE 0 END "
    "AS DECIMAL(38, 0)) * CAST('0.000000001' AS DECIMAL(38, 9)) END"
)


#: Where the SQL macros live: an in-memory database attached to the DuckDB instance, so every
#: cursor (a separate connection) sees them, and nothing is written to the user's database.
MACRO_CATALOG = "pulse_bq"
MACRO_SCHEMA = f"{MACRO_CATALOG}.main"


def macro_call(name: str) -> str:
    """The qualified name the translator calls macro `name` by."""
    return f"{MACRO_SCHEMA}.{name}"


def _overloads(name: str, params: str, decimal_body: str, other_body: str) -> str:
    """`CREATE MACRO name` with a DECIMAL(38, 9) overload of the first parameter, one
    overload per other numeric type (so none of them is cast to DECIMAL) and an untyped one."""
    first, _, rest = params.partition(",")
    rest = f", {rest.strip()}" if rest else ""
    parts = [f"({first} DECIMAL(38, 9){rest}) AS {decimal_body}"]
    parts += [f"({first} {t}{rest}) AS {other_body}" for t in _FLOAT_AVERAGE_TYPES]
    parts.append(f"({first}{rest}) AS {other_body}")
    return f"CREATE OR REPLACE MACRO {MACRO_SCHEMA}.{name}" + ", ".join(parts)


#: SQL macros (typed overloads pick BigQuery's result type from the argument's DuckDB type):
#: `bq_numeric_units(x)` is a NUMERIC in 1e-9 units (NULL for other types);
#: `bq_avg_pick(x, SUM(bq_numeric_units(x)), COUNT(x), AVG(x))` is AVG as BigQuery types it:
#: NUMERIC (exact, rounded to 9 digits) for a NUMERIC x, DuckDB's AVG (FLOAT64) otherwise.
def _fraction_text(value: str, head: str, tail: str = "") -> str:
    """STRFTIME of `value` with 0, 3 or 6 fractional digits, as BigQuery prints them."""
    return (
        f"CASE WHEN MICROSECOND({value}) % 1000000 = 0 THEN STRFTIME({value}, '{head}{tail}') "
        f"WHEN MICROSECOND({value}) % 1000 = 0 THEN STRFTIME({value}, '{head}.%g{tail}') "
        f"ELSE STRFTIME({value}, '{head}.%f{tail}') END"
    )


#: CAST(x AS STRING) as BigQuery writes a TIMESTAMP (UTC session: '+00'), a DATETIME or a TIME
#: (0, 3 or 6 fractional digits), BYTES decoded as UTF-8 (DuckDB's cast writes `\xE2..`
#: escapes; DECODE raises on invalid UTF-8, as BigQuery); DuckDB's cast for every other type.
_CIVIL_TEXT = (
    f"CREATE OR REPLACE MACRO {MACRO_SCHEMA}.bq_civil_text"
    f"(x TIMESTAMP WITH TIME ZONE) AS {_fraction_text('x', '%Y-%m-%d %H:%M:%S', '+00')}, "
    f"(x TIMESTAMP) AS {_fraction_text('x', '%Y-%m-%d %H:%M:%S')}, "
    f"(x TIME) AS {_fraction_text('(DATE ' + chr(39) + '1970-01-01' + chr(39) + ' + x)', '%H:%M:%S')}, "
    "(x DATE) AS CAST(x AS VARCHAR), (x VARCHAR) AS x, (x BLOB) AS DECODE(x), (x) AS CAST(x AS VARCHAR)"
)

def _numeric_spread(kind: str) -> str:
    """VAR/STDDEV of a NUMERIC from `l`, its non-NULL values in 1e-9 units (HUGEINT): the
    differences to the first value are exact, so DOUBLE only rounds the spread, not the
    magnitude (BigQuery computes it exactly; DuckDB's DOUBLE loses 1e24 + 0.1 vs + 0.2)."""
    variance = (f"(LIST_AGGREGATE(LIST_TRANSFORM(l, v -> CAST(v - l[1] AS DOUBLE)), "
                f"'{kind.replace('stddev', 'var')}') / 1e18)")
    return f"SQRT({variance})" if kind.startswith("stddev") else variance


_NUMERIC_MAX = "CAST('99999999999999999999999999999.999999999' AS DECIMAL(38, 9))"


def _range_bound(name: str, upward: bool) -> str:
    """A RANGE frame offset `off` for the key k of the current row, for a bound that widens
    the frame upwards (k + off) or downwards (k - off). BigQuery computes the bound exactly:
    past the end of the key's type it still includes every key up to that end, and no
    infinite one. These offsets put such a bound at the type's largest (smallest) finite
    value: for FLOAT64 (DuckDB's infinite bound would take the rows keyed +inf/-inf in) and
    NUMERIC (DuckDB raises "Overflow in addition"). Other types keep `off` (an INT64 key is
    ordered as a HUGEINT, `bq_range_key`, where the bound cannot overflow). DuckDB
    evaluates both CASE branches, so neither may overflow for any row."""
    if upward:
        double = ("CASE WHEN NOT ISINF(k) AND NOT ISINF(off) AND ISINF(k + off) "
                  "THEN 1.7976931348623157e308 - k ELSE off END")
        decimal = f"CASE WHEN k > {_NUMERIC_MAX} - GREATEST(off, 0) THEN {_NUMERIC_MAX} - GREATEST(k, 0) ELSE off END"
    else:
        double = ("CASE WHEN NOT ISINF(k) AND NOT ISINF(off) AND ISINF(k - off) "
                  "THEN k + 1.7976931348623157e308 ELSE off END")
        decimal = f"CASE WHEN k < -{_NUMERIC_MAX} + GREATEST(off, 0) THEN LEAST(k, 0) + {_NUMERIC_MAX} ELSE off END"
    keep = [f"(k {t}, off) AS off" for t in _FLOAT_AVERAGE_TYPES if t not in ("DOUBLE", "FLOAT")]
    return (f"CREATE OR REPLACE MACRO {MACRO_SCHEMA}.{name}(k DOUBLE, off) AS {double}, "
            f"(k DECIMAL(38, 9), off) AS {decimal}, {', '.join(keep)}, (k, off) AS off")


MACROS: dict[str, str] = {
    "bq_civil_text": _CIVIL_TEXT,
    # PERCENTILE_CONT(x, p) with a NUMERIC p: exact for a NUMERIC x (l = LIST(x) over the
    # window, Python helper), DuckDB's r for every other type
    "bq_percentile_cont_pick": _overloads("bq_percentile_cont_pick", "x, l, p, r",
                                          "bq_percentile_cont_numeric(l, CAST(p AS DECIMAL(38, 9)))", "r"),
    # a RANGE frame's INT64 key as a HUGEINT, where key ± offset cannot overflow (BigQuery
    # computes the bound exactly: 2 FOLLOWING of the largest INT64 is an empty frame); an
    # overload per other key type, so none of them is converted
    "bq_range_key": f"CREATE OR REPLACE MACRO {MACRO_SCHEMA}.bq_range_key(k BIGINT) AS CAST(k AS HUGEINT), "
                    "(k DOUBLE) AS k, (k FLOAT) AS k, (k DECIMAL(38, 9)) AS k, (k HUGEINT) AS k, (k) AS k",
    "bq_range_upper": _range_bound("bq_range_upper", upward=True),
    "bq_range_lower": _range_bound("bq_range_lower", upward=False),
    **{f"bq_{kind}_pick": _overloads(f"bq_{kind}_pick", "x, l, r", _numeric_spread(kind), "r")
       for kind in ("var_samp", "var_pop", "stddev_samp", "stddev_pop")},
    # STRING_AGG of BYTES: DuckDB's string_agg writes the bytes as escaped text (VARCHAR);
    # for a BLOB x that text cast back is the BYTES result, other types keep s.
    "bq_bytes_agg": f"CREATE OR REPLACE MACRO {MACRO_SCHEMA}.bq_bytes_agg(x BLOB, s) AS CAST(s AS BLOB), (x, s) AS s",
    "bq_numeric_units": _overloads("bq_numeric_units", "x", _NUMERIC_UNITS, "CAST(NULL AS HUGEINT)"),
    "bq_avg_pick": _overloads("bq_avg_pick", "w, t, n, a", _NUMERIC_QUOTIENT, "a"),
    # DATE_TRUNC / DATE_ADD / DATE_SUB: the DATETIME form d for a DuckDB TIMESTAMP (BigQuery
    # DATETIME), the DATE form otherwise (DATE, and what the translator did before).
    "bq_date_pick": f"CREATE OR REPLACE MACRO {MACRO_SCHEMA}.bq_date_pick(x DATE, d, t) AS d, (x TIMESTAMP, d, t) AS t, "
                    "(x TIMESTAMP WITH TIME ZONE, d, t) AS d, (x VARCHAR, d, t) AS d, (x, d, t) AS d",
}

#: Names of the Python helper functions (registered on the connection, seen by its cursors).
HELPER_NAMES: frozenset[str] = frozenset(h.name for h in HELPERS)

#: Every name the translator may emit (checked by core._check_functions).
CALLABLE_NAMES: frozenset[str] = HELPER_NAMES | frozenset(macro_call(name) for name in MACROS)


def register(con: Any) -> None:
    """Create every helper on the DuckDB connection `con` (idempotent)."""
    import duckdb

    existing = {
        row[0] for row in con.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'bq\\_%' ESCAPE '\\'"
        ).fetchall()
    }
    for helper in HELPERS:
        if helper.name in existing:
            continue
        con.create_function(
            helper.name, helper.function,
            [duckdb.sqltype(p) for p in helper.parameters], duckdb.sqltype(helper.returns),
            side_effects=False,
        )
    register_macros(con)


def register_macros(con: Any) -> None:
    """Define the SQL macros (MACROS) in the attached in-memory database `pulse_bq` (idempotent)."""
    # READ_WRITE: on a read-only connection (monitoring, dbt check) an in-memory database
    # would inherit read-only mode, which DuckDB refuses
    con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {MACRO_CATALOG} (READ_WRITE)")
    defined = {
        row[0] for row in con.execute(
            f"SELECT function_name FROM duckdb_functions() WHERE database_name = '{MACRO_CATALOG}'"
        ).fetchall()
    }
    for name, definition in MACROS.items():
        if name not in defined:  # cursors share the attached database: define once
            con.execute(definition)
