"""The logbook describes `sprecord_event` in the user's language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord.const import DOMAIN, EVENT_SPRECORD
from custom_components.sprecord.logbook import async_describe_events


def describer(hass: HomeAssistant) -> Callable[[Event], dict[str, str]]:
    """Return the integration's description function for `sprecord_event`."""
    found: list[Callable[[Event], dict[str, str]]] = []

    def register(domain: str, event_name: str, describe: Any) -> None:
        assert (domain, event_name) == (DOMAIN, EVENT_SPRECORD)
        found.append(describe)

    async_describe_events(hass, register)
    return found[0]


def event(entry_id: str, event_type: str, payload: dict[str, Any]) -> Event:
    """Return a bus event as the coordinator fires it."""
    return Event(
        EVENT_SPRECORD,
        {"config_entry_id": entry_id, "event_type": event_type, "payload": payload},
    )


@pytest.mark.parametrize(
    ("language", "event_type", "payload", "message"),
    [
        (
            "en",
            "incoming_call",
            {
                "call_id": "1",
                "call_src": "+79161234567",
                "call_dst": "101",
                "trunk": "GSM1",
            },
            "Incoming call: +79161234567, GSM1",
        ),
        (
            "ru",
            "incoming_call",
            {
                "call_id": "1",
                "call_src": "+79161234567",
                "call_dst": "101",
                "trunk": "GSM1",
            },
            "Входящий звонок: +79161234567, GSM1",
        ),
        (
            "ru",
            "call_end",
            {"call_id": "1", "status": "no_answer"},
            "Звонок завершён: Без ответа",
        ),
        (
            "en",
            "call_end",
            {"call_id": "1", "status": "voicemail"},
            "Call ended: voicemail",
        ),
        (
            "en",
            "answer_elsewhere",
            {"call_id": "1", "number": "107"},
            "Answered elsewhere: 107",
        ),
        (
            "ru",
            "incoming_sms",
            {"sms_src": "OZON", "text": "x", "trunk": "GSM2"},
            "Входящее SMS: OZON, GSM2",
        ),
        ("ru", "startup", {}, "АТС включена"),
        ("en", "voicemail_left", {"box": 1}, "voicemail_left"),
    ],
)
async def test_logbook_message(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    language: str,
    event_type: str,
    payload: dict[str, Any],
    message: str,
) -> None:
    hass.config.language = language
    await async_get_translations(hass, language, "entity", [DOMAIN])
    described = describer(hass)(event(setup_entry.entry_id, event_type, payload))
    assert described == {"name": "SpRecord MiniPBX", "message": message}


async def test_logbook_name_without_the_entry(hass: HomeAssistant) -> None:
    described = describer(hass)(event("gone", "startup", {}))
    assert described["name"] == "SpRecord MiniPBX"
