"""Rules learned from ZetaSQL's compliance tests (`make conformance`).

Each rule fixes a place where DuckDB returned an answer where BigQuery returns a
different one or raises an error: division by zero (BigQuery raises, DuckDB gives
inf, NaN or NULL), arithmetic on a literal NULL (rejected by BigQuery), IEEE_DIVIDE by
a negative zero, and the navigation functions' argument checks. They are registered
in `pulse_local.translate.rules.RULES_BY_TYPE` ahead of the older rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from sqlglot import exp

from pulse_local.translate.functions import macro_call
from pulse_local.translate.rules import (
    Rule,
    fail,
    fill,
    known_type,
    rule_extract,
    rule_scalar_misc,
    typed_at_bind,
    unit_of,
)
from pulse_local.translate.rules_json import is_json_typed
from pulse_local.translate.rules_strings import _SPEC as FORMAT_SPEC

#: Message of the runtime error DuckDB raises where BigQuery raises "division by zero".
DIVISION_BY_ZERO = "division by zero (BigQuery raises an error here; use SAFE_DIVIDE for NULL)"

DOUBLE_OVERFLOW = "double overflow: the FLOAT64 division is infinite (BigQuery raises this error)"

_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod)


def rule_literal_null_operand(node: exp.Expression) -> exp.Expression | None:
    """BigQuery rejects ``1 + NULL`` ("Operands of + cannot be literal NULL"); DuckDB gives NULL."""
    if not isinstance(node, _ARITHMETIC):
        return None
    for operand in (node.this, node.expression):
        inner = operand.this if isinstance(operand, exp.Paren) else operand
        if isinstance(inner, exp.Null):
            raise fail(node, f"arithmetic on a literal NULL ({node.key.upper()})",
                       "BigQuery rejects a bare NULL operand of an arithmetic operator",
                       "Write CAST(NULL AS INT64) (or the type you mean) instead of NULL.")
    return None


def rule_division_by_zero(node: exp.Expression) -> exp.Expression | None:
    """``x / 0``, ``DIV(x, 0)`` and ``MOD(x, 0)`` raise in BigQuery; DuckDB returns inf/NaN/NULL."""
    if isinstance(node, exp.Div) and not node.args.get("safe"):
        # FLOAT64 division overflowing to inf raises "double overflow" in BigQuery too
        template = (f"CASE WHEN __b = 0 THEN ERROR('{DIVISION_BY_ZERO}') "
                    f"WHEN ISINF(__a / __b) AND NOT ISINF(__a) THEN ERROR('{DOUBLE_OVERFLOW}') ELSE __a / __b END")
    elif isinstance(node, exp.IntDiv):
        template = f"CASE WHEN __b = 0 THEN ERROR('{DIVISION_BY_ZERO}') ELSE __a // __b END"
    elif isinstance(node, exp.Mod):
        template = f"CASE WHEN __b = 0 THEN ERROR('{DIVISION_BY_ZERO}') ELSE __a % __b END"
    else:
        return None
    divisor = node.expression
    if isinstance(divisor, exp.Literal) and not divisor.is_string and divisor.name not in {"0", "0.0"}:
        return None  # a non-zero constant divisor cannot fail
    return fill(template, a=node.this, b=divisor)


def rule_ieee_divide(node: exp.Expression) -> exp.Expression | None:
    """IEEE_DIVIDE is DOUBLE division with IEEE results: DuckDB's DOUBLE ``/`` (keeps -0.0's sign)."""
    if isinstance(node, exp.Anonymous) and node.name.upper() == "IEEE_DIVIDE" and len(node.expressions) == 2:
        a, b = node.expressions
        return fill("CAST(__a AS DOUBLE) / CAST(__b AS DOUBLE)", a=a, b=b)
    return None


def _is_constant(node: exp.Expression) -> bool:
    return not any(isinstance(n, (exp.Column, exp.AggFunc, exp.Window, exp.Subquery)) for n in node.walk())


def rule_navigation_arguments(node: exp.Expression) -> exp.Expression | None:
    """LAG/LEAD: BigQuery requires a non-negative, non-NULL constant offset and a constant default."""
    if not isinstance(node, (exp.Lag, exp.Lead)):
        return None
    name = node.key.upper()
    offset = node.args.get("offset")
    if offset is not None:
        inner = offset.this if isinstance(offset, exp.Paren) else offset
        if isinstance(inner, (exp.Neg, exp.Null)) or (
            isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Null)
        ):
            raise fail(node, f"{name} with a negative or NULL offset", "BigQuery raises an error for it")
        if not _is_constant(offset):
            raise fail(node, f"{name} with a non-constant offset", "BigQuery requires a constant offset")
    default = node.args.get("default")
    if default is not None and not _is_constant(default):
        raise fail(node, f"{name} with a non-constant default", "BigQuery requires a constant default value")
    window = node.parent
    if isinstance(window, exp.Window) and _frame_of(window) is not None:
        raise fail(node, f"{name} with a window frame", "BigQuery does not allow a frame for navigation functions")
    return None


def _frame_of(window: exp.Window) -> exp.Expression | None:
    """The frame of `window`, also when it names a window of the WINDOW clause (OVER w)."""
    if window.args.get("spec") is not None:
        return window.args["spec"]
    name = window.args.get("alias")
    select = window.find_ancestor(exp.Select)
    if name is None or select is None:
        return None
    for named in select.args.get("windows") or []:
        if isinstance(named.this, exp.Identifier) and named.this.name.lower() == name.name.lower():
            return _frame_of(named)
    return None


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


def rule_corr_few_pairs(node: exp.Expression) -> exp.Expression | None:
    """CORR over fewer than two non-NULL pairs is NULL in BigQuery (DuckDB: NaN). Aggregate form only."""
    if not isinstance(node, exp.Corr) or isinstance(node.parent, exp.Window):
        return None
    return fill(
        "CASE WHEN COUNT(CASE WHEN __y IS NOT NULL AND __x IS NOT NULL THEN 1 END) < 2 THEN NULL "
        "ELSE __c END",
        y=node.this, x=node.expression, c=node,
    )


def _error_calls(node: exp.Expression) -> list[exp.Expression]:
    return [n for n in node.walk() if isinstance(n, exp.Anonymous) and n.name.upper() == "ERROR"]


def rule_safe_guards(node: exp.Expression) -> exp.Expression | None:
    """SAFE.f(...): f's own guarded errors become NULL; an argument that can raise is rejected.

    The rules above guard BigQuery's errors with DuckDB's ERROR(), which DuckDB refuses
    inside TRY (what SAFE. becomes), and BigQuery's SAFE only covers f itself.
    """
    if not isinstance(node, exp.SafeFunc):
        return None
    inner = node.this
    if isinstance(inner, exp.Case):
        for branch in inner.args.get("ifs") or []:
            if isinstance(branch.args.get("true"), exp.Anonymous) and branch.args["true"].name.upper() == "ERROR":
                branch.set("true", exp.Null())
    if _error_calls(inner):
        raise fail(node, "SAFE. function whose argument can raise (division by zero, ...)",
                   "BigQuery raises for the argument; DuckDB cannot raise inside SAFE's TRY",
                   "Compute the argument with SAFE_DIVIDE (or a CASE) first.")
    return None


def rule_top_level_select_as_struct(node: exp.Expression) -> exp.Expression | None:
    """A statement's own ``SELECT AS STRUCT`` returns the struct's fields as columns in BigQuery."""
    if not isinstance(node, exp.Select) or str(node.args.get("kind") or "").upper() != "STRUCT":
        return None
    parent = node.parent
    while isinstance(parent, exp.SetOperation):
        parent = parent.parent
    if parent is not None:
        return None
    node.set("kind", None)
    return None


def rule_nth_value_n(node: exp.Expression) -> exp.Expression | None:
    """NTH_VALUE's N must be a positive non-NULL constant in BigQuery."""
    if not isinstance(node, exp.NthValue):
        return None
    n = node.args.get("offset")
    inner = n.this if isinstance(n, exp.Paren) else n
    if isinstance(inner, (exp.Neg, exp.Null)) or (isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Null)) or (
        isinstance(inner, exp.Literal) and not inner.is_string and inner.name == "0"
    ):
        raise fail(node, "NTH_VALUE with N <= 0 or NULL", "BigQuery raises an error for it")
    return None


