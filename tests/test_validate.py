"""scripts/validate passes on the repository and catches what hassfest would."""

from __future__ import annotations

from collections.abc import Callable
import importlib.util
import json
from pathlib import Path
import shutil
import sys
from types import ModuleType
from typing import Any
import zipfile

import pytest

ROOT = Path(__file__).parents[1]
COMPONENT = ROOT / "custom_components" / "sprecord"
HACS = ROOT / "hacs.json"


def _load_validate() -> ModuleType:
    """Import scripts/validate.py, which is not in a package."""
    spec = importlib.util.spec_from_file_location(
        "sprecord_validate", ROOT / "scripts" / "validate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


validate = _load_validate()


@pytest.fixture
def component(tmp_path: Path) -> Path:
    """Return a copy of the integration that a test may break."""
    copy = tmp_path / "custom_components" / "sprecord"
    shutil.copytree(
        COMPONENT, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return copy


def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    """Rewrite a JSON file with `change` applied to its content."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data = change(data) or data
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


# --- the real repository -------------------------------------------------------


def test_repository_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate.check_manifest(COMPONENT) == []
    assert validate.check_hacs(HACS) == []
    assert validate.check_translations(COMPONENT) == []
    assert validate.check_quality_scale(COMPONENT) == []
    assert validate.check_icons(COMPONENT) == []
    assert validate.run(COMPONENT, HACS, forward=None)
    assert "FAIL" not in capsys.readouterr().out


def test_platform_translation_keys_are_found() -> None:
    keys = validate.entity_translation_keys(COMPONENT)
    assert keys["binary_sensor"] == {"connected"}
    assert keys["event"] == {"call", "sms", "pbx", "auto_dial"}
    assert {"call_state", "line_state", "last_sms", "auto_dial"} <= keys["sensor"]


def test_cloud_attributes_are_collected() -> None:
    imported = validate.collect_ha_imports(COMPONENT)
    cloud = [
        i
        for i in imported
        if (i.module, i.name) == ("homeassistant.components", "cloud")
    ]
    attributes = set().union(*(i.attributes for i in cloud))
    assert {"async_active_subscription", "async_delete_cloudhook"} <= attributes


# --- translations ----------------------------------------------------------------


def test_missing_russian_key_fails(
    component: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def drop(data: Any) -> None:
        del data["config"]["step"]["user"]["title"]

    edit_json(component / "translations" / "ru.json", drop)

    problems = validate.check_translations(component)
    assert problems == ["translations/ru.json: missing key config.step.user.title"]
    assert validate.main(["--offline", "--component", str(component)]) == 1
    out = capsys.readouterr().out
    assert "FAIL strings.json / translations" in out
    assert "missing key config.step.user.title" in out


def test_extra_key_placeholder_and_english_drift_fail(component: Path) -> None:
    def break_russian(data: Any) -> None:
        data["config"]["step"]["user"]["extra"] = "Лишнее"
        data["config"]["step"]["reauth_confirm"]["description"] = "Без адреса"

    def break_english(data: Any) -> None:
        data["config"]["abort"]["already_configured"] = "Other text"

    edit_json(component / "translations" / "ru.json", break_russian)
    edit_json(component / "translations" / "en.json", break_english)

    problems = "\n".join(validate.check_translations(component))
    assert "translations/ru.json: extra key config.step.user.extra" in problems
    assert "config.step.reauth_confirm.description has placeholders []" in problems
    assert "en.json: config.abort.already_configured differs" in problems


def test_empty_text_and_unknown_section_fail(component: Path) -> None:
    for name in ("strings.json", "translations/en.json", "translations/ru.json"):
        edit_json(component / name, lambda data: data.update(bogus={"a": "b"}))
    edit_json(
        component / "translations" / "ru.json",
        lambda data: data["config"]["abort"].update(already_configured=" "),
    )

    problems = "\n".join(validate.check_translations(component))
    assert "top-level section 'bogus' is not allowed" in problems
    assert "ru.json: config.abort.already_configured is empty" in problems


# --- icons.json -------------------------------------------------------------------


def test_icon_for_unknown_entity_fails(component: Path) -> None:
    edit_json(
        component / "icons.json",
        lambda data: data["entity"]["sensor"].update(ghost={"default": "mdi:ghost"}),
    )

    assert validate.check_icons(component) == [
        "icons.json: entity.sensor.ghost names an entity that does not exist"
    ]


def test_missing_icon_and_unknown_state_fail(component: Path) -> None:
    def change(data: Any) -> None:
        del data["entity"]["sensor"]["last_sms"]
        data["entity"]["sensor"]["call_state"]["state"]["on_hold"] = "mdi:pause"

    edit_json(component / "icons.json", change)

    problems = "\n".join(validate.check_icons(component))
    assert "no icon for sensor entity 'last_sms'" in problems
    assert "call_state has an icon for state 'on_hold'" in problems


# --- manifest.json and hacs.json ----------------------------------------------


def test_manifest_keys_out_of_order_fail(component: Path) -> None:
    edit_json(
        component / "manifest.json",
        lambda data: {"version": data.pop("version"), **data},
    )

    problems = validate.check_manifest(component)
    assert len(problems) == 1
    assert "keys are not sorted" in problems[0]


def test_manifest_values_fail(component: Path) -> None:
    def change(data: Any) -> None:
        data["iot_class"] = "cloud_magic"
        data["version"] = "not a version"
        data["domain"] = "other"
        del data["issue_tracker"]

    edit_json(component / "manifest.json", change)

    problems = "\n".join(validate.check_manifest(component))
    assert "iot_class 'cloud_magic' is not one of" in problems
    assert "version 'not a version' is not a valid version" in problems
    assert "domain 'other' does not match the folder 'sprecord'" in problems
    assert "required key 'issue_tracker' is missing" in problems


def test_hacs_unknown_key_and_bad_version_fail(tmp_path: Path) -> None:
    hacs = tmp_path / "hacs.json"
    hacs.write_text(json.dumps({"name": "X", "homeassistant": "soon", "domains": []}))

    problems = "\n".join(validate.check_hacs(hacs))
    assert "key 'domains' is not allowed" in problems
    assert "homeassistant 'soon' is not a version" in problems


# --- quality_scale.yaml -----------------------------------------------------------


def test_missing_quality_scale_rule_fails(component: Path) -> None:
    path = component / "quality_scale.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  brands: done\n" in text
    path.write_text(text.replace("  brands: done\n", ""), encoding="utf-8")

    assert validate.check_quality_scale(component) == [
        "quality_scale.yaml: missing bronze rule brands"
    ]


def test_quality_scale_format_fails(component: Path) -> None:
    path = component / "quality_scale.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("  brands: done\n", "  brands: exempt\n")
    text = text.replace("  devices: done\n", "  devices: maybe\n")
    text += "  no-such-rule: done\n  diagnostics:\n    status: todo\n"
    text = text.replace("  diagnostics: done\n", "")
    path.write_text(text, encoding="utf-8")

    problems = "\n".join(validate.check_quality_scale(component))
    assert "unknown rule no-such-rule" in problems
    assert "brands is exempt without a comment" in problems
    assert "devices has status 'maybe'" in problems
    assert "diagnostics is todo without a comment" in problems


# --- forward compatibility -------------------------------------------------------


FAKE_HA = {
    "homeassistant/__init__.py": "",
    # Python 3.14 syntax: Python 3.13 parses it once rewritten.
    "homeassistant/core.py": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .other import Reexported\n"
        "CALLBACK_TYPE = object\n"
        "class HomeAssistant:\n"
        "    pass\n"
        "def callback(func):\n"
        "    try:\n"
        "        return func\n"
        "    except ValueError, TypeError:\n"
        "        raise\n"
    ),
    "homeassistant/helpers/__init__.py": "",
    # Syntax no parser takes: only the text search finds the names.
    "homeassistant/helpers/storage.py": (
        "from homeassistant.util import (\n"
        "    json_loads as loads,\n"
        "    dump,\n"
        ")\n"
        "class Store[T] ??? :\n"
        "    pass\n"
        "async def async_migrate(x): ...\n"
        "STORAGE_DIR: str = '.storage'\n"
    ),
    "homeassistant/components/__init__.py": "",
    "homeassistant/components/cloud/__init__.py": (
        "from .const import *\ndef async_active_subscription(hass):\n    return True\n"
    ),
    "homeassistant/components/cloud/const.py": "async_get_or_create_cloudhook = 1\n",
}

FAKE_INTEGRATION = (
    "from homeassistant.core import CALLBACK_TYPE, HomeAssistant, Reexported{extra}\n"
    "from homeassistant.helpers.storage import Store, STORAGE_DIR, async_migrate\n"
    "from homeassistant.helpers.storage import loads, dump\n"
    "import homeassistant.helpers\n"
    "\n"
    "def _cloud():\n"
    "    from homeassistant.components import cloud\n"
    "    return cloud\n"
    "\n"
    "def use(hass):\n"
    "    _cloud().async_active_subscription(hass)\n"
    "    return _cloud().{cloud_attribute}(hass, 'id')\n"
)


def fake_release(root: Path) -> Path:
    """Write a tiny Home Assistant source tree into `root` and return it."""
    for relpath, text in FAKE_HA.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text, encoding="utf-8")
    return root


def fake_integration(root: Path, extra: str = "", cloud_attribute: str = "") -> Path:
    """Write a one-module integration importing from the fake release."""
    component = root / "custom_components" / "fake"
    component.mkdir(parents=True)
    (component / "__init__.py").write_text(
        FAKE_INTEGRATION.format(
            extra=extra,
            cloud_attribute=cloud_attribute or "async_get_or_create_cloudhook",
        ),
        encoding="utf-8",
    )
    return component


def test_forward_compat_passes_on_fake_release(tmp_path: Path) -> None:
    release = fake_release(tmp_path / "wheel")
    component = fake_integration(tmp_path / "repo")

    assert validate.check_forward_compat(component, release) == []


def test_forward_compat_reads_a_wheel_file(tmp_path: Path) -> None:
    release = fake_release(tmp_path / "wheel")
    wheel = tmp_path / "homeassistant-2099.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for relpath in FAKE_HA:
            archive.write(release / relpath, relpath)
    component = fake_integration(tmp_path / "repo", extra=", Gone")

    assert validate.check_forward_compat(component, wheel) == [
        "custom_components/fake/__init__.py:1: homeassistant.core has no 'Gone'"
    ]


def test_forward_compat_reports_missing_names(tmp_path: Path) -> None:
    release = fake_release(tmp_path / "wheel")
    (release / "homeassistant" / "helpers" / "storage.py").unlink()
    component = fake_integration(
        tmp_path / "repo", extra=", Removed", cloud_attribute="async_removed"
    )

    problems = validate.check_forward_compat(component, release)
    assert "homeassistant.core has no 'Removed'" in "\n".join(problems)
    assert any(
        "module homeassistant.helpers.storage does not exist" in p for p in problems
    )
    assert any(
        p.endswith("(_cloud()): homeassistant.components.cloud has no 'async_removed'")
        for p in problems
    )


def test_cached_wheel_is_reused_without_download(tmp_path: Path) -> None:
    for version in ("2026.1.0", "2026.10.1", "2026.9.0"):
        (tmp_path / f"homeassistant-{version}-py3-none-any.whl").touch()

    wheel, how = validate.fetch_wheel(tmp_path, refresh=False)
    assert wheel == tmp_path / "homeassistant-2026.10.1-py3-none-any.whl"
    assert how.startswith("cached")


def test_download_failure_warns_unless_strict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def offline() -> tuple[Path | None, str]:
        return None, "download failed: no network"

    assert validate.run(COMPONENT, HACS, forward=offline)
    assert "WARN forward compatibility" in capsys.readouterr().out
    assert not validate.run(COMPONENT, HACS, forward=offline, strict=True)
    assert "FAIL forward compatibility" in capsys.readouterr().out


def test_a_rule_the_release_adds_is_required(tmp_path: Path, component: Path) -> None:
    release = fake_release(tmp_path / "wheel")
    ours = (component / "quality_scale.yaml").read_text(encoding="utf-8")
    for number in range(validate.QUALITY_RULE_QUORUM):
        folder = release / "homeassistant" / "components" / f"core{number}"
        folder.mkdir(parents=True)
        (folder / "quality_scale.yaml").write_text(
            "rules:\n  brands: done\n  docs-new-rule: done\n", encoding="utf-8"
        )
    (release / "homeassistant" / "components" / "broken").mkdir()
    (
        release / "homeassistant" / "components" / "broken" / "quality_scale.yaml"
    ).write_text("rules: [", encoding="utf-8")
    tree = validate.SourceTree(release)

    missing = (
        "quality_scale.yaml: missing rule docs-new-rule, which 5 core integrations"
        " of this release name"
    )
    assert validate.check_rules_of_release(component, tree) == [missing]
    (component / "quality_scale.yaml").write_text(
        ours + "  docs-new-rule: done\n", encoding="utf-8"
    )
    assert validate.check_rules_of_release(component, tree) == []
    wheel = tmp_path / "homeassistant-2099.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for file in release.rglob("*"):
            if file.is_file():
                archive.write(file, file.relative_to(release).as_posix())
    (component / "quality_scale.yaml").write_text(ours, encoding="utf-8")
    assert (
        len(validate.check_rules_of_release(component, validate.SourceTree(wheel))) == 1
    )
    (component / "quality_scale.yaml").unlink()
    assert validate.check_rules_of_release(component, tree) == [
        "quality_scale.yaml: cannot be read"
    ]
