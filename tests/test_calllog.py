"""The call list: the last 20 finished calls, newest first, kept."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.sprecord.calllog import MAX_RECENT, restore_entries
from custom_components.sprecord.calls import FINISHED_CALL_MEMORY, MAX_ACTIVE_CALLS
from custom_components.sprecord.const import (
    DOMAIN,
    EVENT_SPRECORD_LOG,
)
from custom_components.sprecord.storage import STORAGE_VERSION
from emulator import SpRecordEmulator

from .helpers import set_up_short_call_entry, wait_for_state, wait_until
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


async def expired_then_restarted(
    hass: HomeAssistant, emulator: SpRecordEmulator, freezer: FrozenDateTimeFactory
) -> tuple[MockConfigEntry, list[Event], dict[str, Any]]:
    """Let a talking call expire, then restart the entry from its storage.

    Returns the entry, the `sprecord_log` events and the expired call's entry.
    """
    entry = await set_up_short_call_entry(hass, emulator)
    logged = async_capture_events(hass, EVENT_SPRECORD_LOG)
    await answered(hass, emulator, 1)  # a call of its own, listed first
    emulator.emit("incoming_call", call(7, src="+79037654321"))
    emulator.emit("start_talk", call(7, src="+79037654321"))
    await wait_for_state(hass, CALL_STATE, "talking")
    freezer.tick(timedelta(minutes=6))
    async_fire_time_changed(hass)
    await wait_for_state(hass, CALL_STATE, "idle")  # expired
    await wait_until(lambda: len(logged) == 2)
    expired, _ = calls(hass)
    assert (expired["number"], expired["result"]) == ("+79037654321", "unknown")

    # Home Assistant restarts: the entry is unloaded and set up from storage.
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    await hass.async_block_till_done()
    assert calls(hass)[0] == expired
    return entry, logged, expired


async def test_a_call_that_expired_before_a_restart_is_completed_in_place(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    entry, logged, _ = await expired_then_restarted(hass, emulator, freezer)
    before = calls(hass)

    # Its real end comes after the restart: the entry learns how the call
    # ended, in its place; nothing is listed or logged again.
    freezer.tick(timedelta(minutes=30))
    emulator.emit("call_end", end(7, duration=2160))
    await wait_until(lambda: calls(hass)[0]["duration"] == 2160)
    await hass.async_block_till_done()
    listed = calls(hass)
    assert len(listed) == len(before) == 2
    assert listed[1] == before[1]
    assert (listed[0]["number"], listed[0]["direction"], listed[0]["result"]) == (
        "+79037654321",
        "incoming",
        "success",
    )
    assert len(logged) == 2  # one logbook line per call
    assert hass.states.get(RECENT).state == "2"

    # Completed, it is no longer waiting for its end, after a second restart
    # neither; a call of its own is listed as usual.
    tracker = entry.runtime_data.coordinator.primary.tracker
    assert tracker.expired_calls() == []
    assert await hass.config_entries.async_reload(entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    await hass.async_block_till_done()
    assert calls(hass) == listed
    assert entry.runtime_data.coordinator.primary.tracker.expired_calls() == []
    emulator.emit("call_end", end(8, duration=5))
    await wait_until(lambda: len(logged) == 3)
    await hass.async_block_till_done()
    assert [c["duration"] for c in calls(hass)] == [5, 2160, 124]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_completed_expired_call_keeps_its_place_and_time(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    entry, _, expired = await expired_then_restarted(hass, emulator, freezer)
    freezer.tick(timedelta(minutes=20))
    await answered(hass, emulator, 2)  # a newer call, listed above it
    freezer.tick(timedelta(minutes=20))
    emulator.emit("call_end", end(7, duration=2400))
    await wait_until(lambda: calls(hass)[1]["duration"] == 2400)
    listed = calls(hass)
    # Still newest first: the completed entry keeps the time it expired at.
    assert listed[1]["time"] == expired["time"]
    assert [c["time"] for c in listed] == sorted(
        (c["time"] for c in listed), reverse=True
    )
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_late_end_of_a_call_dropped_for_too_many_open_is_listed(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    """The oldest open call gives way quietly; its end lists it, once."""
    logged = async_capture_events(hass, EVENT_SPRECORD_LOG)
    tracker = setup_entry.runtime_data.coordinator.primary.tracker
    for call_id in range(1, MAX_ACTIVE_CALLS + 2):
        emulator.emit("incoming_call", call(call_id))
    await wait_until(lambda: str(MAX_ACTIVE_CALLS + 1) in tracker.active)
    assert "1" not in tracker.active
    emulator.emit("call_end", end(1, "busy"))
    await wait_until(lambda: len(logged) == 1)
    await hass.async_block_till_done()
    [listed] = calls(hass)
    assert (listed["number"], listed["result"]) == ("+79161234567", "missed")


async def test_after_a_pbx_restart_an_old_id_cannot_complete_an_old_entry(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    """A call ended by the PBX's restart is not completed by a new call 1."""
    tracker = setup_entry.runtime_data.coordinator.primary.tracker
    emulator.emit("incoming_call", call(1, src="+71111111111"))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.emit("startup")
    await wait_for_state(hass, CALL_STATE, "idle")
    emulator.emit("incoming_call", call(1, src="+72222222222"))
    for call_id in range(2, MAX_ACTIVE_CALLS + 2):
        emulator.emit("incoming_call", call(call_id))
    await wait_until(lambda: str(MAX_ACTIVE_CALLS + 1) in tracker.active)
    emulator.emit("call_end", end(1, "busy"))
    await wait_until(lambda: len(calls(hass)) == 2)
    await hass.async_block_till_done()
    assert [(c["number"], c["result"]) for c in calls(hass)] == [
        ("+72222222222", "missed"),
        ("+71111111111", "unknown"),
    ]


