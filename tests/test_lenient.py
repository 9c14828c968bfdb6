"""Issue 10: events taken leniently, reused call ids, text HA cannot store.

End to end over real SSE, as `test_states.py`: events go out of the emulator
into a set-up entry, and states and bus events are checked.
"""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.json import json_bytes
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.sprecord.calls import LATE_EVENT_WINDOW
from custom_components.sprecord.const import DOMAIN, EVENT_SPRECORD
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import wait_for_sms, wait_for_state, wait_until

CALL_STATE = "sensor.sprecord_minipbx_call_state"
ACTIVE_CALLS = "sensor.sprecord_minipbx_active_calls"
LAST_RESULT = "sensor.sprecord_minipbx_last_call_result"
LAST_DURATION = "sensor.sprecord_minipbx_last_call_duration"
MISSED = "sensor.sprecord_minipbx_missed_calls"
LAST_SMS = "sensor.sprecord_minipbx_last_sms"
CALL_EVENT = "event.sprecord_minipbx_call"
GSM1 = "sensor.line_gsm1_state"
GSM2 = "sensor.line_gsm2_state"


@pytest.fixture(autouse=True)
def _all_entities(entity_registry_enabled_by_default: None) -> None:
    """Enable every entity, also those disabled by default (active calls)."""


def call(
    call_id: int | str, src: str = "+79161234567", trunk: str = "GSM1"
) -> dict[str, Any]:
    """Return the payload of a call start or answer."""
    return {"call_id": call_id, "call_src": src, "call_dst": "101", "trunk": trunk}


def end(call_id: int | str, status: str = "success") -> dict[str, Any]:
    """Return the payload of a call end."""
    return {"call_id": call_id, "record_id": 77, "duration": 3, "status": status}


def state(hass: HomeAssistant, entity_id: str) -> str:
    """Return an entity's state."""
    current = hass.states.get(entity_id)
    assert current is not None, entity_id
    return current.state


# --- 3. events are taken leniently ------------------------------------------


