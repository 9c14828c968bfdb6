"""Events from the emulator drive the entities, end to end over real SSE."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.sprecord import expiry
from custom_components.sprecord.const import DOMAIN, EVENT_SPRECORD
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import device_with, wait_for_sms, wait_for_state, wait_until


@pytest.fixture(autouse=True)
def _all_entities(entity_registry_enabled_by_default: None) -> None:
    """Enable every entity, also those disabled by default (active calls)."""


CALL_STATE = "sensor.sprecord_minipbx_call_state"
ACTIVE_CALLS = "sensor.sprecord_minipbx_active_calls"
LAST_RESULT = "sensor.sprecord_minipbx_last_call_result"
LAST_DURATION = "sensor.sprecord_minipbx_last_call_duration"
MISSED = "sensor.sprecord_minipbx_missed_calls"
LAST_SMS = "sensor.sprecord_minipbx_last_sms"
CALL_EVENT = "event.sprecord_minipbx_call"
SMS_EVENT = "event.sprecord_minipbx_sms"
PBX_EVENT = "event.sprecord_minipbx_pbx"
GSM1 = "sensor.line_gsm1_state"
GSM2 = "sensor.line_gsm2_state"


def call(
    call_id: int | str,
    src: str = "+79161234567",
    dst: str = "101",
    trunk: str = "GSM1",
) -> dict[str, Any]:
    """Return the payload of a call start or answer."""
    return {"call_id": call_id, "call_src": src, "call_dst": dst, "trunk": trunk}


def end(
    call_id: int | str, status: str = "success", duration: int = 0
) -> dict[str, Any]:
    """Return the payload of a call end."""
    return {"call_id": call_id, "record_id": 77, "duration": duration, "status": status}


def state(hass: HomeAssistant, entity_id: str) -> str:
    """Return an entity's state."""
    current = hass.states.get(entity_id)
    assert current is not None, entity_id
    return current.state


