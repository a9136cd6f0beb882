"""Integer literals are INT64 in BigQuery; DuckDB types a small one as a 32-bit INTEGER.

`SELECT x * x FROM UNNEST([100000]) AS x` is 10000000000 in BigQuery and "Overflow in
multiplication of INT32" in DuckDB, and so is `WITH t AS (SELECT 100000 AS n) SELECT n * n
FROM t` or `SELECT 1 << 40`. A literal only keeps its 32-bit type where its value *flows*:
into arithmetic, into a result column, into an UNNEST. There it becomes `CAST(.. AS BIGINT)`.
Everywhere else (comparisons, `IN` lists, function parameters such as `SUBSTR(s, 1, 3)`,
`LIMIT`, ordinals, frame offsets, type parameters, INTERVALs) the type of the literal cannot
reach a value, and it is left alone so the output stays readable.

Two passes around the rules (`core`): `mark` looks at the BigQuery tree as written, before
any rule has rewritten it, and tags the literals whose value flows; `widen` casts the tagged
literals after the rules ran (the tag travels with the node through the rules' copies). The
rules therefore still see plain literals (several check for a constant argument).
"""

from __future__ import annotations

from typing import cast

from sqlglot import exp

from pulse_local.translate.rules import fail

#: The meta key on a literal whose INT64 type must survive on DuckDB.
TAG = "pulse_int64"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

#: Nodes that hand their operand's type on to their own value.
_PASS_THROUGH = (
    exp.Paren, exp.Neg, exp.Alias, exp.PropertyEQ, exp.Array, exp.Struct, exp.Tuple,
    exp.Coalesce, exp.Greatest, exp.Least, exp.Abs, exp.Max, exp.Min, exp.AnyValue,
    exp.ArrayAgg, exp.Window, exp.IgnoreNulls, exp.RespectNulls, exp.Subquery,
)

#: DuckDB functions whose parameter is a 32-bit INTEGER with no BIGINT overload: an INT64
#: argument (a column, or a literal widened above) does not bind without a cast.
_INT32_PARAMETERS: dict[type[exp.Expression], str] = {exp.Round: "decimals", exp.Trunc: "decimals", exp.Pad: "expression"}

#: Arithmetic whose result overflows 32 bits where INT64 does not.
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.BitwiseLeftShift)


def _passes_on(parent: exp.Expression, arg_key: str) -> bool:
    """True when `parent`'s value has the type of its operand under `arg_key`."""
    if isinstance(parent, exp.If):  # IF(c, a, b) and CASE's WHEN ... THEN a
        return arg_key in ("true", "false")
    if isinstance(parent, exp.Case):
        return arg_key in ("ifs", "default")
    if isinstance(parent, (exp.Nullif, exp.Bracket)):
        return arg_key == "this"
    return isinstance(parent, _PASS_THROUGH)


def _is_sink(parent: exp.Expression, arg_key: str) -> bool:
    """True when a value reaching `parent` under `arg_key` keeps DuckDB's type for good."""
    if isinstance(parent, _ARITHMETIC):
        return not (isinstance(parent, exp.BitwiseLeftShift) and arg_key == "expression")
    if isinstance(parent, exp.Select):
        # a result column; not the `SELECT 1` of EXISTS, whose value nobody reads
        return arg_key == "expressions" and not isinstance(parent.parent, exp.Exists)
    if isinstance(parent, exp.Values):
        return not isinstance(parent.parent, exp.Insert)  # INSERT: the column types decide
    return isinstance(parent, exp.Unnest)


def _flows(literal: exp.Expression) -> bool:
    """True when the literal's type reaches arithmetic, a result column or an UNNEST."""
    node: exp.Expression = literal
    while node.parent is not None:
        parent, key = cast(exp.Expression, node.parent), node.arg_key or ""
        if _is_sink(parent, key):
            return True
        if not _passes_on(parent, key):
            return False
        node = parent
    return False


def _int_value(node: exp.Expression) -> int | None:
    """The value of an integer literal (`123`, `0x7B`), None for other nodes."""
    if isinstance(node, exp.Literal) and not node.is_string and node.is_int:
        return int(node.name)
    if isinstance(node, exp.HexString) and node.args.get("is_integer"):
        return int(node.name, 16)
    return None


def _is_int_literal(node: exp.Expression) -> bool:
    """True for an integer literal; raises for one beyond INT64, which BigQuery rejects."""
    value = _int_value(node)
    if value is None:
        return False
    if isinstance(node.parent, exp.Neg):
        value = -value
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise fail(node, f"integer literal {value}", "it is beyond INT64, so BigQuery rejects it (\"Invalid integer literal\")",
                   f"Write NUMERIC '{value}' or BIGNUMERIC '{value}', or a FLOAT64 literal such as {value}.0.")
    return True


def mark(tree: exp.Expression) -> exp.Expression:
    """Tag the integer literals of the BigQuery tree whose INT64 type must be kept."""
    for node in tree.find_all(exp.Literal, exp.HexString):
        if _is_int_literal(node) and _flows(node):
            node.meta[TAG] = True
    return tree


def widen(tree: exp.Expression) -> exp.Expression:
    """Cast the tagged literals to BIGINT (`-n` as a whole, so -2^63 stays in range)."""
    for node in list(tree.find_all(exp.Literal, exp.HexString)):
        if not node.meta_get(TAG):
            continue
        target: exp.Expression = node.parent if isinstance(node.parent, exp.Neg) else node
        holder = target.parent
        if isinstance(holder, (exp.Cast, exp.TryCast)) or target is tree:
            continue  # already typed by a rule (or nothing to attach to)
        target.replace(exp.cast(target.copy(), exp.DataType.build("BIGINT")))
    return narrow_parameters(tree)


def narrow_parameters(tree: exp.Expression) -> exp.Expression:
    """`ROUND(x, n)`, `TRUNC(x, n)`, `LPAD/RPAD(s, n)` with an INT64 `n`: DuckDB only has
    INTEGER there; the cast raises when `n` does not fit (BigQuery rejects such lengths too)."""
    for node in list(tree.find_all(*_INT32_PARAMETERS)):
        arg = node.args.get(_INT32_PARAMETERS[type(node)])
        if arg is None or _int_value(arg) is not None or isinstance(arg, exp.Null):
            continue
        arg.replace(exp.cast(arg.copy(), exp.DataType.build("INT")))
    return tree