_GROUPING_LISTS = (exp.GroupingSets, exp.Rollup, exp.Cube, exp.Tuple)


def _grouping_resolver(select: exp.Expression) -> Callable[[exp.Expression], exp.Expression]:
    """Map a grouping item to what it names: an ordinal or a select-list alias -> the expression."""
    projections = list(select.expressions) if isinstance(select, exp.Select) else []
    aliases = {p.alias.lower(): p.this for p in projections if isinstance(p, exp.Alias)}

    def resolve(item: exp.Expression) -> exp.Expression:
        if isinstance(item, exp.Literal) and item.is_int and 1 <= int(item.name) <= len(projections):
            chosen = projections[int(item.name) - 1]
            return chosen.this if isinstance(chosen, exp.Alias) else chosen
        if isinstance(item, exp.Column) and not item.table and item.name.lower() in aliases:
            return aliases[item.name.lower()]
        return item

    return resolve


def _leaves(node: exp.Expression, resolve: Callable[[exp.Expression], exp.Expression]) -> list[exp.Expression]:
    if isinstance(node, _GROUPING_LISTS):
        return [leaf for item in node.expressions for leaf in _leaves(item, resolve)]
    if isinstance(node, exp.Paren):
        return _leaves(node.this, resolve)
    return [resolve(node)]


def _unify_aliases(node: exp.Group, resolve: Callable[[exp.Expression], exp.Expression]) -> None:
    """A select-list alias in a grouping list that names an expression also grouped by
    itself (or by ordinal) elsewhere: BigQuery groups both as one item, DuckDB as two."""
    items = [item for lst in node.find_all(*_GROUPING_LISTS) for item in lst.expressions]
    aliased = [(item, resolve(item)) for item in items if isinstance(item, exp.Column) and resolve(item) is not item]
    plain = {item.sql() for item in items if not any(item is a for a, _ in aliased)}
    if any(target.sql() in plain for _, target in aliased):
        for item, target in aliased:
            item.replace(target.copy())


