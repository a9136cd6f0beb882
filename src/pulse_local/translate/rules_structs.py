"""STRUCT rules: BigQuery matches STRUCT fields by position, DuckDB by name.

BigQuery compares STRUCTs field by field in order (names do not matter), a NULL field
makes `=` NULL, and where two STRUCT values meet (UNION branches, CASE results) the first
one's field names win. DuckDB matches fields by name: `{'a': 1} UNION ALL {'c': 2}` gives
a two-field struct with NULLs, and an anonymous `STRUCT(0, '')` (sqlglot writes
`{'_0': 0, '_1': ''}`) next to a named struct loses its values. These rules apply where
the STRUCT is evident from the SQL (a STRUCT literal or a tuple).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from pulse_local.translate.rules import Rule, fill


def struct_fields(node: exp.Expression) -> list[exp.Expression] | None:
    """The field values of an evident STRUCT (STRUCT(...) or a tuple), else None."""
    if isinstance(node, exp.Tuple):
        return list(node.expressions)
    if isinstance(node, exp.Struct):
        return [f.expression if isinstance(f, exp.PropertyEQ) else f.this if isinstance(f, exp.Alias) else f
                for f in node.expressions]
    return None


def _field_names(node: exp.Expression) -> list[str | None] | None:
    """The field names of a STRUCT literal (None for an anonymous field), else None."""
    if not isinstance(node, exp.Struct):
        return None
    names: list[str | None] = []
    for field in node.expressions:
        if isinstance(field, exp.PropertyEQ):
            names.append(field.this.name)
        elif isinstance(field, exp.Alias):
            names.append(field.alias)
        else:
            names.append(None)
    return names


def _field(value: exp.Expression, i: int) -> exp.Expression:
    """Field `i` (0-based) of a STRUCT value: the literal's own expression, or STRUCT_EXTRACT_AT."""
    fields = struct_fields(value)
    if fields is not None:
        return fields[i].copy()
    return fill(f"STRUCT_EXTRACT_AT(__s, {i + 1})", s=value)


def struct_equality(a: exp.Expression, b: exp.Expression) -> exp.Expression | None:
    """BigQuery's STRUCT equality: by position (field names do not matter), FALSE if a pair
    differs, else NULL if a pair has a NULL, else TRUE; None when neither side is evident."""
    out = _fieldwise(a, b, lambda left, right: struct_equality(left, right)
                     or exp.EQ(this=left, expression=right))
    return None if out is None else exp.Paren(this=out)


def _fieldwise(a: exp.Expression, b: exp.Expression,
               pair: Callable[[exp.Expression, exp.Expression], exp.Expression]) -> exp.Expression | None:
    """`pair(field_i of a, field_i of b)` for every field, in order, joined by AND; None when
    neither side is an evident STRUCT, or both are literals of different sizes (BigQuery
    rejects it; DuckDB will too)."""
    fields = struct_fields(a) or struct_fields(b)
    if fields is None:
        return None
    literal_a, literal_b = struct_fields(a), struct_fields(b)
    if literal_a is not None and literal_b is not None and len(literal_a) != len(literal_b):
        return None
    pairs = [pair(_field(a, i), _field(b, i)) for i in range(len(fields))]
    out = pairs[0]
    for item in pairs[1:]:
        out = exp.And(this=out, expression=item)
    return out


def _struct_not_distinct(a: exp.Expression, b: exp.Expression) -> exp.Expression | None:
    """`a IS NOT DISTINCT FROM b` for STRUCTs, field by field in order (NULL equals NULL)."""
    out = _fieldwise(a, b, lambda left, right: _struct_not_distinct(left, right)
                     or exp.NullSafeEQ(this=left, expression=right))
    if out is None:
        return None
    # a whole NULL struct is distinct from a struct of NULLs
    whole = fill("(__a IS NULL) = (__b IS NULL)", a=a.copy(), b=b.copy())
    return exp.Paren(this=exp.And(this=whole, expression=exp.Paren(this=out)))


