"""Check that what Home Assistant calls back runs in the event loop.

Home Assistant runs a bus listener, a dispatcher target or a timer's action
that is neither a coroutine function nor marked `@callback` in a worker
thread. There it touches the integration's state unguarded, and it sees
events late and out of order: a test collecting events with `events.append`
can find an event fired later before one fired earlier, and fail once in a
while. So every function given to the calls of `TAKES` must be an
`async def` or a `@callback` defined in the same file, found by its name
(`collect`, `self._collect`); anything else (`events.append`, a lambda, an
imported function) is reported. Standard library only.

    python scripts/loop_callbacks.py [DIR ...]   (default: the project's code)

Prints each function that may run in a thread and exits 1, or prints a
one-line summary.
"""

from __future__ import annotations

import ast
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ("custom_components", "emulator", "scripts", "tests")
TAKES: dict[str, tuple[int, str]] = {
    "async_listen": (1, "listener"),
    "async_listen_once": (1, "listener"),
    "async_dispatcher_connect": (2, "target"),
    "async_track_state_change_event": (2, "action"),
    "async_call_later": (2, "action"),
    "async_track_point_in_utc_time": (1, "action"),
    "async_track_point_in_time": (1, "action"),
    "async_track_time_interval": (1, "action"),
}
"""Home Assistant's calls that take a function to call back: where it goes
(its position, its keyword)."""


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


def _called_back(call: ast.Call) -> ast.expr | None:
    """Return the function a call of `TAKES` is given (None: not such a call)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else None
    if isinstance(func, ast.Name):
        name = func.id
    if name not in TAKES:
        return None
    index, keyword = TAKES[name]
    if len(call.args) > index:
        return call.args[index]
    return next((kw.value for kw in call.keywords if kw.arg == keyword), None)


def findings(path: Path) -> list[str]:
    """Return the functions of a file called back in a worker thread maybe."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    functions: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.setdefault(node.name, []).append(node)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (listener := _called_back(node)) is None:
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
                f"{where}:{node.lineno}: "
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
    print(f"loop callbacks: {len(files)} files, all called back in the loop")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
