"""Install what `import homeassistant.components.<name>` needs, and no more.

Run by `scripts/test-newest` inside the newest-release environment. Since
2026, installing Home Assistant no longer brings the requirements of every
component it ships; a test that imports one (the tests patch
`homeassistant.components.cloud`) fails on a missing module. This collects
the manifest requirements of the component and of every component it imports
or depends on, then imports it, installing the requirement that provides each
missing module until the import works. A pinned C extension that has no
wheel for this Python (there is no compiler in the environment) is replaced by
the newest release that has one.

    python scripts/newest_component_reqs.py --install cloud [other ...]
    python scripts/newest_component_reqs.py cloud      (print the requirements)
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
import re
import subprocess
import sys

MAX_ROUNDS = 30


def components_dir() -> Path:
    """Return the folder of Home Assistant's components."""
    from homeassistant import components  # noqa: PLC0415

    return Path(components.__path__[0])


def imported_components(base: Path, component: str) -> set[str]:
    """Return the components whose modules `component`'s files import."""
    found: set[str] = set()
    for file in (base / component).rglob("*.py"):
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.level >= 2:  # from ..other import x
                    found.add(node.module.split(".")[0])
                elif node.module == "homeassistant.components":
                    found.update(alias.name for alias in node.names)
                elif node.module.startswith("homeassistant.components."):
                    found.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("homeassistant.components."):
                        found.add(alias.name.split(".")[2])
    return {name for name in found if (base / name / "manifest.json").is_file()}


def requirements(names: list[str]) -> list[str]:
    """Return the manifest requirements of `names` and all they reach."""
    base = components_dir()
    seen: set[str] = set()
    todo = list(names)
    found: set[str] = set()
    while todo:
        name = todo.pop()
        manifest = base / name / "manifest.json"
        if name in seen or not manifest.is_file():
            continue
        seen.add(name)
        data = json.loads(manifest.read_text(encoding="utf-8"))
        found.update(data.get("requirements", []))
        todo += data.get("dependencies", []) + sorted(imported_components(base, name))
    return sorted(found)


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def requirement_for(module: str, reqs: list[str]) -> str | None:
    """Return the requirement that most likely provides `module`."""
    wanted = _normal(module)
    names = [(_normal(re.split(r"[=<>!~\[;]", req)[0]), req) for req in reqs]
    for test in (
        lambda name: name == wanted,
        lambda name: name in (f"py{wanted}", f"python{wanted}"),
        lambda name: wanted in name,
    ):
        for name, req in names:
            if test(name):
                return req
    return None


def pip_install(*args: str) -> bool:
    """Run pip install in this interpreter; tell whether it worked."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", *args]
    return subprocess.run(command, check=False).returncode == 0


def missing_module(component: str) -> str | None:
    """Import the component in a fresh interpreter; return a missing module."""
    code = (
        "try:\n"
        f"    import homeassistant.components.{component}\n"
        "except ModuleNotFoundError as err:\n"
        "    print(err.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"importing {component} failed:\n{result.stderr}")
    name = result.stdout.strip()
    return name.split(".")[0] if name else None


def install(component: str) -> None:
    """Install requirements until the component imports."""
    reqs = requirements([component])
    for _ in range(MAX_ROUNDS):
        module = missing_module(component)
        if module is None:
            print(f"import homeassistant.components.{component}: ok")
            return
        req = requirement_for(module, reqs)
        if req is None:
            raise SystemExit(f"{component}: no manifest requirement provides {module}")
        print(f"{component} needs {module}: pip install {req}")
        if not pip_install(req):
            name = re.split(r"[=<>!~\[;]", req)[0]
            print(f"{req} does not install here: the newest wheel of {name}")
            if not pip_install("--only-binary=:all:", name):
                raise SystemExit(f"{component}: cannot install {name}")
        importlib.invalidate_caches()
    raise SystemExit(f"{component}: still missing modules after {MAX_ROUNDS} rounds")


def main(argv: list[str]) -> int:
    """Install (--install) or print the requirements of the components."""
    if argv and argv[0] == "--install":
        for component in argv[1:]:
            install(component)
        return 0
    print("\n".join(requirements(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
