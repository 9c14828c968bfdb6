"""Events from the emulator drive the entities (end to end over SSE)."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from emulator import SpRecordEmulator

from .helpers import wait_for_state

CALL_STATE = "sensor.sprecord_minipbx_call_state"


def call(
    call_id: int | str, src: str = "+79161234567", dst: str = "101", trunk: str = "GSM1"
) -> dict[str, object]:
    """Return the payload of a call start."""
    return {"call_id": call_id, "call_src": src, "call_dst": dst, "trunk": trunk}


async def test_incoming_call_rings_then_talks_then_ends(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    assert hass.states.get(CALL_STATE).state == "idle"
    emulator.emit("incoming_call", call(8))
    state = await wait_for_state(hass, CALL_STATE, "ringing")
    assert state.attributes["caller"] == "+79161234567"
    assert state.attributes["line"] == "GSM1"
    assert state.attributes["called"] == "101"
    emulator.emit("start_talk", call(8))
    await wait_for_state(hass, CALL_STATE, "talking")
    emulator.emit(
        "call_end",
        {"call_id": "8", "record_id": 8, "duration": 42, "status": "success"},
    )
    await wait_for_state(hass, CALL_STATE, "idle")
    assert (
        hass.states.get("sensor.sprecord_minipbx_last_call_result").state == "success"
    )
    assert hass.states.get("sensor.sprecord_minipbx_last_call_duration").state == "42"
