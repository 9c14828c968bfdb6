"""The auto-dial actions find their one PBX from a target, through the registries."""

from __future__ import annotations

from typing import Any

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    floor_registry as fr,
    label_registry as lr,
)
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord.const import DOMAIN, SERVICE_RELOAD_PHONEBOOK
from emulator import SpRecordEmulator
from emulator.autodial import AutoDialEmulator

from .helpers import PBX_NAME, wait_until

ENDED = "event.sprecord_minipbx_auto_dial"
CALL_STATE = "sensor.sprecord_minipbx_call_state"
LINE_STATE = "sensor.line_gsm1_state"
SECOND_NAME = f"{PBX_NAME} 2"

pytestmark = pytest.mark.usefixtures("fast_polling")


async def start(hass: HomeAssistant, target: dict[str, Any]) -> dict[str, Any]:
    """Call `start_auto_dial` of the task `test` on `target`; return its answer."""
    response = await hass.services.async_call(
        DOMAIN,
        "start_auto_dial",
        {**target, "task": "test"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def refused(
    hass: HomeAssistant, target: dict[str, Any]
) -> ServiceValidationError:
    """Call `start_auto_dial` on `target`; return the error it is refused with."""
    with pytest.raises(ServiceValidationError) as caught:
        await start(hass, target)
    return caught.value


async def dials(
    hass: HomeAssistant, dialer: AutoDialEmulator, target: dict[str, Any]
) -> None:
    """Start the task on `target`; check the PBX ran it to its end."""
    response = await start(hass, target)
    assert response == {"task_id": dialer.task_id("test")}
    await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)
    assert dialer.stats.starts == 1


def pbx_device(entry: MockConfigEntry) -> str:
    """Return the device id of the entry's first PBX."""
    return str(entry.runtime_data.coordinator.primary.device_registry_id)


async def second_pbx(
    hass: HomeAssistant, emulator: SpRecordEmulator, entry: MockConfigEntry
) -> str:
    """Have a second PBX of the account send an event; return its device id."""
    coordinator = entry.runtime_data.coordinator
    emulator.emit("startup")
    emulator.emit("startup", device_id=emulator.add_pbx())
    await wait_until(
        lambda: (
            len(coordinator.all_pbxs) == 2
            and all(pbx.device_registry_id for pbx in coordinator.all_pbxs)
        )
    )
    [second] = [
        pbx.device_registry_id
        for pbx in coordinator.all_pbxs
        if pbx.device_registry_id != pbx_device(entry)
    ]
    return str(second)


async def line_device(
    hass: HomeAssistant, emulator: SpRecordEmulator, entry: MockConfigEntry
) -> dr.DeviceEntry:
    """Have a call come in on GSM1 of the first PBX; return the line's device."""
    emulator.emit(
        "incoming_call", {"call_id": 1, "call_src": "+79161234567", "trunk": "GSM1"}
    )
    await wait_until(lambda: hass.states.get(LINE_STATE) is not None)
    entity = er.async_get(hass).async_get(LINE_STATE)
    assert entity is not None
    assert entity.device_id is not None
    line = dr.async_get(hass).async_get(entity.device_id)
    assert line is not None
    assert line.via_device_id == pbx_device(entry)
    return line


async def asks_pbx(
    hass: HomeAssistant, dialer: AutoDialEmulator, target: dict[str, Any]
) -> None:
    """Ask the status of an unknown task on `target`; check the first PBX was asked."""
    asked = dialer.stats.requests
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "get_auto_dial_status",
            {**target, "task_id": 999},
            blocking=True,
            return_response=True,
        )
    # The PBX's auto-dial API was asked, and knows no such task.
    assert caught.value.translation_key == "auto_dial_not_found", target
    assert caught.value.translation_placeholders == {"pbx": PBX_NAME, "task": "999"}
    assert dialer.stats.requests == asked + 1


def stranger(hass: HomeAssistant) -> dr.DeviceEntry:
    """Return a device of another integration, with an entity."""
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "x")}
    )
    er.async_get(hass).async_get_or_create(
        "sensor", "other", "x", config_entry=other, device_id=device.id
    )
    return device