def rule_grouping_sets(node: exp.Expression) -> exp.Expression | None:
    """GROUPING SETS / ROLLUP / CUBE cases where DuckDB groups differently from BigQuery.

    BigQuery computes a select expression over a grouped column (``a + 1`` next to ``a``)
    from that column, DuckDB matches it to the grouping item ``a + 1`` instead; and a
    ROLLUP/CUBE that repeats an item yields other grouping sets. Both are rejected.
    """
    if not isinstance(node, exp.Group) or not any(isinstance(e, _GROUPING_LISTS[:3]) for e in node.expressions):
        return None
    resolve = _grouping_resolver(node.parent) if node.parent is not None else (lambda e: e)
    for multi in node.find_all(exp.Rollup, exp.Cube):
        keys = [tuple(leaf.sql() for leaf in _leaves(item, resolve)) for item in multi.expressions]
        if len(set(keys)) != len(keys):
            raise fail(node, f"{multi.key.upper()} with a repeated item",
                       "DuckDB builds other grouping sets from repeated items than BigQuery",
                       "List each item once.")
    for sets in node.find_all(exp.GroupingSets):
        keys = [tuple(leaf.sql() for leaf in _leaves(item, resolve)) for item in sets.expressions]
        if len(set(keys)) != len(keys):
            raise fail(node, "GROUPING SETS with a repeated set",
                       "BigQuery returns each repeated set's rows again, DuckDB once",
                       "List each grouping set once.")
    for lst in list(node.find_all(*_GROUPING_LISTS)):
        for item in list(lst.expressions):
            if isinstance(item, exp.Literal) and item.is_int:
                target = resolve(item)
                if target is item or isinstance(target, exp.Literal):
                    raise fail(node, f"grouping item {item.name}", "an ordinal naming a constant (or no column)",
                               "Group by the column or expression itself.")
                item.replace(target.copy())
    _unify_aliases(node, resolve)
    leaves = [leaf for e in node.expressions for leaf in _leaves(e, resolve)]
    columns = {leaf.sql() for leaf in leaves if isinstance(leaf, exp.Column)}
    for leaf in leaves:
        if not isinstance(leaf, exp.Column) and any(c.sql() in columns for c in leaf.find_all(exp.Column)):
            raise fail(node, f"grouping item {leaf.sql(dialect='bigquery')} next to one of its columns",
                       "BigQuery computes the expression from the grouped column, DuckDB groups by it",
                       "Group by the column only and compute the expression in the select list.")
    return None


def _is_null_constant(node: exp.Expression | None) -> bool:
    inner = node.this if isinstance(node, exp.Paren) else node
    return isinstance(inner, exp.Null) or (isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Null))


_NUMBERING = (exp.RowNumber, exp.Rank, exp.DenseRank, exp.PercentRank, exp.CumeDist, exp.Ntile)


def rule_window_checks(node: exp.Expression) -> exp.Expression | None:
    """Window forms BigQuery rejects and DuckDB runs: numbering functions with a frame,
    NTILE of a NULL or non-positive constant, a NULL frame offset."""
    if isinstance(node, exp.WindowSpec):
        for side in ("start", "end"):
            if _is_null_constant(node.args.get(side)):
                raise fail(node, "window frame with a NULL offset", "BigQuery raises an error for it")
        return None
    if not isinstance(node, exp.Window):
        return None
    function = node.this
    if isinstance(function, _NUMBERING) and node.args.get("spec") is not None:
        raise fail(node, f"{function.sql_name()} with a window frame",
                   "BigQuery does not allow a frame for numbering functions")
    if isinstance(function, exp.Ntile):
        n = function.this
        inner = n.this if isinstance(n, exp.Paren) else n
        if _is_null_constant(n) or isinstance(inner, exp.Neg) or (
            isinstance(inner, exp.Literal) and not inner.is_string and inner.name == "0"
        ):
            raise fail(node, "NTILE with a NULL or non-positive bucket count", "BigQuery raises an error for it")
    return None


def _fractional_format(value: str, head: str, tail: str = "") -> str:
    """STRFTIME of `value` with 0, 3 or 6 fractional digits, as BigQuery prints them."""
    return (
        f"CASE WHEN MICROSECOND({value}) % 1000000 = 0 THEN STRFTIME({value}, '{head}{tail}') "
        f"WHEN MICROSECOND({value}) % 1000 = 0 THEN STRFTIME({value}, '{head}.%g{tail}') "
        f"ELSE STRFTIME({value}, '{head}.%f{tail}') END"
    )


_CIVIL_STRINGS = {
    "DATE": "CAST(__x AS VARCHAR)",
    "TIMESTAMP": _fractional_format("__x", "%Y-%m-%d %H:%M:%S"),  # BigQuery DATETIME
    "TIMESTAMPTZ": _fractional_format("__x", "%Y-%m-%d %H:%M:%S", "+00"),  # session is UTC
    "TIME": _fractional_format("(DATE '1970-01-01' + __x)", "%H:%M:%S"),
}


