"""Reading ZetaSQL compliance test files (``zetasql/compliance/testdata/*.test``).

A file is a list of sections separated by ``==`` lines. A section starts with comment
lines (``#``) and options in brackets (``[name=...]``, ``[required_features=A,B]``,
``[parameters=... AS p]``, ``[prepare_database]``, ``[default ...=...]``), then the SQL,
then ``--`` and the expected output: a typed value or ``ERROR: ...``. A section marked
``[prepare_database]`` creates a table whose rows are its expected output.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from pulse_local.conformance.values import ArrayValue, FormatError, SqlType, parse_typed

DEFAULT_TIME_ZONE = "America/Los_Angeles"  # the compliance framework's default


@dataclass
class Expected:
    """What the reference implementation returned: a typed value or an error."""

    error: str | None = None
    type: SqlType | None = None
    value: Any = None
    unreadable: str | None = None  # why the value could not be read (unsupported type, ...)
    text: str = ""  # the expected output as written


@dataclass
class Section:
    """One ``==``-separated block of a compliance file."""

    name: str | None
    sql: str
    options: dict[str, str]
    required_features: frozenset[str]
    forbidden_features: frozenset[str]
    expected: Expected | None
    line: int
    prepare_database: bool = False


@dataclass
class TestFile:
    """A parsed compliance file: its sections and file-level settings."""

    name: str
    sections: list[Section] = field(default_factory=list)
    default_time_zone: str = DEFAULT_TIME_ZONE

    @property
    def tables(self) -> list[Section]:
        return [s for s in self.sections if s.prepare_database]

    @property
    def cases(self) -> list[Section]:
        return [s for s in self.sections if s.name and not s.prepare_database]


def _features(value: str) -> frozenset[str]:
    return frozenset(f.strip() for f in value.split(",") if f.strip())


def _split_sections(text: str) -> list[tuple[int, list[str]]]:
    sections: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 1
    for number, line in enumerate(text.splitlines(), start=1):
        if line.rstrip() == "==":
            sections.append((start, current))
            current, start = [], number + 1
        else:
            current.append(line)
    sections.append((start, current))
    return sections


def _read_options(lines: list[str]) -> tuple[list[tuple[str, str]], int]:
    """Options at the head of a section: [(key, value)], index of the first SQL line."""
    options: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        if not stripped.startswith("["):
            break
        body = stripped
        while not body.endswith("]") and i + 1 < len(lines):
            i += 1
            body += "\n" + lines[i].strip()
        body = body[1:-1]
        key, _, value = body.partition("=")
        options.append((key.strip(), value.strip()))
        i += 1
    return options, i


def parse_expected(text: str) -> Expected:
    """Read the expected output after ``--`` (a trailing ``NOTE:`` is ignored)."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")).strip()
    if body.startswith("ERROR:"):
        return Expected(error=body[len("ERROR:"):].strip().splitlines()[0] if body[6:].strip() else "error")
    try:
        t, value, _end = parse_typed(body)
    except FormatError as err:
        return Expected(unreadable=str(err), text=body)
    except (ValueError, IndexError) as err:
        return Expected(unreadable=f"unreadable value ({err})", text=body)
    return Expected(type=t, value=value, text=body)


def parse_test_file(name: str, text: str) -> TestFile:
    """Parse the text of one compliance file."""
    result = TestFile(name)
    defaults: dict[str, str] = {}
    for start, lines in _split_sections(text):
        options, first_sql = _read_options(lines)
        opts: dict[str, str] = {}
        prepare = False
        for key, value in options:
            if key.startswith("default "):
                defaults[key[len("default "):].strip()] = value
            elif key == "default_time_zone":
                result.default_time_zone = value
            elif key == "prepare_database":
                prepare = True
            else:
                opts[key] = value
        rest = lines[first_sql:]
        try:
            sep = next(i for i, line in enumerate(rest) if line.rstrip() == "--")
        except StopIteration:
            sql_lines, expected_text = rest, None
        else:
            sql_lines, expected_text = rest[:sep], "\n".join(rest[sep + 1:])
        sql = "\n".join(sql_lines).strip()
        if not sql:
            continue
        required = _features(opts.get("required_features", "")) | _features(defaults.get("required_features", ""))
        forbidden = _features(opts.get("forbidden_features", "")) | _features(defaults.get("forbidden_features", ""))
        expected = parse_expected(expected_text) if expected_text is not None else None
        result.sections.append(Section(
            name=opts.get("name"), sql=sql, options=opts, required_features=required,
            forbidden_features=forbidden, expected=expected, line=start + first_sql,
            prepare_database=prepare,
        ))
    return result


_TABLE_NAME = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+([A-Za-z_][\w.]*)", re.IGNORECASE)


def table_name(section: Section) -> str | None:
    """The table a ``[prepare_database]`` section creates, or None for other statements."""
    m = _TABLE_NAME.match(section.sql)
    return m.group(1) if m else None


def split_parameters(text: str) -> dict[str, str]:
    """``[parameters=expr AS p1, expr2 AS p2]`` -> {"p1": "expr", ...} (top-level commas)."""
    parts: list[str] = []
    depth, quote, current = 0, "", []
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch in "([{<":
            depth += 1
            current.append(ch)
        elif ch in ")]}>":
            depth -= 1
            current.append(ch)
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if "".join(current).strip():
        parts.append("".join(current))
    params: dict[str, str] = {}
    for part in parts:
        m = re.match(r"(?is)^\s*(.*\S)\s+as\s+([A-Za-z_]\w*)\s*$", part)
        if not m:
            raise FormatError(f"cannot read parameter {part.strip()!r}")
        params[m.group(2)] = m.group(1)
    return params


def _parenthesized(expression: str, _match: re.Match[str]) -> str:
    return f"({expression})"


def bind_parameters(sql: str, params: dict[str, str]) -> str:
    """Replace each ``@name`` with its parameter's expression in parentheses."""
    for name in sorted(params, key=len, reverse=True):
        # a literal replacement: the expression's backslashes are not a template's
        sql = re.sub(rf"(?<!@)@{name}\b", functools.partial(_parenthesized, params[name]), sql)
    return sql


def rows_of(expected: Expected) -> list[Any]:
    """The rows of a table's expected output (an ARRAY of STRUCTs)."""
    if not isinstance(expected.value, ArrayValue):
        raise FormatError("a table's content must be an ARRAY of STRUCTs")
    return expected.value.items