async def test_an_area_with_one_pbx_dials_from_it(
    hass: HomeAssistant, autodial_entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    office = ar.async_get(hass).async_create("Office")
    devices = dr.async_get(hass)
    devices.async_update_device(pbx_device(autodial_entry), area_id=office.id)
    # Other devices in the area are passed over.
    devices.async_update_device(stranger(hass).id, area_id=office.id)

    await dials(hass, dialer, {"area_id": office.id})


async def test_a_label_names_the_pbx(
    hass: HomeAssistant, autodial_entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    alarm = lr.async_get(hass).async_create("Alarm")
    # Labelled itself and in a labelled area: still one PBX.
    office = ar.async_get(hass).async_create("Office", labels={alarm.label_id})
    dr.async_get(hass).async_update_device(
        pbx_device(autodial_entry), area_id=office.id, labels={alarm.label_id}
    )

    await dials(hass, dialer, {"label_id": alarm.label_id})


async def test_an_entity_names_its_pbx(
    hass: HomeAssistant, autodial_entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    await asks_pbx(hass, dialer, {"entity_id": CALL_STATE})


async def test_an_entity_in_an_area_names_its_pbx(
    hass: HomeAssistant, autodial_entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    office = ar.async_get(hass).async_create("Office")
    # The entity is in the area; its device is in none.
    er.async_get(hass).async_update_entity(CALL_STATE, area_id=office.id)
    assert dr.async_get(hass).async_get(pbx_device(autodial_entry)).area_id is None

    await dials(hass, dialer, {"area_id": office.id})


async def test_a_label_on_an_entity_names_its_pbx(
    hass: HomeAssistant, autodial_entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    alarm = lr.async_get(hass).async_create("Alarm")
    er.async_get(hass).async_update_entity(CALL_STATE, labels={alarm.label_id})

    await dials(hass, dialer, {"label_id": alarm.label_id})


async def test_a_line_names_its_pbx(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    autodial_entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> None:
    line = await line_device(hass, emulator, autodial_entry)
    hall = ar.async_get(hass).async_create("Hall")
    dr.async_get(hass).async_update_device(line.id, area_id=hall.id)

    for target in (
        {"device_id": line.id},
        {"entity_id": LINE_STATE},
        # The line and its PBX: one PBX.
        {"entity_id": [LINE_STATE, CALL_STATE]},
        {"area_id": hall.id},
    ):
        await asks_pbx(hass, dialer, target)


async def test_a_target_with_two_pbxs_is_refused(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    autodial_entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> None:
    second = await second_pbx(hass, emulator, autodial_entry)
    areas = ar.async_get(hass)
    ground = fr.async_get(hass).async_create("Ground floor")
    office = areas.async_create("Office", floor_id=ground.floor_id)
    devices = dr.async_get(hass)
    for device_id in (pbx_device(autodial_entry), second):
        devices.async_update_device(device_id, area_id=office.id)

    for target in (
        {"area_id": office.id},
        {"floor_id": ground.floor_id},
        # A device named, another in an area: two PBXs all the same.
        {"device_id": second, "area_id": office.id},
    ):
        error = await refused(hass, target)
        assert error.translation_key == "several_pbxs"
        assert error.translation_placeholders == {
            "count": "2",
            "pbxs": f"{PBX_NAME}, {SECOND_NAME}",
        }
    assert str(error) == (
        f"The target holds 2 PBXs ({PBX_NAME}, {SECOND_NAME}), and the action "
        "works on one: choose one PBX device"
    )
    russian = await async_get_translations(hass, "ru", "exceptions", {DOMAIN})
    template = russian[f"component.{DOMAIN}.exceptions.several_pbxs.message"]
    assert template.format(**(error.translation_placeholders or {})) == (
        f"В цели 2 АТС ({PBX_NAME}, {SECOND_NAME}), а действие работает с одной: "
        "выберите одно устройство АТС."
    )
    assert dialer.stats.starts == 0

    # An area with one PBX's device and the other's entity.
    hall = areas.async_create("Hall")
    devices.async_update_device(second, area_id=hall.id)
    er.async_get(hass).async_update_entity(CALL_STATE, area_id=hall.id)
    error = await refused(hass, {"area_id": hall.id})
    assert error.translation_key == "several_pbxs"
    assert error.translation_placeholders == {
        "count": "2",
        "pbxs": f"{PBX_NAME}, {SECOND_NAME}",
    }
    # A line's entity names its PBX, as the user named its device.
    await line_device(hass, emulator, autodial_entry)
    devices.async_update_device(pbx_device(autodial_entry), name_by_user="Front desk")
    error = await refused(hass, {"device_id": second, "entity_id": LINE_STATE})
    assert error.translation_key == "several_pbxs"
    assert error.translation_placeholders == {
        "count": "2",
        "pbxs": f"Front desk, {SECOND_NAME}",
    }
    assert dialer.stats.starts == 0

    # The second PBX has no local address: named alone, it says so.
    error = await refused(hass, {"device_id": second})
    assert error.translation_key == "no_local_address"
    assert error.translation_placeholders == {"pbx": SECOND_NAME}


async def test_the_targets_an_action_cannot_use(
    hass: HomeAssistant, autodial_entry: MockConfigEntry
) -> None:
    device = pbx_device(autodial_entry)
    other = stranger(hass)
    hall = ar.async_get(hass).async_create("Hall")
    dr.async_get(hass).async_update_device(other.id, area_id=hall.id)
    # An entity of no device, in the hall.
    er.async_get(hass).async_get_or_create(
        "sensor", "other", "loose", suggested_object_id="loose"
    )
    er.async_get(hass).async_update_entity("sensor.loose", area_id=hall.id)
    # A device of the entry that is no PBX and no line (one left behind).
    leftover = dr.async_get(hass).async_get_or_create(
        config_entry_id=autodial_entry.entry_id, identifiers={(DOMAIN, "leftover")}
    )
    for target, key in (
        ({}, "one_pbx"),
        ({"device_id": [device, device]}, "one_pbx"),
        ({"device_id": "no-such-device"}, "not_a_pbx"),
        ({"device_id": other.id}, "not_a_pbx"),
        ({"device_id": leftover.id}, "not_a_pbx"),
        ({"entity_id": "sensor.other_x"}, "not_a_pbx"),
        ({"entity_id": "sensor.loose"}, "not_a_pbx"),
        ({"entity_id": "sensor.no_such_sensor"}, "not_a_pbx"),
        # A PBX's entity named with another device's: refused all the same.
        ({"entity_id": [CALL_STATE, "sensor.other_x"]}, "not_a_pbx"),
        ({"area_id": hall.id}, "no_pbx_in_target"),
        ({"area_id": "no-such-area"}, "no_pbx_in_target"),
        ({"label_id": "no-such-label"}, "no_pbx_in_target"),
    ):
        assert (await refused(hass, target)).translation_key == key, target


async def test_a_pbx_of_an_unloaded_entry(
    hass: HomeAssistant, autodial_entry: MockConfigEntry
) -> None:
    device = pbx_device(autodial_entry)
    office = ar.async_get(hass).async_create("Office")
    dr.async_get(hass).async_update_device(device, area_id=office.id)
    assert await hass.config_entries.async_unload(autodial_entry.entry_id)
    await hass.async_block_till_done()

    error = await refused(hass, {"device_id": device})
    assert error.translation_key == "entry_not_loaded"
    assert error.translation_placeholders == {"title": autodial_entry.title}
    # In an area, it is passed over like any device that cannot dial.
    error = await refused(hass, {"area_id": office.id})
    assert error.translation_key == "no_pbx_in_target"


async def test_reload_phonebook_names_an_entry_of_ours_only(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_RELOAD_PHONEBOOK,
            {"config_entry_id": other.entry_id},
            blocking=True,
        )
    assert caught.value.translation_key == "entry_not_found"
    # Without an entry: every loaded one (none names a file: nothing to read).
    await hass.services.async_call(DOMAIN, SERVICE_RELOAD_PHONEBOOK, {}, blocking=True)
