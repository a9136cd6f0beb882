"""BYTES arguments to BigQuery's string functions (SUBSTR, SPLIT, LPAD, REGEXP_*, ...).

BigQuery overloads these functions for BYTES; DuckDB's take VARCHAR only, so
`SUBSTR(b"abc", 2)` failed with "No function matches substring(BLOB, ...)". Where a call's
text argument is evidently BYTES (a `b"..."` literal, `CAST(.. AS BYTES)`, `FROM_BASE64`,
`SHA256`, ... or another such call), every text argument goes through
`bq_bytes_latin1` (one character per byte, `bytes_helpers`), the DuckDB string function
(with the string rules) runs on that text, and `bq_latin1_bytes` turns a BYTES result back.
`BYTE_LENGTH`, `LOWER`, `UPPER` and `ASCII` of BYTES have their own forms.

This is a pass over the tree as written, before the rules (`core`), so the rules see the
calls with their Latin-1 arguments. A BYTES column whose type the SQL does not show keeps
DuckDB's error (a binder error naming the function).
"""

from __future__ import annotations

import re

from sqlglot import exp

from pulse_local.translate.rules import fail, fill

TO_TEXT, TO_BYTES = "bq_bytes_latin1", "bq_latin1_bytes"

#: Function -> (the argument keys holding text, what it returns: "bytes", "list" or "other").
_OVERLOADS: dict[type[exp.Expression], tuple[tuple[str, ...], str]] = {
    exp.Substring: (("this",), "bytes"),
    exp.Left: (("this",), "bytes"),
    exp.Right: (("this",), "bytes"),
    exp.Pad: (("this", "fill_pattern"), "bytes"),
    exp.Trim: (("this", "expression"), "bytes"),
    exp.Replace: (("this", "expression", "replacement"), "bytes"),
    exp.Translate: (("this", "from_", "to"), "bytes"),
    exp.Reverse: (("this",), "bytes"),
    exp.Repeat: (("this",), "bytes"),
    exp.RegexpExtract: (("this", "expression"), "bytes"),
    exp.RegexpReplace: (("this", "expression", "replacement"), "bytes"),
    exp.RegexpExtractAll: (("this", "expression"), "list"),
    exp.Split: (("this", "expression"), "list"),
    exp.StrPosition: (("this", "substr"), "other"),
    exp.StartsWith: (("this", "expression"), "other"),
    exp.EndsWith: (("this", "expression"), "other"),
    exp.RegexpInstr: (("this", "expression"), "other"),
    exp.RegexpLike: (("this", "expression"), "other"),
}

#: BYTES functions whose result is BYTES whatever their argument.
_BYTES_RESULTS = (exp.FromBase64, exp.Unhex, exp.SHA2Digest, exp.SHA1Digest, exp.MD5Digest, exp.CodePointsToBytes)
_BYTES_TYPES = (exp.DataType.Type.VARBINARY, exp.DataType.Type.BINARY, exp.DataType.Type.BLOB)


def is_bytes(node: exp.Expression | None) -> bool:
    """True when the SQL shows that `node` is a BYTES value."""
    if node is None:
        return False
    if isinstance(node, (exp.ByteString, *_BYTES_RESULTS)):
        return True
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return node.to.this in _BYTES_TYPES
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in (TO_BYTES, "bq_bytes_lower", "bq_bytes_upper", "encode")
    if isinstance(node, exp.Paren):
        return is_bytes(node.this)
    if isinstance(node, (exp.Coalesce, exp.Concat, exp.DPipe)):
        return any(is_bytes(a) for a in (node.this, *node.expressions, node.args.get("expression")))
    if isinstance(node, exp.If):
        return is_bytes(node.args.get("true")) or is_bytes(node.args.get("false"))
    if isinstance(node, (exp.Lower, exp.Upper)):
        return is_bytes(node.this)
    return False


def _text_arguments(node: exp.Expression) -> list[exp.Expression]:
    keys, _result = _OVERLOADS[type(node)]
    return [node.args[k] for k in keys if isinstance(node.args.get(k), exp.Expression)]


def _matches_empty(pattern: exp.Expression) -> bool:
    """True unless `pattern` is a literal that cannot match the empty string."""
    if not isinstance(pattern, exp.ByteString):
        return not isinstance(pattern, exp.Null)
    try:
        return re.search(pattern.this, "") is not None
    except re.error:
        return True


def _as_text(argument: exp.Expression) -> exp.Expression:
    """A BYTES argument as Latin-1 text: a literal stays a literal (so the string rules still
    see a constant pattern); NUL, which a DuckDB string literal cannot hold, goes through
    the helper as every other expression does."""
    if isinstance(argument, exp.Anonymous) and argument.name.lower() == TO_BYTES:
        return argument.expressions[0]  # text already: no round trip
    if isinstance(argument, exp.ByteString) and "\x00" not in argument.this:
        return exp.Literal.string(argument.this)
    return exp.Anonymous(this=TO_TEXT, expressions=[argument.copy()])


def _bytes_call(node: exp.Expression) -> exp.Expression | None:
    """The BYTES form of one call, or None when its arguments are not evidently BYTES."""
    if isinstance(node, exp.Cast) and node.to.this in _BYTES_TYPES and isinstance(node.this, exp.Literal) \
            and node.this.is_string and not node.args.get("format"):
        return exp.Anonymous(this="ENCODE", expressions=[node.this.copy()])  # UTF-8, not DuckDB's escapes
    if isinstance(node, exp.ByteLength) and is_bytes(node.this):
        return exp.Anonymous(this="OCTET_LENGTH", expressions=[node.this.copy()])
    if isinstance(node, (exp.Lower, exp.Upper)) and is_bytes(node.this):
        name = "bq_bytes_lower" if isinstance(node, exp.Lower) else "bq_bytes_upper"
        return exp.Anonymous(this=name, expressions=[node.this.copy()])
    if isinstance(node, exp.Ascii) and is_bytes(node.this):
        return exp.Anonymous(this="bq_bytes_ascii", expressions=[node.this.copy()])
    if type(node) not in _OVERLOADS or not any(is_bytes(a) for a in _text_arguments(node)):
        return None
    if isinstance(node, exp.RegexpExtractAll) and _matches_empty(node.expression):
        raise fail(node, "REGEXP_EXTRACT_ALL of BYTES with a pattern that matches the empty string",
                   "BigQuery yields no empty match at the end of the input, DuckDB does",
                   "Use a pattern that cannot match the empty string.")
    for argument in _text_arguments(node):
        if not isinstance(argument, exp.Null):
            argument.replace(_as_text(argument))
    result = _OVERLOADS[type(node)][1]
    if result == "bytes":
        return exp.Anonymous(this=TO_BYTES, expressions=[node.copy()])
    if result == "list":
        return fill(f"LIST_TRANSFORM(__l, e -> {TO_BYTES}(e))", l=node.copy())
    return None


def bytes_overloads(tree: exp.Expression) -> exp.Expression:
    """Rewrite, bottom-up, every string-function call whose text arguments are BYTES."""
    for node in reversed(list(tree.walk(bfs=False))):
        assert isinstance(node, exp.Expression)
        new = _bytes_call(node)
        if new is not None:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree
