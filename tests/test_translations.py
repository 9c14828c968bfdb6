"""Every user-facing text exists in English and Russian."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

from custom_components.sprecord import binary_sensor, event, phonebook, sensor
from custom_components.sprecord.const import ISSUE_PHONEBOOK, ISSUE_TOO_MANY_CONNECTIONS

COMPONENT = Path(__file__).parents[1] / "custom_components" / "sprecord"
STRINGS = json.loads((COMPONENT / "strings.json").read_text())
LANGUAGES = {
    lang: json.loads((COMPONENT / "translations" / f"{lang}.json").read_text())
    for lang in ("en", "ru")
}
ICONS = json.loads((COMPONENT / "icons.json").read_text())
PLACEHOLDER = re.compile(r"{(\w+)}")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Return {dotted.key: text} for a translation tree."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_english_file_is_strings_json() -> None:
    assert LANGUAGES["en"] == STRINGS


@pytest.mark.parametrize("language", ["en", "ru"])
def test_same_keys_as_strings_json(language: str) -> None:
    assert set(flatten(LANGUAGES[language])) == set(flatten(STRINGS))


@pytest.mark.parametrize("language", ["en", "ru"])
def test_texts_are_filled_and_keep_placeholders(language: str) -> None:
    reference = flatten(STRINGS)
    for key, text in flatten(LANGUAGES[language]).items():
        assert text.strip(), key
        assert set(PLACEHOLDER.findall(text)) == set(
            PLACEHOLDER.findall(reference[key])
        ), key


def test_russian_is_russian() -> None:
    cyrillic = re.compile("[а-яё]", re.IGNORECASE)
    for key, text in flatten(LANGUAGES["ru"]).items():
        if key.endswith(".sms.name"):
            continue  # "SMS" is SMS in Russian too
        assert cyrillic.search(text), key


def entity_descriptions() -> list[tuple[str, Any]]:
    """Return (platform, description) of every entity the integration makes."""
    return [
        *(("sensor", d) for d in (*sensor.PBX_SENSORS, sensor.LINE_STATE)),
        *(("event", d) for d in (event.CALL, event.SMS, event.PBX)),
        ("binary_sensor", binary_sensor.CONNECTED),
    ]


def test_every_entity_has_a_name_states_and_icon() -> None:
    for platform, description in entity_descriptions():
        texts = STRINGS["entity"][platform][description.translation_key]
        assert texts["name"], description.key
        for option in getattr(description, "options", None) or []:
            assert option in texts["state"], (description.key, option)
        for event_type in getattr(description, "event_types", None) or []:
            assert event_type in texts["state_attributes"]["event_type"]["state"]
        assert description.translation_key in ICONS["entity"][platform]


def test_icons_name_only_existing_entities_and_states() -> None:
    for platform, entities in ICONS["entity"].items():
        for key, icons in entities.items():
            texts = STRINGS["entity"][platform][key]
            for state in icons.get("state", {}):
                assert state in texts.get("state", {}) or platform == "binary_sensor"
            for event_type in (
                icons.get("state_attributes", {}).get("event_type", {}).get("state", {})
            ):
                assert event_type in texts["state_attributes"]["event_type"]["state"]


def _sources() -> str:
    """Return the integration's Python source, every module."""
    return "\n".join(p.read_text() for p in sorted(COMPONENT.glob("**/*.py")))


def test_flow_errors_and_exceptions_have_texts() -> None:
    """Every error key the code raises has its text; count what was found."""
    source = _sources()
    errors = set(re.findall(r'errors\[[^\]]+\] = "(\w+)"', source))
    errors |= set(re.findall(r'"base": "(\w+)"', source))
    flow_texts = (
        STRINGS["config"]["error"].keys()
        | STRINGS["options"]["error"].keys()
        | STRINGS["config_subentries"]["contact"]["error"].keys()
    )
    for error in errors | {"invalid_url"}:
        assert error in flow_texts, error
    # What the scan must find, so a scan that finds nothing cannot pass.
    assert {
        "no_webhook_url",
        "invalid_auth",
        "phonebook_invalid",
        "invalid_number",
        "autodial_unreachable",
    } <= errors
    assert len(errors) >= 13, sorted(errors)

    keys = set(
        re.findall(r'translation_domain=DOMAIN,\s*translation_key="(\w+)"', source)
    )
    for key in keys:
        assert key in STRINGS["exceptions"], key
    assert {
        "invalid_auth",
        "cannot_connect",
        "too_many_connections",
        "auto_dial_not_found",
        "no_loaded_entries",
    } <= keys
    assert len(keys) >= 13, sorted(keys)
    # Keys built at run time: every one they can make has its text.
    assert 'translation_key=f"auto_dial_{code}"' in source
    for code in ("not_running", "not_suspended", "already_suspended", "wrong_state"):
        assert f"auto_dial_{code}" in STRINGS["exceptions"]
    for code in phonebook.REASONS:
        assert f"phonebook_{code}" in STRINGS["exceptions"], code
    assert ISSUE_TOO_MANY_CONNECTIONS in STRINGS["issues"]
    assert ISSUE_PHONEBOOK in STRINGS["issues"]
