"""The import-graph check finds cycles, and the integration has none."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from .helpers import load_script


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    """Load `scripts/import_cycles.py`."""
    return load_script("import_cycles")


def write(root: Path, files: dict[str, str]) -> Path:
    """Write a package `pkg` of the given modules under `root`."""
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_the_integration_has_no_import_cycle(
    checker: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert checker.main([]) == 0
    assert "no cycle" in capsys.readouterr().out


@pytest.mark.parametrize(
    "importer",
    [
        "from .b import thing\n",
        "from . import b\n",
        "import pkg.b\n",
        "from pkg.b import thing\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import T\n",
        "def later():\n    from .b import thing\n",
    ],
)
def test_every_kind_of_import_makes_a_cycle(
    checker: ModuleType, tmp_path: Path, importer: str
) -> None:
    package = write(
        tmp_path,
        {"__init__.py": "", "a.py": importer, "b.py": "from .a import x\n"},
    )
    assert checker.find_cycles(package) == [(["a", "b", "a"], ["a", "b"])]


def test_cycles_through_subpackages_and_the_init(
    checker: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = write(
        tmp_path,
        {
            "__init__.py": "from .top import x\n",
            "top.py": "from .api import client\n",
            "api/__init__.py": "",
            "api/client.py": "from ..data import y\n",
            "data.py": "from . import x\n",
            "clean.py": "from .api.client import z\n",
        },
    )
    assert checker.main([str(package)]) == 1
    out = capsys.readouterr().out
    assert (
        "import cycle in pkg: __init__ -> top -> api.client -> data -> __init__" in out
    )
    assert "modules importing each other: , api.client, data, top" in out


def test_absolute_imports_name_the_package_from_its_top(
    checker: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "__init__.py").write_text("")
    package = write(
        tmp_path / "top",
        {
            "__init__.py": "",
            "a.py": "from top.pkg.b import thing\n",
            "b.py": "import top.pkg.a\nimport pkg.c\n",
            "c.py": "from pkg import a\n",
        },
    )
    assert checker.find_cycles(package) == [(["a", "b", "a"], ["a", "b"])]


def test_a_tree_without_cycles_passes(checker: ModuleType, tmp_path: Path) -> None:
    package = write(
        tmp_path,
        {
            "__init__.py": "from .b import x\nimport os\n",
            "a.py": "import json\nfrom homeassistant.core import HomeAssistant\n",
            "b.py": "from .a import y\nfrom .a import a as again\n",
        },
    )
    assert checker.find_cycles(package) == []