def rule_civil_string(node: exp.Expression) -> exp.Expression | None:
    """STRING(x) / CAST(x AS STRING) of a DATE, DATETIME, TIME or TIMESTAMP whose type is visible.

    BigQuery prints 0, 3 or 6 fractional digits and no offset for DATE/DATETIME/TIME;
    DuckDB's cast trims digits ('.1') and STRING() added '+00' to every argument.
    """
    if isinstance(node, exp.String):
        zone = node.args.get("zone")
        if zone is not None and not (isinstance(zone, exp.Literal) and zone.name.upper() in {"UTC", "+00", "Z"}):
            return None
        value = node.this
    elif isinstance(node, exp.Cast) and node.to.is_type("text", "varchar") and not isinstance(node, exp.TryCast):
        value = node.this
    else:
        return None
    template = _CIVIL_STRINGS.get(known_type(value) or "")
    return fill(template, x=value) if template else None


_NUMERIC = "DECIMAL(38, 9)"


def _float_literal_cast(node: exp.Expression) -> exp.Cast | None:
    """The DOUBLE cast rules.rule_float_literal put around a float literal (also under a minus)."""
    inner = node.this if isinstance(node, exp.Neg) else node
    if isinstance(inner, exp.Cast) and inner.to.is_type("double") and isinstance(inner.this, exp.Literal):
        return inner
    return None


def _is_numeric(node: exp.Expression) -> bool:
    inner = node.this if isinstance(node, exp.Alias) else node
    return isinstance(inner, exp.Cast) and inner.to.this == exp.DataType.Type.DECIMAL


def _coerce_literals(items: list[exp.Expression]) -> None:
    """BigQuery coerces float literals to NUMERIC next to a NUMERIC value; DOUBLE would win on DuckDB."""
    if not any(_is_numeric(item) for item in items):
        return
    for item in items:
        cast = _float_literal_cast(item.this if isinstance(item, exp.Alias) else item)
        if cast is not None:
            cast.set("to", exp.DataType.build(_NUMERIC))


def _union_branches(node: exp.Expression) -> list[exp.Select] | None:
    if isinstance(node, exp.Union):
        left, right = _union_branches(node.this), _union_branches(node.expression)
        return None if left is None or right is None else left + right
    if isinstance(node, exp.Subquery):
        return _union_branches(node.this)
    return [node] if isinstance(node, exp.Select) else None


def rule_numeric_literal_coercion(node: exp.Expression) -> exp.Expression | None:
    """Float literals in a UNION column or an array literal that also holds a NUMERIC become NUMERIC."""
    if isinstance(node, exp.Array):
        _coerce_literals(list(node.expressions))
        return None
    if not isinstance(node, exp.Union) or isinstance(node.parent, exp.Union):
        return None
    branches = _union_branches(node)
    if not branches or len({len(b.expressions) for b in branches}) != 1:
        return None
    for position in range(len(branches[0].expressions)):
        _coerce_literals([b.expressions[position] for b in branches])
    return None


def rule_limit_null(node: exp.Expression) -> exp.Expression | None:
    """LIMIT NULL / OFFSET NULL raise in BigQuery; DuckDB treats them as no limit / no offset."""
    if isinstance(node, (exp.Limit, exp.Offset)) and _is_null_constant(node.expression):
        raise fail(node, f"{node.key.upper()} NULL", "BigQuery requires a non-NULL count")
    return None


def _is_zero_constant(node: exp.Expression | None) -> bool:
    inner = node.this if isinstance(node, (exp.Paren, exp.Interval)) else node
    inner = inner.this if isinstance(inner, exp.Paren) else inner
    if isinstance(inner, exp.Cast):
        inner = inner.this
    return isinstance(inner, exp.Literal) and inner.name.strip() in {"0", "0.0"}


def rule_generate_array_step(node: exp.Expression) -> exp.Expression | None:
    """GENERATE_ARRAY / GENERATE_DATE_ARRAY with a zero step raise in BigQuery."""
    if isinstance(node, (exp.GenerateSeries, exp.GenerateDateArray)) and _is_zero_constant(node.args.get("step")):
        name = "GENERATE_DATE_ARRAY" if isinstance(node, exp.GenerateDateArray) else "GENERATE_ARRAY"
        raise fail(node, f"{name} with a zero step", "BigQuery raises an error for it")
    return None


def rule_aggregate_limit_zero(node: exp.Expression) -> exp.Expression | None:
    """ARRAY_AGG / STRING_AGG(... LIMIT 0) aggregate nothing: NULL in BigQuery (DuckDB: [] or '')."""
    if not isinstance(node, (exp.ArrayAgg, exp.GroupConcat)) or not isinstance(node.this, exp.Limit):
        return None
    count = node.this.expression
    if not _is_zero_constant(count):
        return None
    node.set("this", node.this.this)
    return fill("CASE WHEN FALSE THEN __a END", a=node)


def rule_split_null_delimiter(node: exp.Expression) -> exp.Expression | None:
    """SPLIT(s, NULL) is NULL in BigQuery; DuckDB's STR_SPLIT returns [s]."""
    if not isinstance(node, exp.Split) or node.meta.get("pulse_rule"):
        return None
    delimiter = node.expression
    if delimiter is None or isinstance(delimiter, exp.Literal) and delimiter.is_string:
        return None
    node.meta["pulse_rule"] = True
    return fill("CASE WHEN __d IS NULL THEN NULL ELSE __x END", d=delimiter, x=node)


