"""Dependencies point one way: no import circle among the modules of `pulse_local`.

The graph is read from the source with `ast` (nothing is imported). It counts every import: at
module level, inside functions, under ``if TYPE_CHECKING:``, relative ones, and a package's
``__init__`` re-exports. ``from pkg import name`` is an edge to ``pkg`` and, when ``pkg.name`` is a
module, to it too (so importing a sibling through its package counts as depending on the
package's ``__init__``). A circle fails the test with the modules in order and the line of each
import that closes it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pulse_local

SRC = Path(pulse_local.__file__).resolve().parent


@dataclass(frozen=True)
class Edge:
    """One import: `source` imports `target` at `line` of `path`."""

    source: str
    target: str
    path: Path
    line: int


def modules_of(package_dir: Path) -> dict[str, Path]:
    """Every module of the package at `package_dir`, by dotted name (packages by their name)."""
    root = package_dir.parent
    found: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of the dotted `name` that is one of `modules`."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement of `module` loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    """Every import between `modules` (self-imports left out)."""
    edges: list[Edge] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = {_owner(name, modules)
                       for name in _imported_names(node, module, path.name == "__init__.py")}
            edges += [Edge(module, target, path, node.lineno)
                      for target in sorted(t for t in targets if t and t != module)]
    return edges


def strongly_connected(nodes: list[str], edges: list[Edge]) -> list[list[str]]:
    """The groups of two or more modules that import each other, directly or not (Tarjan)."""
    graph: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        graph[edge.source].append(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:
        # iterative, so a deep graph cannot hit the recursion limit
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(graph[succ])))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return groups


def one_cycle(group: list[str], edges: list[Edge]) -> list[Edge]:
    """A shortest circle through the first module of `group`, as the imports that make it."""
    members = set(group)
    start = group[0]
    inside = [e for e in edges if e.source in members and e.target in members]
    came_by: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for edge in inside:
                if edge.source != node:
                    continue
                if edge.target == start:
                    path = [edge]
                    while path[0].source != start:
                        path.insert(0, came_by[path[0].source])
                    return path
                if edge.target not in came_by:
                    came_by[edge.target] = edge
                    following.append(edge.target)
        frontier = following
    raise AssertionError(f"no circle through {start} in {group}")  # a group always has one


def describe(group: list[str], edges: list[Edge]) -> str:
    """The group and one of its circles, an import per line with where it is."""
    lines = [f"import circle of {len(group)} modules: {', '.join(group)}", "  for example:"]
    for edge in one_cycle(group, edges):
        lines.append(f"    {edge.source} -> {edge.target}  "
                     f"({edge.path.relative_to(SRC.parent)}:{edge.line})")
    return "\n".join(lines)


def test_pulse_local_has_no_import_circle() -> None:
    modules = modules_of(SRC)
    edges = import_edges(modules)
    groups = strongly_connected(sorted(modules), edges)
    assert not groups, (
        "\n\n".join(describe(g, edges) for g in groups)
        + "\n\nMake the lower module receive what it needs (a capability from "
        "pulse_local.capabilities, an address from pulse_local.endpoints) instead of importing "
        "its caller; import a sibling by its full name, not through its package.")


def test_capabilities_and_endpoints_depend_only_on_config_and_errors() -> None:
    """The abstraction and the endpoint resolution sit under everything that uses them (the
    profile registry below them all: it imports nothing of the project)."""
    modules = modules_of(SRC)
    edges = import_edges(modules)
    # secret_files (the stack's generated passwords) sits under config itself
    allowed = {"pulse_local", "pulse_local.config", "pulse_local.errors", "pulse_local.profiles",
               "pulse_local.secret_files"}
    for leaf in ("pulse_local.capabilities", "pulse_local.endpoints"):
        extra = sorted({e.target for e in edges if e.source == leaf} - allowed)
        assert not extra, f"{leaf} must import only config, profiles and errors, not {extra}"
    registry = sorted({e.target for e in edges if e.source == "pulse_local.profiles"}
                      - {"pulse_local"})
    assert not registry, f"pulse_local.profiles must import nothing of the project, not {registry}"
    extra = sorted({e.target for e in edges if e.source == "pulse_local.secret_files"}
                   - {"pulse_local", "pulse_local.errors"})
    assert not extra, f"pulse_local.secret_files must import only errors, not {extra}"


def test_the_check_finds_a_circle_through_a_function_import_and_a_reexport(
        tmp_path: Path) -> None:
    """The checker itself (on a made-up package): a circle closed by an import inside a
    function and by a package ``__init__`` re-export is found and named."""
    package = tmp_path / "demo"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from demo.sub import thing\n")
    (package / "sub" / "__init__.py").write_text("from .b import thing\n")
    (package / "sub" / "b.py").write_text(
        "def thing():\n    from demo import a\n    return a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nimport demo.a\n")
    modules = modules_of(package)
    edges = import_edges(modules)
    groups = strongly_connected(sorted(modules), edges)
    assert groups == [["demo.a", "demo.sub", "demo.sub.b"]]
    circle = one_cycle(groups[0], edges)
    assert [(e.source, e.target) for e in circle] == [
        ("demo.a", "demo.sub"), ("demo.sub", "demo.sub.b"), ("demo.sub.b", "demo.a")]
    assert circle[-1].line == 2
