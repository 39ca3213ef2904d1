"""Import cycles among the project's modules, function-level imports included.

import-linter (the layer contracts, `lint-imports`) sees only the imports a module runs when it is loaded;
an import inside a function is an edge too, and the one usually added to get past a cycle. This reads every
module of the project's packages with `ast`, takes every `import` and `from ... import` wherever it stands
(only those under `if TYPE_CHECKING:` are left out: they never run), and reports each strongly connected
group of modules with one cycle through it.

    .venv/bin/python scripts/import_cycles.py      # prints the cycles, exits 1 if there is any
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "alerts", "billing", "bot", "config", "core", "marketdata", "portfolios", "research", "trading")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    function_level: bool

    def __str__(self) -> str:
        where = " (inside a function)" if self.function_level else ""
        return f"{self.source}:{self.line} imports {self.target}{where}"


def project_modules(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """(node, inside a function) for every import statement that can run."""
    stack = [(tree, False)]
    while stack:
        node, in_function = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, in_function) for child in node.orelse)
            continue
        nested = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        stack.extend((child, nested) for child in ast.iter_child_nodes(node))


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` names, or its nearest project package; None outside the project."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    edges = []
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, in_function in _imports(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from package import module` imports the submodule; `from module import name` the module.
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != module:
                    edges.append(Edge(module, target, node.lineno, in_function))
    return edges


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the groups with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
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
    return groups


def _cycle_through(group: list[str], by_pair: dict[tuple[str, str], Edge]) -> list[Edge]:
    """One shortest cycle from the group's first module back to itself, staying inside the group."""
    members = set(group)
    start = group[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for source, target in by_pair:
                if source != node or target not in members:
                    continue
                if target == start:
                    path = [by_pair[(node, start)]]
                    while node != start:
                        path.append(by_pair[(previous[node], node)])
                        node = previous[node]
                    return path[::-1]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    return []


@dataclass(frozen=True)
class Cycle:
    modules: list[str]  # every module of the strongly connected group
    example: list[Edge]  # one cycle through it


def import_cycles(root: Path = ROOT, packages=PACKAGES) -> list[Cycle]:
    modules = project_modules(root, packages)
    edges = import_edges(modules)
    graph: dict[str, set[str]] = {module: set() for module in modules}
    by_pair: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        graph[edge.source].add(edge.target)
        by_pair.setdefault((edge.source, edge.target), edge)
    return [Cycle(group, _cycle_through(group, by_pair)) for group in _strongly_connected(graph)]


def report(cycles: list[Cycle]) -> str:
    lines = []
    for number, cycle in enumerate(cycles, 1):
        lines.append(f"cycle {number} among {', '.join(cycle.modules)}, for example:")
        lines.extend(f"  {edge}" for edge in cycle.example)
    return "\n".join(lines)


if __name__ == "__main__":
    found = import_cycles()
    if found:
        print(report(found))
        sys.exit(1)
    print(f"No import cycles among {len(project_modules())} modules.")