def _raise_text(message: str, value: str) -> str:
    """An expression that fails with `message` when evaluated (a CAST, no side effects, so
    SAFE. turns it into NULL and aliases of it stay usable), NULL when `value` is NULL."""
    return f"(CASE WHEN CAST('{message}: ' || CAST({value} AS VARCHAR) AS BIGINT) IS NULL THEN NULL END)"


def rule_string_argument_errors(node: exp.Expression) -> exp.Expression | None:
    """Inputs BigQuery rejects: TRANSLATE with a repeated source character; ASCII of a
    string whose first character is not ASCII."""
    if isinstance(node, exp.Translate) and not node.meta.get("pulse_rule"):
        node.meta["pulse_rule"] = True
        source = node.args.get("from_") or node.args.get("expression")
        if source is None:
            return None
        raise_ = _raise_text("TRANSLATE source has a repeated character (BigQuery raises this error)", "__f")
        return fill(
            f"CASE WHEN LENGTH(__f) <> LENGTH(LIST_DISTINCT(STRING_SPLIT(__f, ''))) AND __f <> '' "
            f"THEN {raise_} ELSE __t END",
            f=source, t=node,
        )
    if isinstance(node, exp.Ascii) and not node.meta.get("pulse_rule"):
        node.meta["pulse_rule"] = True
        raise_ = _raise_text("ASCII of a non-ASCII first character (BigQuery raises this error)", "__s")
        return fill(f"CASE WHEN TYPEOF(__s) = 'VARCHAR' AND UNICODE(CAST(__s AS VARCHAR)) > 127 THEN {raise_} ELSE __a END",
                    s=node.this, a=node)
    return None


def rule_not_literal_null(node: exp.Expression) -> exp.Expression | None:
    """BigQuery rejects ``NOT NULL`` ("Operands of NOT cannot be literal NULL"); DuckDB gives NULL."""
    if isinstance(node, exp.Not):
        inner = node.this.this if isinstance(node.this, exp.Paren) else node.this
        if isinstance(inner, exp.Null):
            raise fail(node, "NOT of a literal NULL", "BigQuery rejects a bare NULL operand of NOT",
                       "Write CAST(NULL AS BOOL) instead of NULL.")
    return None


def _negative_constant(node: exp.Expression | None) -> bool:
    inner = node.this if isinstance(node, exp.Paren) else node
    return isinstance(inner, exp.Neg) and isinstance(inner.this, exp.Literal) and inner.this.name not in {"0", "0.0"}


def rule_aggregate_arguments(node: exp.Expression) -> exp.Expression | None:
    """STRING_AGG with a NULL separator and ARRAY_AGG/STRING_AGG/ARRAY_CONCAT_AGG with a
    negative LIMIT raise in BigQuery; DuckDB returns NULL or slices from the end."""
    if isinstance(node, exp.GroupConcat) and _is_null_constant(node.args.get("separator")):
        raise fail(node, "STRING_AGG with a NULL separator", "BigQuery raises an error for it")
    if isinstance(node, (exp.ArrayAgg, exp.GroupConcat, exp.ArrayConcatAgg)) and isinstance(node.this, exp.Limit):
        count = node.this.expression
        if _negative_constant(count) or _is_null_constant(count):
            raise fail(node, f"{node.sql_name()}(... LIMIT {count.sql()})",
                       "BigQuery requires a non-negative, non-NULL LIMIT count")
    return None


_FRAME_OFFSET_ERROR = "Window frame offset for PRECEDING or FOLLOWING must be non-negative (BigQuery raises this error)"


def rule_frame_offsets(node: exp.Expression) -> exp.Expression | None:
    """A window frame offset must be non-negative (and not NaN) in BigQuery; DuckDB runs a
    negative one. A negative literal is rejected; a computed offset is checked when run."""
    if not isinstance(node, exp.WindowSpec) or node.meta.get("pulse_rule"):
        return None
    node.meta["pulse_rule"] = True
    for side in ("start", "end"):
        offset = node.args.get(side)
        if offset is None or isinstance(offset, (str, exp.Interval)) or (
            isinstance(offset, exp.Literal) and not offset.is_string
        ) or isinstance(offset, exp.Var):
            continue
        if _negative_constant(offset):
            raise fail(node, f"window frame offset {offset.sql()}", "BigQuery requires a non-negative offset")
        if any(isinstance(n, (exp.Column, exp.Interval)) for n in offset.walk()):
            continue  # not a constant number: BigQuery rejects it at analysis, DuckDB too
        node.set(side, fill(
            f"CASE WHEN ISNAN(CAST(__o AS DOUBLE)) OR CAST(__o AS DOUBLE) < 0 THEN ERROR('{_FRAME_OFFSET_ERROR}') "
            "ELSE __o END", o=offset))
    return None


def _frame_offsets_only(spec: exp.Expression | None) -> bool:
    """True when both frame bounds are offsets (n PRECEDING / n FOLLOWING), so the frame can be empty."""
    if not isinstance(spec, exp.WindowSpec):
        return False
    bounds = [spec.args.get("start"), spec.args.get("end")]
    return all(b is not None and not isinstance(b, (str, exp.Var)) for b in bounds)


def rule_count_empty_frame(node: exp.Expression) -> exp.Expression | None:
    """COUNT over an empty frame (1 PRECEDING AND 2 PRECEDING) is 0; DuckDB can return -1."""
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Count) and _frame_offsets_only(node.args.get("spec")):
        if node.meta.get("pulse_count_frame"):
            return None
        node.meta["pulse_count_frame"] = True
        return fill("GREATEST(__c, 0)", c=node)
    return None