async def test_lenient_withheld_caller_rings_and_ends(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.emit("incoming_call", {**call(21), "call_src": None})
    ringing = await wait_for_state(hass, CALL_STATE, "ringing")
    assert ringing.attributes["caller"] is None  # withheld: no number shown
    assert ringing.attributes["line"] == "GSM1"
    assert state(hass, GSM1) == "ringing"
    emulator.emit("start_talk", {"call_id": 21, "trunk": "GSM1"})  # no caller key
    await wait_for_state(hass, GSM1, "talking")
    emulator.emit("call_end", end("21"))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert state(hass, GSM1) == "idle"
    assert state(hass, LAST_RESULT) == "success"


async def test_lenient_call_with_only_its_id_is_tracked_without_a_line(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    emulator.emit("incoming_call", {"call_id": 22})  # no caller, line, extension
    ringing = await wait_for_state(hass, CALL_STATE, "ringing")
    assert ringing.attributes["caller"] is None
    assert ringing.attributes["line"] is None
    assert ringing.attributes["called"] is None
    assert ringing.attributes["direction"] == "incoming"
    assert state(hass, ACTIVE_CALLS) == "1"
    emulator.emit("call_end", {"call_id": "22", "status": "no_answer"})
    missed = await wait_for_state(hass, MISSED, "1")  # still a missed call
    assert missed.attributes["last_caller"] is None
    assert missed.attributes["last_line"] is None
    assert state(hass, CALL_STATE) == "idle"
    sensors = er.async_entries_for_config_entry(entity_registry, setup_entry.entry_id)
    assert not [e for e in sensors if "line" in e.entity_id]  # no line entity


async def test_lenient_call_end_without_status_or_duration_ends_the_call(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.emit("incoming_call", call(23))
    emulator.emit("start_talk", call(23))
    await wait_for_state(hass, GSM1, "talking")
    emulator.emit("call_end", {"call_id": "23"})
    await wait_for_state(hass, CALL_STATE, "idle")
    assert state(hass, GSM1) == "idle"
    assert state(hass, LAST_RESULT) == "not_def"
    assert state(hass, LAST_DURATION) == STATE_UNKNOWN
    assert state(hass, MISSED) == "0"


async def test_lenient_unknown_payload_fields_are_kept_on_the_bus(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    bus = async_capture_events(hass, EVENT_SPRECORD)
    extra = {"queue": "sales", "tags": {"vip": True, "ids": [1, 2]}}
    emulator.emit("incoming_call", {**call(24), **extra})
    emulator.emit("call_end", {**end(24), "cost": 1.5})
    await wait_until(lambda: len(bus) == 2)
    assert bus[0].data["payload"] == {
        "call_id": "24",
        "call_src": "+79161234567",
        "call_dst": "101",
        "trunk": "GSM1",
        **extra,
    }
    assert bus[1].data["payload"]["cost"] == 1.5
    assert bus[1].data["payload"]["status"] == "success"


async def test_lenient_sms_with_only_its_text_is_shown(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    bus = async_capture_events(hass, EVENT_SPRECORD)
    emulator.emit("incoming_sms", {"text": "Код 4321"})  # no sender, line, date
    sms = await wait_for_sms(hass, LAST_SMS, "Код 4321")
    assert sms.attributes["date"] is None
    emulator.emit("incoming_sms", {"sms_src": "BANK", "text": ""})  # empty text
    await wait_until(lambda: len(bus) == 2)
    await wait_for_sms(hass, LAST_SMS, "")
    assert bus[1].data["payload"]["sms_src"] == "BANK"


# --- 4. a reused call id is a new call --------------------------------------


async def test_reused_call_id_after_a_while_is_a_new_call(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    emulator.emit("incoming_call", call(1, src="+70000000001"))
    emulator.emit("call_end", end(1, "no_answer"))
    await wait_for_state(hass, MISSED, "1")
    # The PBX restarted unseen (no `startup` event) and counts from 1 again.
    freezer.tick(LATE_EVENT_WINDOW + timedelta(seconds=1))
    emulator.emit("incoming_call", call(1, src="+70000000002"))
    ringing = await wait_for_state(hass, CALL_STATE, "ringing")
    assert ringing.attributes["caller"] == "+70000000002"
    assert state(hass, GSM1) == "ringing"
    emulator.emit("call_end", end(1, "no_answer"))
    missed = await wait_for_state(hass, MISSED, "2")
    assert missed.attributes["last_caller"] == "+70000000002"
    assert state(hass, CALL_STATE) == "idle"


async def test_reused_call_id_within_the_window_is_a_late_or_repeated_event(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    bus = async_capture_events(hass, EVENT_SPRECORD)
    # The end of call 5 comes before its start: the line must stay idle.
    emulator.emit("incoming_call", call(4))
    emulator.emit("call_end", end(4))
    emulator.emit("call_end", end(5, "no_answer"))
    freezer.tick(LATE_EVENT_WINDOW - timedelta(seconds=5))
    emulator.emit("incoming_call", call(5))
    emulator.emit("incoming_call", call(4))  # a repeat of a call that is over
    emulator.emit("incoming_call", call(6, trunk="GSM2"))  # marks the end
    await wait_for_state(hass, GSM2, "ringing")
    await wait_until(lambda: len(bus) == 6)
    await hass.async_block_till_done()  # the entities are written after a burst
    assert state(hass, GSM1) == "idle"
    current = hass.states.get(CALL_STATE)
    assert current is not None
    assert [c["call_id"] for c in current.attributes["active_calls"]] == ["6"]
    assert state(hass, MISSED) == "0"  # the end without a start is no missed call


# --- 9. text Home Assistant cannot store ------------------------------------


def sse_frame(envelope_json: str) -> bytes:
    """Return one SSE frame whose data is the JSON text as written."""
    return f"data: {envelope_json}\n\n".encode()


async def test_lone_surrogate_in_sms_is_replaced_and_the_entry_unloads(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = async_capture_events(hass, EVENT_SPRECORD)
    # Half an emoji as a JSON escape, in the text, in a nested value and key.
    envelope = (
        '{"device_id": "' + DEFAULT_DEVICE_ID + '", "event_type": "incoming_sms", '
        '"payload": {"sms_src": "+79001234567", "text": "Hi \\ud83d", '
        '"trunk": "GSM1", "parts": {"k\\udc00": ["\\ud83d\\ude00", "\\udc00x"]}}}'
    )
    assert emulator.emit_raw(sse_frame(envelope)) == 1
    await wait_until(lambda: state(hass, LAST_SMS) != STATE_UNKNOWN)
    sms = hass.states.get(LAST_SMS)
    assert sms is not None
    # The broken half replaced, the rest kept.
    assert sms.attributes["text"] == "Hi \ufffd"
    json.loads(sms.as_dict_json)  # the state serialises
    await wait_until(lambda: len(bus) == 1)
    payload = bus[0].data["payload"]
    assert payload["parts"] == {"k\ufffd": ["\U0001f600", "\ufffdx"]}
    json_bytes(bus[0].data)  # the bus event serialises (recorder, websocket)

    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.NOT_LOADED
    saved = hass_storage[f"{DOMAIN}.{setup_entry.entry_id}"]["data"]
    assert saved["last_sms"]["sender"] == "+79001234567"
    assert saved["last_sms"]["text"] == ""  # an SMS's text is never saved
    assert "Task exception was never retrieved" not in caplog.text
    assert "Error unloading entry" not in caplog.text
