"""The client library stays free of Home Assistant (it can move to PyPI)."""

from __future__ import annotations

import ast
from pathlib import Path
import sys

API = Path(__file__).parents[1] / "custom_components" / "sprecord" / "api"
ALLOWED_THIRD_PARTY = {"aiohttp", "yarl"}  # yarl comes with aiohttp


def imported_modules(path: Path) -> set[str]:
    """Return the top-level names of the absolute imports in a file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_api_modules_exist() -> None:
    names = {p.name for p in API.glob("*.py")}
    assert {"sse.py", "models.py", "client.py", "exceptions.py"} <= names


def test_api_imports_only_stdlib_and_aiohttp() -> None:
    for path in API.glob("*.py"):
        modules = imported_modules(path)
        assert "homeassistant" not in modules, path.name
        foreign = modules - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY
        assert not foreign, f"{path.name} imports {foreign}"


def test_the_scan_sees_a_homeassistant_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio\nfrom homeassistant.core import HomeAssistant\n")
    assert imported_modules(sample) == {"asyncio", "homeassistant"}