def rule_format_pattern(node: exp.Expression) -> exp.Expression | None:
    """FORMAT with a pattern that is not a string literal: DuckDB's printf neither checks the
    argument count nor the types against the pattern as BigQuery does, nor reads `%.*d` alike."""
    if isinstance(node, exp.Format) and (
        any(isinstance(n, (exp.Column, exp.Subquery, exp.Select)) for n in node.this.walk())
        or _error_calls(node.this)  # DuckDB folds printf(ERROR(..), ..) to NULL without raising
    ):
        raise fail(node, "FORMAT with a computed pattern",
                   "only a string-literal pattern can be checked and translated as BigQuery reads it",
                   "Write the FORMAT pattern as a string literal.")
    if isinstance(node, exp.Format) and isinstance(node.this, exp.Literal) and not node.meta.get("pulse_rule"):
        wanted = sum(
            1 + (width == "*") + (precision == "*")
            for _flags, width, precision, conv in FORMAT_SPEC.findall(node.this.name) if conv != "%"
        )
        if wanted != len(node.expressions):
            raise fail(node, "FORMAT", f"the pattern takes {wanted} argument(s) but {len(node.expressions)} are given "
                       "(BigQuery raises an error)")
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
    raise_ = _raise_text(_JSON_INT64_ERROR, "__j")
    return fill(
        "CASE WHEN JSON_TYPE(__j) IN ('NULL') OR __j IS NULL THEN NULL "
        "WHEN JSON_TYPE(__j) IN ('BIGINT', 'UBIGINT') THEN CAST(__j AS BIGINT) "
        "WHEN JSON_TYPE(__j) = 'DOUBLE' AND CAST(__j AS DOUBLE) = TRUNC(CAST(__j AS DOUBLE)) "
        f"THEN CAST(CAST(__j AS DOUBLE) AS BIGINT) ELSE {raise_} END",
        j=node.this,
    )


def _beyond_numeric(text: str) -> bool:
    """True when the number `text` needs more than NUMERIC's 29 integer / 9 fractional digits."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return False
    if not value.is_finite():
        return False
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        return False
    kept = list(digits)
    while exponent < 0 and len(kept) > 1 and kept[-1] == 0:  # trailing zeros (no rounding context)
        kept.pop()
        exponent += 1
    return exponent < -9 or len(kept) + exponent > 29


def rule_bignumeric_precision(node: exp.Expression) -> exp.Expression | None:
    """A BIGNUMERIC value with more than 9 decimal digits (or 29 integer digits): DuckDB's
    DECIMAL(38, 9), which stands for BIGNUMERIC, would round it silently."""
    if not isinstance(node, exp.DataType) or node.this != exp.DataType.Type.BIGDECIMAL or node.expressions:
        return None
    cast = node.find_ancestor(exp.Cast)
    if cast is None or cast.this is None:
        return None
    for literal in cast.this.find_all(exp.Literal):
        if _beyond_numeric(literal.name):
            raise fail(cast, f"BIGNUMERIC value {literal.name}",
                       "DuckDB's DECIMAL stops at 38 digits with 9 decimals here, so it would be rounded",
                       "Use NUMERIC precision (9 decimal digits), or run this model on BigQuery.")
    return None


def rule_nested_array(node: exp.Expression) -> exp.Expression | None:
    """An array literal of array literals: BigQuery has no arrays of arrays (it raises), DuckDB builds one."""
    if isinstance(node, exp.Array) and any(isinstance(e, exp.Array) for e in node.expressions):
        raise fail(node, "array of arrays", "BigQuery does not support nested arrays",
                   "Wrap the inner arrays in STRUCTs: [STRUCT([1] AS a)].")
    return None


def _is_bytes(node: exp.Expression) -> bool:
    """True when `node` is evidently BYTES: a bytes literal or a cast to BYTES."""
    inner = node.this if isinstance(node, exp.Paren) else node
    return isinstance(inner, exp.ByteString) or (
        isinstance(inner, exp.Cast) and inner.to.is_type("binary", "varbinary", "blob")
    )


def rule_bytes_to_string(node: exp.Expression) -> exp.Expression | None:
    """CAST(bytes AS STRING) decodes UTF-8 in BigQuery (raising on invalid UTF-8); DuckDB's
    cast writes the bytes as escaped text ('\\xE2\\x82\\xAC'). DuckDB's DECODE does what BigQuery does."""
    if (isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast) and node.to.is_type("text", "varchar")
            and not node.args.get("format") and _is_bytes(node.this)):
        return exp.Anonymous(this="DECODE", expressions=[node.this])
    return None


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


_WIDE_FLOAT_TEXT = ("ERROR('CAST(FLOAT64 AS STRING) of a whole number of 16 or more digits: BigQuery writes it "
                    "in exponent notation, which is not reproduced; use FORMAT')")


