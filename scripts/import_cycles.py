"""Find import cycles among the modules of a package (standard library only).

Every import counts: at the top, inside functions, and under
`if TYPE_CHECKING:`: a cycle hidden from the interpreter is still a cycle
for the reader. A module imports a package's `__init__` when it imports the
package or a name from it, and the submodule when it imports one by name.

    python scripts/import_cycles.py [PACKAGE_DIR]   (default: the integration)

Prints each cycle found and exits 1, or prints a one-line summary.
"""

from __future__ import annotations

import ast
from pathlib import Path
import sys

DEFAULT = Path(__file__).resolve().parent.parent / "custom_components" / "sprecord"


def module_names(root: Path) -> dict[str, Path]:
    """Return the package's modules by dotted name (the package is `""`)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """Return the dotted name (within the package) a relative import names."""
    base = module.split(".") if module else []
    if not is_package and base:
        base.pop()
    for _ in range(level - 1):
        if base:
            base.pop()
    if target:
        base.extend(target.split("."))
    return ".".join(base)


def dotted_name(root: Path) -> str:
    """Return the package's absolute name (its parents with an `__init__`)."""
    parts = [root.name]
    parent = root.parent
    while (parent / "__init__.py").is_file():
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts)


def _within(absolute: str, package: str) -> str | None:
    """Return an absolute module name relative to the package, if inside it."""
    if absolute == package:
        return ""
    if absolute.startswith(f"{package}."):
        return absolute.removeprefix(f"{package}.")
    return None


def imports_of(
    module: str, path: Path, modules: dict[str, Path], package: str
) -> set[str]:
    """Return the package's modules that one module imports.

    `package` is the package's absolute name, for absolute imports.
    """
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                name: str | None = _resolve(module, is_package, node.level, node.module)
            else:
                name = _within(node.module or "", package)
            if name is None:
                continue
            if name in modules:
                found.add(name)
            for alias in node.names:
                child = f"{name}.{alias.name}" if name else alias.name
                if child in modules:
                    found.add(child)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = _within(alias.name, package)
                if name is not None and name in modules:
                    found.add(name)
    found.discard(module)
    return found


def find_cycles(root: Path) -> list[tuple[list[str], list[str]]]:
    """Return the package's tangles: one cycle and all the modules in it."""
    modules = module_names(root)
    package = dotted_name(root)
    graph = {
        name: imports_of(name, path, modules, package) for name, path in modules.items()
    }
    # Tarjan's strongly connected components: every component of more than
    # one module holds a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for other in sorted(graph[name]):
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in on_stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == name:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return [(_cycle_in(component, graph), component) for component in components]


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """Return one cycle through the component's first module, as a path."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for other in sorted(graph[name] & members):
            if other == start:
                return [*paths[name], start]
            if other not in paths:
                paths[other] = [*paths[name], other]
                queue.append(other)
    return component  # pragma: no cover (a component always has a cycle)


def main(argv: list[str]) -> int:
    """Check the package named on the command line (or the integration)."""
    root = Path(argv[0]) if argv else DEFAULT
    cycles = find_cycles(root)
    for cycle, tangled in cycles:
        shown = " -> ".join(name or "__init__" for name in cycle)
        print(f"import cycle in {root.name}: {shown}")
        print(f"  modules importing each other: {', '.join(tangled)}")
    if cycles:
        return 1
    print(f"import graph of {root.name}: {len(module_names(root))} modules, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