def rule_struct_equality(node: exp.Expression) -> exp.Expression | None:
    """STRUCT `=` / `!=` / NULLIF / simple CASE with an evident STRUCT operand: by position and
    NULL when a field pair is NULL, as in BigQuery (DuckDB matches fields by name and treats
    NULL fields as equal)."""
    if isinstance(node, (exp.EQ, exp.NEQ)):
        equal = struct_equality(node.this, node.expression)
        if equal is None:
            return None
        return exp.Not(this=equal) if isinstance(node, exp.NEQ) else equal
    if isinstance(node, exp.Nullif):
        equal = struct_equality(node.this, node.expression)
        if equal is None:
            return None
        return exp.Case(ifs=[exp.If(this=equal, true=exp.Null())], default=node.this.copy())
    if isinstance(node, exp.Case) and node.this is not None:
        subject = node.this
        ifs = node.args.get("ifs") or []
        equalities = [struct_equality(subject, branch.this) for branch in ifs]
        if not any(e is not None for e in equalities) or any(e is None for e in equalities):
            return None
        return exp.Case(
            ifs=[exp.If(this=e, true=branch.args.get("true")) for e, branch in zip(equalities, ifs, strict=True)],
            default=node.args.get("default"),
        )
    return None


def rule_struct_distinct(node: exp.Expression) -> exp.Expression | None:
    """`IS [NOT] DISTINCT FROM` with an evident STRUCT operand: by position, as in BigQuery."""
    if not isinstance(node, (exp.NullSafeEQ, exp.NullSafeNEQ)):
        return None
    same = _struct_not_distinct(node.this, node.expression)
    if same is None:
        return None
    return exp.Not(this=same) if isinstance(node, exp.NullSafeNEQ) else same


def _in_unnest_array(node: exp.In) -> exp.Expression | None:
    unnest = node.args.get("unnest")
    if not isinstance(unnest, exp.Unnest) or len(unnest.expressions) != 1:
        return None
    return unnest.expressions[0]


def rule_in_unnest_struct(node: exp.Expression) -> exp.Expression | None:
    """`s IN UNNEST(array)` of STRUCTs: BigQuery's STRUCT equality per element (a NULL field
    makes the comparison NULL), so the answer is NULL where no element matches and one
    comparison is NULL. DuckDB's list search treats NULL fields as equal."""
    if not isinstance(node, exp.In):
        return None
    array = _in_unnest_array(node)
    if array is None:
        return None
    value = node.this
    elements = array.expressions if isinstance(array, exp.Array) else []
    if struct_fields(value) is None and not any(struct_fields(e) is not None for e in elements):
        return None
    equal = struct_equality(value, exp.column("__pulse_e"))
    if equal is None:
        return None
    matches = exp.Anonymous(this="LIST_TRANSFORM", expressions=[
        array.copy(), exp.Lambda(this=equal, expressions=[exp.to_identifier("__pulse_e")])])
    return fill(
        "CASE WHEN __a IS NULL OR LEN(__a) = 0 THEN FALSE WHEN LIST_BOOL_OR(__m) THEN TRUE "
        "WHEN LIST_COUNT(__m) < LEN(__a) THEN NULL ELSE FALSE END",
        a=array, m=matches,
    )


def _is_anonymous_struct(node: exp.Expression) -> bool:
    names = _field_names(node)
    return names is not None and bool(names) and all(n is None for n in names)


def _as_row(node: exp.Struct) -> exp.Expression:
    """An anonymous STRUCT literal as DuckDB's unnamed ROW(...), which takes the other
    value's field names by position where two struct types meet."""
    return exp.Anonymous(this="ROW", expressions=[f.copy() for f in node.expressions])


def _results(node: exp.Expression) -> list[exp.Expression]:
    """The result expressions of a CASE / IF / COALESCE."""
    if isinstance(node, exp.Case):
        out = [branch.args.get("true") for branch in node.args.get("ifs") or []]
        return [r for r in [*out, node.args.get("default")] if r is not None]
    if isinstance(node, exp.If):
        return [r for r in (node.args.get("true"), node.args.get("false")) if r is not None]
    if isinstance(node, exp.Coalesce):
        return [node.this, *node.expressions]
    return []


