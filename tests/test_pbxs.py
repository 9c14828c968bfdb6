"""Several PBXs on one account: a device, calls and lines per PBX."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.sprecord.const import CONF_DEVICE_ID, DOMAIN, EVENT_SPRECORD
from custom_components.sprecord.ids import pbx_key
from custom_components.sprecord.storage import STORAGE_VERSION
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import (
    device_with,
    has_device,
    remove_device,
    wait_for_sms,
    wait_for_state,
    wait_until,
)
from .test_states import CALL_STATE, GSM1, LAST_SMS, MISSED, call, end

B = "K2xPq9Vd0aZr+Lm4Tt8Wc1Yb7Ue3Ns6Hf5Jg0Qi2Ro9="
"""The second office's PBX (the first is the emulator's default)."""
B_CALL_STATE = "sensor.sprecord_minipbx_2_call_state"
B_MISSED = "sensor.sprecord_minipbx_2_missed_calls"
B_LAST_SMS = "sensor.sprecord_minipbx_2_last_sms"
B_GSM1 = "sensor.line_gsm1_of_sprecord_minipbx_2_state"


async def test_two_pbxs_with_the_same_call_id_and_line_name(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = async_capture_events(hass, EVENT_SPRECORD)
    emulator.emit("incoming_call", call(8, src="+79160000001", trunk="GSM1"))
    emulator.emit(
        "incoming_call", call(8, src="+79160000002", trunk="GSM1"), device_id=B
    )
    await wait_for_state(hass, CALL_STATE, "ringing")
    await wait_for_state(hass, B_CALL_STATE, "ringing")
    assert "Another PBX of the SpRecord account sent events" in caplog.text
    # Each PBX has its own caller, line GSM1 and device.
    assert hass.states.get(CALL_STATE).attributes["caller"] == "+79160000001"
    assert hass.states.get(B_CALL_STATE).attributes["caller"] == "+79160000002"
    await wait_for_state(hass, GSM1, "ringing")
    await wait_for_state(hass, B_GSM1, "ringing")
    first = device_with(hass, (DOMAIN, str(setup_entry.unique_id)))
    second_id = f"{setup_entry.unique_id}_pbx_{pbx_key(B)}"
    second = device_with(hass, (DOMAIN, second_id))
    assert second.name == "SpRecord MiniPBX 2"
    assert first.id != second.id
    line_a = device_with(hass, (DOMAIN, f"{setup_entry.unique_id}_line_GSM1"))
    line_b = device_with(hass, (DOMAIN, f"{second_id}_line_GSM1"))
    assert line_a.via_device_id == first.id
    assert line_b.via_device_id == second.id
    # The bus event names the PBX device that sent it.
    assert [(e.data["device_id"], e.data["pbx_id"]) for e in bus] == [
        (first.id, DEFAULT_DEVICE_ID),
        (second.id, B),
    ]

    # Ending A's call 8 leaves B's call 8 ringing.
    emulator.emit("call_end", end(8, status="no_answer"))
    await wait_for_state(hass, CALL_STATE, "idle")
    await wait_for_state(hass, MISSED, "1")
    assert hass.states.get(B_CALL_STATE).state == "ringing"
    assert hass.states.get(B_MISSED).state == "0"
    # A's startup ends only A's calls.
    emulator.emit("incoming_call", call(9, trunk="GSM2"))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.emit("startup")
    await wait_for_state(hass, CALL_STATE, "idle")
    assert hass.states.get(B_CALL_STATE).state == "ringing"
    # The last SMS is per PBX too.
    emulator.emit(
        "incoming_sms", {"sms_src": "X", "text": "to B", "trunk": "GSM1"}, device_id=B
    )
    await wait_for_sms(hass, B_LAST_SMS, "to B")
    assert hass.states.get(LAST_SMS).state == "unknown"
    # The entry keeps its first PBX's id; the second does not rewrite it.
    assert setup_entry.data[CONF_DEVICE_ID] == DEFAULT_DEVICE_ID


async def test_a_second_pbx_is_kept_across_restarts_and_can_be_removed(
    hass: HomeAssistant,
    hass_ws_client: Any,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    assert await async_setup_component(hass, "config", {})
    emulator.emit("startup")  # the first PBX to send is the entry's first
    emulator.emit("incoming_call", call(1), device_id=B)
    emulator.emit("call_end", end(1, status="busy"), device_id=B)
    await wait_for_state(hass, B_MISSED, "1")

    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 1)
    # Back before any event: the device, its entities and saved state.
    assert hass.states.get(B_MISSED).state == "1"
    assert hass.states.get(B_CALL_STATE).state == "idle"

    second_id = (DOMAIN, f"{setup_entry.unique_id}_pbx_{pbx_key(B)}")
    second = device_with(hass, second_id)
    first = device_with(hass, (DOMAIN, str(setup_entry.unique_id)))
    client = await hass_ws_client(hass)

    assert not await remove_device(
        client, setup_entry.entry_id, first.id
    )  # the first PBX stays while the entry does
    assert await remove_device(client, setup_entry.entry_id, second.id)
    await hass.async_block_till_done()
    assert not has_device(hass, second_id)
    assert entity_registry.async_get(B_CALL_STATE) is None
    # Its line went with it (Home Assistant only unlinks sub-devices).
    assert not has_device(hass, (DOMAIN, f"{second_id[1]}_line_GSM1"))
    assert entity_registry.async_get(B_GSM1) is None
    # It comes back when it sends again, with a fresh count, and its line.
    emulator.emit("incoming_call", call(2), device_id=B)
    await wait_until(lambda: has_device(hass, second_id))
    await wait_for_state(hass, B_GSM1, "ringing")
    await hass.async_block_till_done()
    states = [
        s for s in hass.states.async_all("sensor") if s.entity_id.endswith("call_state")
    ]
    assert sorted(s.state for s in states) == ["idle", "ringing"]


async def test_an_entry_of_the_single_pbx_format_keeps_its_entities(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """An entry and store written before accounts could have several PBXs."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, CONF_DEVICE_ID: DEFAULT_DEVICE_ID}
    )
    unique = str(config_entry.unique_id)
    device = device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id, identifiers={(DOMAIN, unique)}
    )
    for platform, key, object_id in [
        ("sensor", "missed_calls", "sprecord_minipbx_missed_calls"),
        ("sensor", "call_state", "sprecord_minipbx_call_state"),
        ("sensor", "last_sms", "sprecord_minipbx_last_sms"),
    ]:
        entity_registry.async_get_or_create(
            platform,
            DOMAIN,
            f"{unique}_{key}",
            suggested_object_id=object_id,
            config_entry=config_entry,
            device_id=device.id,
        )
    entity_registry.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{unique}_line_GSM7_line_state",
        suggested_object_id="line_gsm7_state",
        config_entry=config_entry,
    )
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": STORAGE_VERSION,
        "minor_version": 1,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {
            "missed_count": 4,
            "last_call": None,
            "last_missed": None,
            "lines": ["GSM7"],
            "last_sms": {
                "text": "Привет",
                "sender": "+79031234567",
                "line": "GSM7",
                "date": None,
                "received": "2026-11-01T10:00:00+00:00",
            },
        },
    }

    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(MISSED).state == "4"
    # Who wrote and when; the text of an older version's save is not kept.
    assert hass.states.get(LAST_SMS).state == "2026-11-01T10:00:00+00:00"
    assert hass.states.get(LAST_SMS).attributes["sender"] == "+79031234567"
    assert hass.states.get(LAST_SMS).attributes["text"] is None
    assert hass.states.get("sensor.line_gsm7_state").state == "idle"
    ours = er.async_entries_for_config_entry(entity_registry, config_entry.entry_id)
    assert not [e for e in ours if e.entity_id.endswith("_2")]  # nothing renamed
    emulator.emit("incoming_call", call(1, trunk="GSM7"))
    await wait_for_state(hass, "sensor.line_gsm7_state", "ringing")
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    saved = hass_storage[f"{DOMAIN}.{config_entry.entry_id}"]
    assert saved["minor_version"] == 2
    assert saved["data"]["missed_count"] == 4  # where an older version reads it
    assert saved["data"]["pbx_id"] == DEFAULT_DEVICE_ID
    assert saved["data"]["others"] == []


