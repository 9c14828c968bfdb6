"""The call list: the last 20 finished calls, newest first, kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord.calllog import MAX_RECENT, restore_entries
from emulator import SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_states import CALL_STATE, call, end

RECENT = "sensor.sprecord_minipbx_recent_calls"


def calls(hass: HomeAssistant) -> list[dict[str, Any]]:
    """Return the call list as the sensor shows it."""
    return list(hass.states.get(RECENT).attributes["calls"])


async def answered(
    hass: HomeAssistant, emulator: SpRecordEmulator, call_id: int, **kw: Any
) -> None:
    """Let an incoming call ring, be answered elsewhere and end."""
    emulator.emit("incoming_call", call(call_id, **kw))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.emit("start_talk", call(call_id, **kw))
    await wait_for_state(hass, CALL_STATE, "talking")
    emulator.emit("answer_elsewhere", {"call_id": call_id, "number": "102"})
    emulator.emit("call_end", end(call_id, duration=124))
    await wait_for_state(hass, CALL_STATE, "idle")


async def test_three_calls_newest_first_and_kept_across_a_restart(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    assert hass.states.get(RECENT).state == "0"
    assert hass.states.get(RECENT).attributes["unit_of_measurement"] == "calls"
    await answered(hass, emulator, 1, trunk="GSM2")
    emulator.emit("incoming_call", call(2, src="+79031234567"))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.emit("call_end", end(2, status="no_answer"))
    await wait_for_state(hass, CALL_STATE, "idle")
    emulator.emit(
        "outgoing_call",
        {"call_id": 3, "call_src": "101", "call_dst": "+74951112233", "trunk": "GSM1"},
    )
    await wait_for_state(hass, CALL_STATE, "dialing")
    emulator.emit("start_talk", {"call_id": 3, "trunk": "GSM1"})
    emulator.emit("call_end", end(3, duration=45))
    await wait_for_state(hass, CALL_STATE, "idle")

    listed = calls(hass)
    assert hass.states.get(RECENT).state == "3"
    assert [
        (c["direction"], c["number"], c["line"], c["result"], c["duration"])
        for c in listed
    ] == [
        ("outgoing", "+74951112233", "GSM1", "success", 45),
        ("incoming", "+79031234567", "GSM1", "missed", 0),
        ("incoming", "+79161234567", "GSM2", "success", 124),
    ]
    assert listed[2]["answered_by"] == "102"
    times = [datetime.fromisoformat(c["time"]) for c in listed]
    assert times == sorted(times, reverse=True)

    # A restart of the entry: the list is saved and comes back.
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert calls(hass) == listed


async def test_the_21st_call_pushes_out_the_oldest(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    for n in range(1, MAX_RECENT + 2):
        emulator.emit("incoming_call", call(n, src=f"+7916000{n:04d}"))
        emulator.emit("call_end", end(n, status="no_answer"))
    await wait_until(lambda: hass.states.get(RECENT).state == str(MAX_RECENT))
    await wait_until(
        lambda: calls(hass)[0]["number"] == f"+7916000{MAX_RECENT + 1:04d}"
    )
    numbers = [c["number"] for c in calls(hass)]
    assert numbers[-1] == "+79160000002"  # the first call is gone
    assert len(numbers) == MAX_RECENT


async def test_a_call_whose_end_never_came_is_listed(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.emit("startup")  # the PBX restarted: its calls are over
    await wait_for_state(hass, CALL_STATE, "idle")
    [listed] = calls(hass)
    assert listed["result"] == "unknown"


@pytest.mark.parametrize(
    "saved",
    [None, "x", [1, {"time": 5}, {"no": "time"}]],
)
def test_a_broken_saved_list_is_dropped(saved: Any) -> None:
    assert restore_entries(saved) == []


def test_a_saved_list_keeps_only_known_fields_and_the_bound() -> None:
    entry = {"time": "2026-11-29T10:00:00+00:00", "number": "1", "extra": "x"}
    restored = restore_entries([entry] * (MAX_RECENT + 5))
    assert len(restored) == MAX_RECENT
    assert restored[0]["number"] == "1"
    assert "extra" not in restored[0]