async def test_incoming_call_rings_then_talks_then_ends(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    assert state(hass, CALL_STATE) == "idle"
    emulator.emit("incoming_call", call(8))
    ringing = await wait_for_state(hass, CALL_STATE, "ringing")
    assert ringing.attributes["caller"] == "+79161234567"
    assert ringing.attributes["line"] == "GSM1"
    assert ringing.attributes["called"] == "101"
    assert ringing.attributes["direction"] == "incoming"
    assert state(hass, ACTIVE_CALLS) == "1"
    assert state(hass, GSM1) == "ringing"

    emulator.emit("start_talk", call(8))
    await wait_for_state(hass, CALL_STATE, "talking")
    assert state(hass, GSM1) == "talking"

    emulator.emit("call_end", end("8", duration=42))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert state(hass, ACTIVE_CALLS) == "0"
    assert state(hass, GSM1) == "idle"
    result = hass.states.get(LAST_RESULT)
    assert result is not None
    assert result.state == "success"
    assert result.attributes["caller"] == "+79161234567"
    assert result.attributes["record_id"] == 77
    assert state(hass, LAST_DURATION) == "42"
    assert state(hass, MISSED) == "0"


async def test_outgoing_call_dials(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.emit("outgoing_call", call(3, src="103", dst="+74951234567"))
    dialing = await wait_for_state(hass, CALL_STATE, "dialing")
    assert dialing.attributes["direction"] == "outgoing"
    assert dialing.attributes["called"] == "+74951234567"


async def test_two_overlapping_calls_keep_the_pbx_busy_until_both_end(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.emit("incoming_call", call(1, trunk="GSM1"))
    emulator.emit("start_talk", call(1, trunk="GSM1"))
    await wait_for_state(hass, GSM1, "talking")
    emulator.emit("incoming_call", call(2, src="+79990000000", trunk="GSM2", dst="104"))
    both = await wait_for_state(hass, CALL_STATE, "ringing")
    assert both.attributes["call_id"] == "2"  # the most recent call is shown
    assert [c["call_id"] for c in both.attributes["active_calls"]] == ["2", "1"]
    assert state(hass, ACTIVE_CALLS) == "2"
    assert state(hass, GSM2) == "ringing"

    emulator.emit("start_talk", call(2, trunk="GSM2"))
    emulator.emit("call_end", end(2, duration=5))
    await wait_for_state(hass, GSM2, "idle")
    assert state(hass, CALL_STATE) == "talking"  # GSM1 still talks
    assert state(hass, ACTIVE_CALLS) == "1"

    emulator.emit("call_end", end(1, duration=60))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert state(hass, GSM1) == "idle"


async def test_missed_calls_count_and_fire_missed_call(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    changes = async_capture_events(hass, "state_changed")
    emulator.emit("incoming_call", call(5, src="+70000000001"))
    emulator.emit("call_end", end(5, status="no_answer"))
    await wait_for_state(hass, MISSED, "1")
    emulator.emit("incoming_call", call(6, src="+70000000002", trunk="GSM2"))
    emulator.emit("call_end", end(6, status="busy"))
    missed = await wait_for_state(hass, MISSED, "2")
    assert missed.attributes["last_caller"] == "+70000000002"
    assert missed.attributes["last_line"] == "GSM2"
    # An outgoing call nobody answers is not a missed call.
    emulator.emit("outgoing_call", call(7, src="101", dst="+70000000003"))
    emulator.emit("call_end", end(7, status="no_answer"))
    await wait_for_state(hass, LAST_RESULT, "no_answer")
    assert state(hass, MISSED) == "2"
    fired = [
        (
            e.data["new_state"].attributes["event_type"],
            e.data["new_state"].attributes["caller"],
        )
        for e in changes
        if e.data["entity_id"] == CALL_EVENT
    ]
    assert fired == [
        ("incoming_call", "+70000000001"),
        ("call_end", "+70000000001"),
        ("missed_call", "+70000000001"),
        ("incoming_call", "+70000000002"),
        ("call_end", "+70000000002"),
        ("missed_call", "+70000000002"),
        ("outgoing_call", "101"),
        ("call_end", "101"),
    ]


async def test_answer_elsewhere_names_the_extension(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.emit("incoming_call", call(9, dst="105"))
    emulator.emit("answer_elsewhere", {"call_id": "9", "number": "107"})
    await wait_until(
        lambda: hass.states.get(CALL_STATE).attributes.get("answered_by") == "107"
    )
    event = hass.states.get(CALL_EVENT)
    assert event is not None
    assert event.attributes["event_type"] == "answer_elsewhere"
    assert event.attributes["number"] == "107"
    assert event.attributes["caller"] == "+79161234567"


async def test_russian_sms_reaches_sensor_event_entity_and_bus(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    bus = async_capture_events(hass, EVENT_SPRECORD)
    text = "Добрый день! Ваш заказ №4512 готов к выдаче. " * 10  # over 255 chars
    emulator.emit(
        "incoming_sms",
        {
            "sms_src": "+79031234567",
            "text": text,
            "trunk": "GSM2",
            "date": "2026-11-27T10:15:00+03:00",
        },
    )
    await wait_until(lambda: state(hass, LAST_SMS) != STATE_UNKNOWN)
    sms = hass.states.get(LAST_SMS)
    assert sms is not None
    # When it came, not what it says.
    assert dt_util.parse_datetime(sms.state) == dt_util.parse_datetime(
        sms.attributes["received"]
    ).replace(microsecond=0)
    assert sms.attributes["text"] == text
    assert sms.attributes["sender"] == "+79031234567"
    assert sms.attributes["line"] == "GSM2"
    assert sms.attributes["date"] == "2026-11-27T10:15:00+03:00"
    event = hass.states.get(SMS_EVENT)
    assert event is not None
    assert event.attributes["event_type"] == "incoming_sms"
    assert event.attributes["text"] == text
    assert [e.data["event_type"] for e in bus] == ["incoming_sms"]
    # The bus event (recorded) leaves the text out.
    assert bus[0].data["payload"]["sms_src"] == "+79031234567"
    assert "text" not in bus[0].data["payload"]
    assert bus[0].data["pbx_id"] == DEFAULT_DEVICE_ID
    assert bus[0].data["config_entry_id"] == setup_entry.entry_id
    # An SMS line appears as a line device too.
    await wait_for_state(hass, GSM2, "idle")


async def test_every_event_goes_on_the_bus_unknown_types_too(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    bus = async_capture_events(hass, EVENT_SPRECORD)
    emulator.emit("startup")
    emulator.emit("incoming_call", call(1))
    emulator.emit("voicemail_left", {"box": "101", "seconds": 12})
    emulator.emit("call_end", end(1))
    await wait_until(lambda: len(bus) == 4)
    assert [e.data["event_type"] for e in bus] == [
        "startup",
        "incoming_call",
        "voicemail_left",
        "call_end",
    ]
    assert bus[2].data["payload"] == {"box": "101", "seconds": 12}
    # Diagnostics count types by name, within a bound whatever the server sends.
    for number in range(40):
        emulator.emit(f"future_type_{number}")
    stats = setup_entry.runtime_data.link.stats
    await wait_until(lambda: sum(stats.events_by_type.values()) == 44)
    assert len(stats.events_by_type) == 33
    assert stats.events_by_type["(other types)"] == 12
    device = device_with(hass, (DOMAIN, setup_entry.unique_id))
    assert device is not None
    assert {e.data["device_id"] for e in bus} == {device.id}
    pbx = hass.states.get(PBX_EVENT)
    assert pbx is not None
    assert pbx.attributes["event_type"] == "startup"


async def test_malformed_event_is_skipped_and_the_stream_stays(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    caplog: Any,
) -> None:
    emulator.emit_raw(b"data: {broken\r\n\r\n")
    emulator.emit("incoming_call", {"call_src": "+7"})  # no call_id: unusable
    emulator.emit_raw(b"data: [1]\r\n\r\n")
    emulator.emit("incoming_call", call(2))
    await wait_for_state(hass, CALL_STATE, "ringing")
    warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 3
    assert [r.levelname for r in warnings] == ["WARNING", "DEBUG", "DEBUG"]
    assert "demo" not in caplog.text  # never the key
    assert emulator.stats.connects == 1  # the stream stayed up


async def test_unfinished_call_expires(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    # Time is frozen before the entry is set up, and the stream is not timed
    # out while the clock jumps by hours.
    emulator.emit("incoming_call", call(1, trunk="GSM1"))
    emulator.emit("start_talk", call(1, trunk="GSM1"))
    emulator.emit("incoming_call", call(2, trunk="GSM2"))  # rings, end never comes
    await wait_for_state(hass, CALL_STATE, "ringing")
    freezer.tick(timedelta(minutes=11))
    async_fire_time_changed(hass)
    await wait_for_state(hass, CALL_STATE, "talking")  # ringing expired first
    assert state(hass, GSM2) == "idle"
    freezer.tick(timedelta(hours=3))
    async_fire_time_changed(hass)
    await wait_for_state(hass, CALL_STATE, "idle")
    assert state(hass, GSM1) == "idle"
    assert state(hass, MISSED) == "0"  # an expired call is not a missed one


async def test_a_busy_line_sets_one_expiry_timer_and_an_early_one_ends_nothing(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    """Each new call expires later than the one before: one timer serves them.

    It fires when the first call would have expired; that call ended, so it
    ends nothing and writes no state, and the next timer is set for the call
    still ringing, which then expires on time.
    """
    timers: list[Any] = []
    real = expiry.async_track_point_in_utc_time

    def counted(hass: HomeAssistant, action: Any, when: Any) -> Any:
        timers.append(when)
        return real(hass, action, when)

    with patch.object(expiry, "async_track_point_in_utc_time", counted):
        for call_id in range(1, 21):
            emulator.emit("incoming_call", call(call_id))
            emulator.emit("call_end", end(call_id, status="no_answer"))
        await wait_for_state(hass, MISSED, "20")
        freezer.tick(timedelta(minutes=5))
        emulator.emit("incoming_call", call(21, trunk="GSM2"))
        await wait_for_state(hass, CALL_STATE, "ringing")
        assert len(timers) == 1  # the first call's: earlier than any after it
        written = async_capture_events(hass, "state_changed")
        freezer.tick(timedelta(minutes=5, seconds=1))  # the first call's expiry
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
        assert state(hass, CALL_STATE) == "ringing"
        assert [
            e.data["entity_id"] for e in written if "sprecord" in e.data["entity_id"]
        ] == []
        assert len(timers) == 2  # now for call 21
        assert timers[1] == timers[0] + timedelta(minutes=5)
        freezer.tick(timedelta(minutes=5))
        async_fire_time_changed(hass)
        await wait_for_state(hass, CALL_STATE, "idle")
    assert state(hass, GSM2) == "idle"


async def test_lines_become_sub_devices_of_the_pbx(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    emulator.emit("incoming_call", call(1, trunk="GSM1"))
    await wait_for_state(hass, GSM1, "ringing")
    pbx = device_with(hass, (DOMAIN, setup_entry.unique_id))
    line = device_with(hass, (DOMAIN, f"{setup_entry.unique_id}_line_GSM1"))
    assert pbx is not None
    assert line is not None
    assert line.via_device_id == pbx.id
    assert line.name == "Line GSM1"
    entry = entity_registry.async_get(GSM1)
    assert entry is not None
    assert entry.device_id == line.id


async def test_a_new_user_sets_up_from_the_flow_and_sees_the_pbx(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    fast_link: None,
    device_registry: dr.DeviceRegistry,
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": "user"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": emulator.url, "api_key": "demo"}
    )
    entry = result["result"]
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 1)
    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert [d.name for d in devices] == ["SpRecord MiniPBX"]  # no line yet

    emulator.emit("incoming_call", call(1, trunk="GSM1"))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.emit(
        "incoming_sms", {"sms_src": "BANK", "text": "Код 1234", "trunk": "GSM2"}
    )
    await wait_for_sms(hass, LAST_SMS, "Код 1234")
    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert sorted(d.name for d in devices) == [
        "Line GSM1",
        "Line GSM2",
        "SpRecord MiniPBX",
    ]
    assert await hass.config_entries.async_unload(entry.entry_id)