async def test_pbx_devices_can_be_removed_while_the_entry_is_not_loaded(
    hass: HomeAssistant,
    hass_ws_client: Any,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "config", {})
    emulator.emit("incoming_call", call(1, trunk="GSM1"))
    emulator.emit("incoming_call", call(1, trunk="GSM3"), device_id=B)
    await wait_for_state(hass, B_CALL_STATE, "ringing")
    await wait_for_state(
        hass, "sensor.line_gsm3_of_sprecord_minipbx_2_state", "ringing"
    )
    second_id = f"{setup_entry.unique_id}_pbx_{pbx_key(B)}"
    second = device_with(hass, (DOMAIN, second_id))
    line_a = device_with(hass, (DOMAIN, f"{setup_entry.unique_id}_line_GSM1"))
    first = device_with(hass, (DOMAIN, str(setup_entry.unique_id)))
    emulator.fail_streams(500, count=100)
    await hass.config_entries.async_reload(setup_entry.entry_id)
    assert setup_entry.state is ConfigEntryState.SETUP_RETRY
    client = await hass_ws_client(hass)

    assert not await remove_device(client, setup_entry.entry_id, first.id)
    assert await remove_device(client, setup_entry.entry_id, second.id)
    assert not has_device(hass, (DOMAIN, f"{second_id}_line_GSM3"))  # with it
    assert await remove_device(client, setup_entry.entry_id, line_a.id)
    emulator.clear_failures()
    await hass.config_entries.async_reload(setup_entry.entry_id)
    assert setup_entry.state is ConfigEntryState.LOADED
    assert not has_device(hass, (DOMAIN, second_id))
    assert list(setup_entry.runtime_data.coordinator.pbxs) == [DEFAULT_DEVICE_ID]
    assert "GSM1" not in setup_entry.runtime_data.tracker.lines
