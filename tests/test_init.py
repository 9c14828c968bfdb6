"""Setup, restart, options, device removal and entry removal."""

from __future__ import annotations

from typing import Any

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord.const import (
    CONF_CALL_TIMEOUT,
    CONF_DEVICE_ID,
    CONF_TRANSPORT,
    DOMAIN,
    TRANSPORT_SSE,
)
from custom_components.sprecord.storage import STORAGE_VERSION
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import (
    device_with,
    has_device,
    open_settings,
    remove_device,
    wait_for_sms,
    wait_for_state,
    wait_until,
)
from .test_states import (
    CALL_STATE,
    GSM1,
    GSM2,
    LAST_DURATION,
    LAST_RESULT,
    LAST_SMS,
    MISSED,
    call,
    end,
)

SMS = {"sms_src": "+79031234567", "text": "Привет", "trunk": "GSM2", "date": None}


async def reload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Reload the entry as a restart would: unload, then set up again."""
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()


async def test_restart_restores_last_call_missed_and_sms_not_active_calls(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    emulator.emit("incoming_call", call(1, src="+70000000001"))
    emulator.emit("call_end", end(1, status="no_answer"))
    emulator.emit("incoming_call", call(2, trunk="GSM1"))
    emulator.emit("start_talk", call(2, trunk="GSM1"))
    emulator.emit("incoming_sms", SMS)
    await wait_for_sms(hass, LAST_SMS, "Привет")
    await wait_for_state(hass, CALL_STATE, "talking")

    await reload(hass, setup_entry)
    await wait_until(lambda: emulator.open_streams() == 1)
    saved = hass_storage[f"{DOMAIN}.{setup_entry.entry_id}"]
    assert saved["version"] == STORAGE_VERSION
    assert hass.states.get(MISSED).state == "1"
    assert hass.states.get(MISSED).attributes["last_caller"] == "+70000000001"
    assert hass.states.get(LAST_RESULT).state == "no_answer"
    assert hass.states.get(LAST_DURATION).state == "0"
    sms = hass.states.get(LAST_SMS)
    assert dt_util.parse_datetime(sms.state) is not None  # when it came
    assert sms.attributes["sender"] == "+79031234567"
    assert sms.attributes["text"] is None  # an SMS's text is never saved
    # The call that was talking is not resurrected: its end may never come.
    assert hass.states.get(CALL_STATE).state == "idle"
    # Lines seen before the restart are there at once.
    assert hass.states.get(GSM1).state == "idle"
    assert hass.states.get(GSM2).state == "idle"


async def test_start_with_nothing_saved_is_unknown(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    assert hass.states.get(LAST_SMS).state == STATE_UNKNOWN
    assert hass.states.get(LAST_RESULT).state == STATE_UNKNOWN
    assert hass.states.get(MISSED).state == "0"
    assert hass.states.get(GSM1) is None


async def test_unreadable_saved_state_is_ignored(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    fast_link: None,
) -> None:
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": STORAGE_VERSION,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {"missed_count": "many", "last_call": {"nope": 1}},
    }
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    assert hass.states.get(MISSED).state == "0"
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_pbx_id_is_learned_from_the_first_event(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    assert CONF_DEVICE_ID not in setup_entry.data
    emulator.emit("startup")
    await wait_until(lambda: setup_entry.data.get(CONF_DEVICE_ID) == DEFAULT_DEVICE_ID)
    emulator.emit("startup")  # the same id: nothing to update, no reload
    await wait_until(
        lambda: setup_entry.runtime_data.link.stats.events_by_type["startup"] == 2
    )
    assert emulator.stats.connects == 1


async def test_options_change_reloads_with_the_new_call_timeout(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    result = await open_settings(hass, setup_entry)
    await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 30}
    )
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.stats.connects == 2)
    tracker = setup_entry.runtime_data.tracker
    assert tracker.call_timeout.total_seconds() == 30 * 60

    # The same options again: nothing to reload.
    result = await open_settings(hass, setup_entry)
    await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 30}
    )
    await hass.async_block_till_done()
    assert emulator.stats.connects == 2
    assert setup_entry.runtime_data.tracker is tracker


async def test_data_changes_by_the_integration_do_not_reload(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    tracker = setup_entry.runtime_data.tracker
    hass.config_entries.async_update_entry(
        setup_entry, data={**setup_entry.data, CONF_DEVICE_ID: "another"}
    )
    await hass.async_block_till_done()
    assert emulator.stats.connects == 1
    assert setup_entry.runtime_data.tracker is tracker


async def test_a_line_can_be_removed_and_comes_back_when_used(
    hass: HomeAssistant,
    hass_ws_client: Any,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    assert await async_setup_component(hass, "config", {})
    emulator.emit("incoming_call", call(1, trunk="GSM1"))
    await wait_for_state(hass, GSM1, "ringing")
    line = device_with(hass, (DOMAIN, f"{setup_entry.unique_id}_line_GSM1"))
    pbx = device_with(hass, (DOMAIN, setup_entry.unique_id))
    client = await hass_ws_client(hass)

    assert not await remove_device(
        client, setup_entry.entry_id, pbx.id
    )  # the PBX stays while the entry does
    assert await remove_device(client, setup_entry.entry_id, line.id)
    await hass.async_block_till_done()
    assert entity_registry.async_get(GSM1) is None
    assert "GSM1" not in setup_entry.runtime_data.tracker.lines

    emulator.emit("call_end", end(1))
    emulator.emit("incoming_call", call(2, trunk="GSM1"))
    await wait_for_state(hass, GSM1, "ringing")
    assert has_device(hass, (DOMAIN, f"{setup_entry.unique_id}_line_GSM1"))


async def test_removing_the_entry_deletes_its_saved_state(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    emulator.emit("incoming_sms", SMS)
    await wait_for_sms(hass, LAST_SMS, "Привет")
    await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert f"{DOMAIN}.{setup_entry.entry_id}" not in hass_storage
    await wait_until(lambda: emulator.open_streams() == 0)


async def test_restart_keeps_an_sms_date_as_it_came(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    for text, date in (("a", "вчера вечером"), ("b", "2026-11-27T10:15:00+03:00")):
        emulator.emit("incoming_sms", {**SMS, "text": text, "date": date})
        await wait_for_sms(hass, LAST_SMS, text)
        await reload(hass, setup_entry)
        await wait_until(lambda: emulator.open_streams() == 1)
        assert hass.states.get(LAST_SMS).attributes["date"] == date