def _number_text(wide_float: str, other: str = "CAST(__x AS VARCHAR)") -> str:
    """The STRING BigQuery writes for __x, `wide_float` for whole FLOAT64s of 16+ digits,
    `other` for the other types."""
    return (
        "CASE WHEN TYPEOF(__x) LIKE 'DECIMAL%' "
        "THEN regexp_replace(regexp_replace(CAST(__x AS VARCHAR), '(\\.[0-9]*[1-9])0+$|\\.0+$', '\\1'), '^-0$', '0') "
        "WHEN TYPEOF(__x) IN ('DOUBLE', 'FLOAT') THEN CASE "
        f"WHEN regexp_full_match(CAST(__x AS VARCHAR), '-?[0-9]{{16,}}\\.0') THEN {wide_float} "
        "ELSE regexp_replace(CAST(__x AS VARCHAR), '^(-?[0-9]+)\\.0$', '\\1') END "
        f"ELSE {other} END"
    )


def rule_number_to_string(node: exp.Expression) -> exp.Expression | None:
    """CAST(x AS STRING) of a NUMERIC or FLOAT64: BigQuery writes '1.5' and '2' where DuckDB
    writes '1.500000000' and '2.0'. Branches on TYPEOF(x), which DuckDB folds when it plans
    the query, so other types keep DuckDB's cast (dates and timestamps: rule_civil_string)."""
    if not isinstance(node, exp.Cast) or not node.to.is_type("text", "varchar") or node.args.get("format"):
        return None
    if node.to.expressions or node.meta.get("pulse_rule"):
        return None
    value = node.this
    if isinstance(value, exp.Literal) and not value.is_string and re.search(r"[.eE]", value.this):
        value = exp.cast(value, exp.DataType.build("DOUBLE"))  # a FLOAT64 literal
    elif isinstance(value, (exp.Literal, exp.Null)) or known_type(value) in {"VARCHAR", "TEXT", "BIGINT", "INT", "BOOLEAN"}:
        return None
    other = "CAST(__x AS VARCHAR)"
    if typed_at_bind(node):
        # a TIMESTAMP / DATETIME / TIME column: BigQuery's 0/3/6 fractional digits (typed macro)
        other = f"{macro_call('bq_civil_text')}(__x)"
    if isinstance(node, exp.TryCast):  # SAFE_CAST: NULL instead of an error
        return fill(_number_text("NULL", other), x=value)
    return fill(_number_text(_WIDE_FLOAT_TEXT, other), x=value)


def _struct_fields(node: exp.Expression) -> list[exp.Expression] | None:
    """The field values of an evident STRUCT (STRUCT(...) or a tuple), else None."""
    if isinstance(node, exp.Tuple):
        return list(node.expressions)
    if isinstance(node, exp.Struct):
        return [f.expression if isinstance(f, exp.PropertyEQ) else f.this if isinstance(f, exp.Alias) else f
                for f in node.expressions]
    return None


def _struct_equality(a: exp.Expression, b: exp.Expression) -> exp.Expression | None:
    """BigQuery's STRUCT equality: by position (field names do not matter), FALSE if a pair
    differs, else NULL if a pair has a NULL, else TRUE; None when neither side is evident."""
    fields = _struct_fields(a) or _struct_fields(b)
    if fields is None:
        return None
    literal_a, literal_b = _struct_fields(a), _struct_fields(b)
    if literal_a is not None and literal_b is not None and len(literal_a) != len(literal_b):
        return None  # BigQuery rejects it; DuckDB will too
    pairs: list[exp.Expression] = []
    for i in range(len(fields)):
        left = literal_a[i].copy() if literal_a is not None else fill(f"STRUCT_EXTRACT_AT(__s, {i + 1})", s=a)
        right = literal_b[i].copy() if literal_b is not None else fill(f"STRUCT_EXTRACT_AT(__s, {i + 1})", s=b)
        pairs.append(_struct_equality(left, right) or exp.EQ(this=left, expression=right))
    out = pairs[0]
    for pair in pairs[1:]:
        out = exp.And(this=out, expression=pair)
    return exp.Paren(this=out)


def rule_struct_equality(node: exp.Expression) -> exp.Expression | None:
    """STRUCT `=` / `!=` / NULLIF / simple CASE with an evident STRUCT operand: by position and
    NULL when a field pair is NULL, as in BigQuery (DuckDB matches fields by name and treats
    NULL fields as equal)."""
    if isinstance(node, (exp.EQ, exp.NEQ)):
        equal = _struct_equality(node.this, node.expression)
        if equal is None:
            return None
        return exp.Not(this=equal) if isinstance(node, exp.NEQ) else equal
    if isinstance(node, exp.Nullif):
        equal = _struct_equality(node.this, node.expression)
        if equal is None:
            return None
        return exp.Case(ifs=[exp.If(this=equal, true=exp.Null())], default=node.this.copy())
    if isinstance(node, exp.Case) and node.this is not None:
        subject = node.this
        ifs = node.args.get("ifs") or []
        equalities = [_struct_equality(subject, branch.this) for branch in ifs]
        if not any(e is not None for e in equalities):
            return None
        if any(e is None for e in equalities):
            return None
        return exp.Case(
            ifs=[exp.If(this=e, true=branch.args.get("true")) for e, branch in zip(equalities, ifs, strict=True)],
            default=node.args.get("default"),
        )
    return None