def rule_anonymous_struct_result(node: exp.Expression) -> exp.Expression | None:
    """An anonymous STRUCT literal among CASE / IF / COALESCE results next to another STRUCT:
    BigQuery gives it the other's field names by position; DuckDB would match names."""
    results = _results(node)
    if len(results) < 2 or not any(_is_anonymous_struct(r) for r in results):
        return None
    if all(_is_anonymous_struct(r) for r in results):
        return None
    for result in results:
        if isinstance(result, exp.Struct) and _is_anonymous_struct(result):
            result.replace(_as_row(result))
    return None


def _branches(node: exp.Expression) -> list[exp.Select] | None:
    if isinstance(node, exp.SetOperation):
        left, right = _branches(node.this), _branches(node.expression)
        return None if left is None or right is None else left + right
    if isinstance(node, exp.Subquery):
        return _branches(node.this)
    return [node] if isinstance(node, exp.Select) else None


def _rename_struct(node: exp.Struct, names: list[str | None]) -> None:
    """Give the STRUCT literal `node` the field `names` (BigQuery: the first branch's)."""
    fields = struct_fields(node) or []
    renamed: list[exp.Expression] = []
    for value, name in zip(fields, names, strict=True):
        renamed.append(value.copy() if name is None else exp.PropertyEQ(
            this=exp.to_identifier(name), expression=value.copy()))
    node.set("expressions", renamed)


def rule_set_operation_struct_names(node: exp.Expression) -> exp.Expression | None:
    """STRUCT literals in the same column of UNION / INTERSECT / EXCEPT branches take the first
    branch's field names (BigQuery's rule); DuckDB unions structs by field name."""
    if not isinstance(node, exp.SetOperation) or isinstance(node.parent, exp.SetOperation):
        return None
    branches = _branches(node)
    if not branches or len({len(b.expressions) for b in branches}) != 1:
        return None
    for position in range(len(branches[0].expressions)):
        items = [b.expressions[position] for b in branches]
        values = [i.this if isinstance(i, exp.Alias) else i for i in items]
        first = _field_names(values[0])
        if first is None or not any(isinstance(v, exp.Struct) for v in values[1:]):
            continue
        for value in values[1:]:
            fields = struct_fields(value) if isinstance(value, exp.Struct) else None
            if fields is None or len(fields) != len(first):
                continue
            if all(n is None for n in first):
                if not _is_anonymous_struct(value):
                    continue
            elif _field_names(value) != first:
                _rename_struct(value, first)
    return None


def rule_anonymous_struct_fields(node: exp.Expression) -> exp.Expression | None:
    """`STRUCT<INT64, STRING>` (fields without names): DuckDB's STRUCT type needs names. The
    fields are named `_0`, `_1`, ... by position, as sqlglot names the fields of an anonymous
    STRUCT literal, so a cast of such a literal keeps its values."""
    if not isinstance(node, exp.DataType) or node.this != exp.DataType.Type.STRUCT:
        return None
    fields = list(node.expressions)
    if not any(isinstance(f, exp.DataType) for f in fields):
        return None
    node.set("expressions", [
        exp.ColumnDef(this=exp.to_identifier(f"_{i}"), kind=f) if isinstance(f, exp.DataType) else f
        for i, f in enumerate(fields)
    ])
    return None


RULES: dict[type, tuple[Rule, ...]] = {
    exp.DataType: (rule_anonymous_struct_fields,),
    exp.NullSafeEQ: (rule_struct_distinct,),
    exp.NullSafeNEQ: (rule_struct_distinct,),
    exp.In: (rule_in_unnest_struct,),
    exp.Case: (rule_anonymous_struct_result,),
    exp.If: (rule_anonymous_struct_result,),
    exp.Coalesce: (rule_anonymous_struct_result,),
    exp.Union: (rule_set_operation_struct_names,),
    exp.Intersect: (rule_set_operation_struct_names,),
    exp.Except: (rule_set_operation_struct_names,),
}