async def test_a_reused_call_id_long_after_the_expiry_is_a_call_of_its_own(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    entry, logged, expired = await expired_then_restarted(hass, emulator, freezer)

    # The PBX restarted unseen and counts call ids from 1 again: an end with
    # the expired call's id, longer after its expiry than a late end may
    # come, is another call's.
    freezer.tick(FINISHED_CALL_MEMORY + timedelta(minutes=1))
    emulator.emit("call_end", end(7, duration=60))
    await wait_until(lambda: len(logged) == 3)
    await hass.async_block_till_done()
    listed = calls(hass)
    assert len(listed) == 3
    assert (listed[0]["direction"], listed[0]["duration"]) == ("unknown", 60)
    assert listed[1] == expired  # left as it was
    assert await hass.config_entries.async_unload(entry.entry_id)


def saved_expired(call_id: str, ended: datetime, **overrides: Any) -> dict[str, Any]:
    """Return an expired call as a PBX saves it."""
    return {
        "call_id": call_id,
        "direction": "incoming",
        "state": "idle",
        "caller": f"+7903000000{call_id}",
        "called": "101",
        "line": "GSM1",
        "started": (ended - timedelta(minutes=5)).isoformat(),
        "ended": ended.isoformat(),
        "listed": None,
        **overrides,
    }


def listed_entry(ended: datetime, number: str) -> dict[str, Any]:
    """Return an entry of the call list of an expired call."""
    return {"time": ended.isoformat(), "direction": "incoming", "number": number}


async def test_saved_expired_calls_are_taken_back_with_care(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    fast_link: None,
) -> None:
    now = dt_util.utcnow()
    first, second = now - timedelta(minutes=10), now - timedelta(minutes=9)
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": STORAGE_VERSION,
        "minor_version": 2,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {
            "recent_calls": [
                listed_entry(second, "+79030000006"),
                listed_entry(first, "+79030000005"),
            ],
            "expired_calls": [
                "no call",
                saved_expired("5", first, listed=1),
                # Its position names another call's entry: not linked.
                saved_expired("6", second, listed=1),
                saved_expired("7", second, listed=5),  # out of the list
                saved_expired("8", second.replace(tzinfo=None)),  # naive
                saved_expired("bad\nid", second),
            ],
            "others": [],
        },
    }
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    tracker = config_entry.runtime_data.coordinator.primary.tracker
    assert [c.call_id for c in tracker.expired_calls()] == ["5", "6", "7"]
    logged = async_capture_events(hass, EVENT_SPRECORD_LOG)
    before = calls(hass)

    # Only the linked call's entry learns how it ended. A call whose entry
    # cannot be told is listed and logged with its end (rather than lose
    # the end); an unreadable saved call was not taken back, so its end is
    # a new call.
    for call_id in ("5", "6", "7", "8"):
        emulator.emit("call_end", end(call_id, duration=int(call_id)))
    await wait_until(lambda: tracker.last_call and tracker.last_call.call_id == "8")
    await hass.async_block_till_done()
    listed = calls(hass)
    assert [(c["number"], c["duration"]) for c in listed] == [
        (None, 8),
        ("+79030000007", 7),
        ("+79030000006", 6),
        ("+79030000006", None),
        ("+79030000005", 5),
    ]
    assert listed[3] == before[0]
    assert len(logged) == 3
    assert tracker.expired_calls() == []
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def test_saved_expired_calls_that_are_no_list_are_ignored(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    fast_link: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    listed = listed_entry(dt_util.utcnow(), "+79030000005")
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": STORAGE_VERSION,
        "minor_version": 2,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {"recent_calls": [listed], "expired_calls": 5, "others": []},
    }
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    assert calls(hass)[0]["number"] == "+79030000005"
    assert config_entry.runtime_data.coordinator.primary.tracker.expired_calls() == []
    assert "unreadable" not in caplog.text
    assert await hass.config_entries.async_unload(config_entry.entry_id)


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
