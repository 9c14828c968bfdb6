"""The logbook reads as a call list: one line per call and per SMS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.sprecord.const import DOMAIN, EVENT_SPRECORD_LOG
from custom_components.sprecord.logbook import async_describe_events
from emulator import SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_states import CALL_STATE, call, end

LOGBOOK_EXCLUDE = {
    # The README's exclude: the states of the call sensors and the event
    # entities' "detected an event" lines; the call list stays.
    "entity_globs": [
        "sensor.*_call_state",
        "sensor.line_*_state",
        "sensor.*_last_call_result",
        "sensor.*_last_sms",
        "event.*_call",
        "event.*_sms",
    ]
}


def describer(hass: HomeAssistant) -> Callable[[Event], dict[str, str]]:
    """Return the integration's description function for `sprecord_log`."""
    found: list[Callable[[Event], dict[str, str]]] = []

    def register(domain: str, event_name: str, describe: Any) -> None:
        assert (domain, event_name) == (DOMAIN, EVENT_SPRECORD_LOG)
        found.append(describe)

    async_describe_events(hass, register)
    return found[0]


def logged(entry_id: str, **data: Any) -> Event:
    """Return a `sprecord_log` event as a PBX fires it."""
    return Event(EVENT_SPRECORD_LOG, {"config_entry_id": entry_id, **data})


INCOMING = {
    "kind": "call",
    "direction": "incoming",
    "number": "+79161234567",
    "name": None,
    "line": "GSM2",
}


@pytest.mark.parametrize(
    ("language", "data", "message"),
    [
        (
            "en",
            {**INCOMING, "name": "Mum", "result": "success", "duration": 124},
            "Incoming call from Mum (+79161234567) on GSM2, 2 min 4 s",
        ),
        (
            "en",
            {**INCOMING, "result": "success", "duration": 9, "answered_by": "102"},
            "Incoming call from +79161234567 on GSM2, answered by 102, 9 s",
        ),
        (
            "ru",
            {**INCOMING, "name": "Мама", "result": "success", "duration": 124},
            "Входящий звонок: Мама (+79161234567), линия GSM2, 2 мин 4 с",
        ),
        (
            "en",
            {**INCOMING, "result": "missed"},
            "Missed call from +79161234567 on GSM2",
        ),
        (
            "ru",
            {**INCOMING, "number": None, "result": "missed"},
            "Пропущенный звонок: номер скрыт, линия GSM2",
        ),
        (
            "en",
            {**INCOMING, "direction": "outgoing", "result": "busy", "line": None},
            "Outgoing call to +79161234567 on an unknown line, Busy",
        ),
        (
            "en",
            {**INCOMING, "result": "unknown"},
            "Incoming call from +79161234567 on GSM2, its end was not received",
        ),
        (
            "en",
            {**INCOMING, "result": "voicemail", "duration": 30},
            "Incoming call from +79161234567 on GSM2, voicemail",
        ),
        (
            "ru",
            {"kind": "sms", "number": "OZON", "name": None, "line": "GSM1"},
            'SMS: "OZON", линия GSM1',
        ),
    ],
)
async def test_a_line_per_call(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    language: str,
    data: dict[str, Any],
    message: str,
) -> None:
    hass.config.language = language
    await async_get_translations(hass, language, "entity", [DOMAIN])
    described = describer(hass)(logged(setup_entry.entry_id, **data))
    assert described == {"name": "SpRecord MiniPBX", "message": message}


async def test_english_without_cached_translations(hass: HomeAssistant) -> None:
    described = describer(hass)(
        logged("gone", kind="sms", number="900", name=None, line="GSM1")
    )
    assert described == {"name": "SpRecord MiniPBX", "message": "SMS from 900 on GSM1"}


async def logbook_lines(hass: HomeAssistant, hass_ws_client: Any) -> list[str]:
    """Return the logbook's lines since an hour ago, as the frontend reads them."""
    await async_wait_recording_done(hass)
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "logbook/get_events",
            "start_time": (dt_util.utcnow() - timedelta(hours=1)).isoformat(),
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    # A described event has a message; a state change has the entity and
    # its state, which the frontend words ("… changed to …").
    return [
        f"{row['name']}: {row['message']}"
        if row.get("message")
        else f"{row.get('entity_id')} changed to {row.get('state')}"
        for row in response["result"]
    ]


@pytest.mark.parametrize("exclude", [False, True])
async def test_one_answered_call_is_one_line(
    recorder_mock: Any,
    hass: HomeAssistant,
    hass_ws_client: Any,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    exclude: bool,
) -> None:
    """With the recorder on, a whole call and an SMS in the logbook."""
    config = {"exclude": LOGBOOK_EXCLUDE} if exclude else {}
    # The logbook depends on the frontend, whose files (hass_frontend) the
    # test environment need not have: its panel is all the logbook asks of it.
    hass.config.components.add("frontend")
    assert await async_setup_component(hass, "logbook", {"logbook": config})
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)

    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.emit("start_talk", call(1))
    await wait_for_state(hass, CALL_STATE, "talking")
    emulator.emit("call_end", end(1, duration=124))
    await wait_for_state(hass, CALL_STATE, "idle")
    emulator.emit(
        "incoming_sms", {"sms_src": "900", "text": "Код 4321", "trunk": "GSM1"}
    )
    await wait_until(
        lambda: (
            (s := hass.states.get("sensor.sprecord_minipbx_last_sms")) is not None
            and s.attributes.get("text") == "Код 4321"
        )
    )
    await hass.async_block_till_done()

    lines = await logbook_lines(hass, hass_ws_client)
    ours = [line for line in lines if line.startswith("SpRecord MiniPBX: ")]
    assert ours == [
        "SpRecord MiniPBX: Incoming call from +79161234567 on GSM1, 2 min 4 s",
        "SpRecord MiniPBX: SMS from 900 on GSM1",
    ]
    # The recent-calls sensor has a unit: its state changes stay out.
    assert not [line for line in lines if "Recent calls" in line]
    state_lines = [line for line in lines if line not in ours]
    if exclude:
        assert state_lines == []
    else:
        # Without the README's exclude, the states come too (this is what
        # the exclude is for), never with an SMS's text.
        assert any("last_sms" in line for line in state_lines), state_lines
        assert not any("Код 4321" in line for line in state_lines), state_lines
    assert await hass.config_entries.async_unload(config_entry.entry_id)
