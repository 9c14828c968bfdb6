"""Check that every bus listener runs in the event loop (standard library only).

Home Assistant runs a bus listener that is neither a coroutine function nor
marked `@callback` in a worker thread. Such a listener sees events late and
out of order: a test collecting events with `events.append` can find an
event fired later before one fired earlier, and fail once in a while. So
every listener given to `bus.async_listen` or `bus.async_listen_once` must
be an `async def` or a `@callback` defined in the same file, found by its
name (`collect`, `self._collect`); anything else (`events.append`, a lambda,
an imported function) is reported.

    python scripts/bus_listeners.py [DIR ...]   (default: the project's code)

Prints each listener that may run in a thread and exits 1, or prints a
one-line summary.
"""

from __future__ import annotations

import ast
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ("custom_components", "emulator", "scripts", "tests")
LISTEN = {"async_listen", "async_listen_once"}


def _in_loop(function: ast.AST) -> bool:
    """Tell whether a function runs in the event loop when it listens."""
    if isinstance(function, ast.AsyncFunctionDef):
        return True
    if not isinstance(function, ast.FunctionDef):
        return False
    for decorator in function.decorator_list:
        name = decorator.attr if isinstance(decorator, ast.Attribute) else None
        if isinstance(decorator, ast.Name):
            name = decorator.id
        if name == "callback":
            return True
    return False


def _listener(call: ast.Call) -> ast.expr | None:
    """Return the listener argument of a `bus.async_listen(...)` call."""
    if len(call.args) >= 2:
        return call.args[1]
    return next((kw.value for kw in call.keywords if kw.arg == "listener"), None)


def findings(path: Path) -> list[str]:
    """Return the listeners of a file that may run in a worker thread."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    functions: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.setdefault(node.name, []).append(node)
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LISTEN
            and (listener := _listener(node)) is not None
        ):
            continue
        name = None
        if isinstance(listener, ast.Name):
            name = listener.id
        elif (
            isinstance(listener, ast.Attribute)
            and isinstance(listener.value, ast.Name)
            and listener.value.id in ("self", "cls")
        ):
            name = listener.attr
        defined = functions.get(name, []) if name is not None else []
        if not defined or not all(_in_loop(function) for function in defined):
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            found.append(
                f"{where}:{node.lineno}: listener "
                f"`{ast.unparse(listener)}` may run in a worker thread: "
                "make it an `async def` or a `@callback` of this file"
            )
    return found


def main(argv: list[str]) -> int:
    """Check the files under the directories given (default: the project's)."""
    dirs = [Path(arg).resolve() for arg in argv] or [ROOT / d for d in DEFAULT]
    files = sorted(path for directory in dirs for path in directory.rglob("*.py"))
    found = [line for path in files for line in findings(path)]
    for line in found:
        print(line)
    if found:
        return 1
    print(f"bus listeners: {len(files)} files, every listener runs in the loop")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