def rule_cast_to_int64(node: exp.Expression) -> exp.Expression | None:
    """CAST(FLOAT64 AS INT64) rounds halfway cases away from zero in BigQuery (2.5 -> 3);
    DuckDB rounds them to even (2.5 -> 2). A TYPEOF branch, folded when DuckDB plans the
    query, rounds FLOAT64 values first; other types keep DuckDB's cast. A float literal is
    a FLOAT64, so one beyond INT64 raises as in BigQuery."""
    if not isinstance(node, exp.Cast) or not node.to.is_type("bigint") or node.args.get("format"):
        return None
    if node.meta.get("pulse_rule"):
        return None
    value = node.this
    if isinstance(value, exp.Literal) and not value.is_string and re.search(r"[.eE]", value.this):
        value = exp.cast(value, exp.DataType.build("DOUBLE"))
    elif isinstance(value, (exp.Literal, exp.Null)) or known_type(value) in {"VARCHAR", "TEXT", "BIGINT", "INT", "BOOLEAN"}:
        return None
    cast = "TRY_CAST" if isinstance(node, exp.TryCast) else "CAST"
    out = fill(
        f"CASE WHEN TYPEOF(__x) IN ('DOUBLE', 'FLOAT') THEN {cast}(ROUND({cast}(__x AS DOUBLE)) AS BIGINT) "
        f"ELSE {cast}(__x AS BIGINT) END",
        x=value,
    )
    for inner in out.find_all(exp.Cast):
        inner.meta["pulse_rule"] = True
    return out


def rule_time_literal_range(node: exp.Expression) -> exp.Expression | None:
    """TIME '24:00:00' is out of range in BigQuery (raises); DuckDB accepts it."""
    if (isinstance(node, exp.Cast) and node.to.is_type("time") and isinstance(node.this, exp.Literal)
            and node.this.is_string and re.match(r"\s*24:", node.this.name)):
        raise fail(node, f"TIME '{node.this.name}'", "BigQuery's TIME ends at 23:59:59.999999")
    return None


def rule_string_length_parameter(node: exp.Expression) -> exp.Expression | None:
    """CAST(x AS STRING(n)) raises in BigQuery when x is longer than n; DuckDB ignores n.
    Checked when run; a parameterized type inside ARRAY/STRUCT is refused."""
    if not isinstance(node, exp.Cast) or node.meta.get("pulse_length_checked"):
        return None
    to = node.to
    nested = [t for t in to.find_all(exp.DataType) if t is not to and t.is_type("text", "varchar") and t.expressions]
    if nested:
        raise fail(node, f"CAST to {to.sql(dialect='bigquery')}", "a length-limited STRING inside ARRAY/STRUCT is not checked",
                   "Cast to ARRAY<STRING> and check lengths explicitly.")
    if not (to.is_type("text", "varchar") and to.expressions):
        return None
    node.meta["pulse_length_checked"] = True
    limit = to.expressions[0]
    length = limit.this if isinstance(limit, exp.DataTypeParam) else limit
    node.set("to", exp.DataType.build("VARCHAR"))
    message = f"STRING({length.sql()}) has a maximum length of {length.sql()} (BigQuery raises this error)"
    return fill(f"CASE WHEN LENGTH(__v) > {length.sql()} THEN ERROR('{message}') ELSE __v END", v=node)


def rule_safe_divide_overflow(node: exp.Expression) -> exp.Expression | None:
    """SAFE_DIVIDE is NULL where `/` raises: a zero divisor and a FLOAT64 overflow to inf."""
    if not isinstance(node, exp.SafeDivide) or node.meta.get("pulse_rule"):
        return None
    return fill(
        "CASE WHEN __b = 0 THEN NULL WHEN ISINF(__a / __b) AND NOT ISINF(__a) THEN NULL ELSE __a / __b END",
        a=node.this, b=node.expression,
    )


def rule_string_of_json(node: exp.Expression) -> exp.Expression | None:
    """STRING(json) is the JSON string's text in BigQuery (an error for other JSON values);
    the translator read every STRING(x) as a TIMESTAMP. Applied when x is evidently JSON."""
    if not isinstance(node, exp.String) or node.args.get("zone") is not None or not is_json_typed(node.this):
        return None
    raise_ = _raise_text("STRING(JSON): the JSON value is not a string (BigQuery raises this error)", "__j")
    return fill(f"CASE WHEN __j IS NULL OR JSON_TYPE(__j) = 'NULL' THEN NULL WHEN JSON_TYPE(__j) = 'VARCHAR' "
                f"THEN JSON_EXTRACT_STRING(__j, '$') ELSE {raise_} END", j=node.this)


#: Registered ahead of the rules in `rules.RULES_BY_TYPE` (see registry.py).
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
    exp.SafeFunc: (rule_safe_guards,),
    exp.Select: (rule_top_level_select_as_struct,),
    exp.NthValue: (rule_nth_value_n,),
    exp.Group: (rule_grouping_sets,),
    exp.Window: (rule_window_checks, rule_count_empty_frame),
    exp.String: (rule_string_of_json, rule_civil_string),
    exp.Cast: (rule_time_literal_range, rule_string_length_parameter, rule_bytes_to_string, rule_civil_string,
               rule_number_to_string, rule_cast_to_int64),
    exp.TryCast: (rule_number_to_string, rule_cast_to_int64),
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
