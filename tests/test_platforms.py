"""Snapshots of every entity, platform by platform, after real traffic.

What is snapshotted is what the integration owns — entity ids, unique ids,
translation keys, device classes, categories, the device each entity is on,
states and attributes — not Home Assistant's registry entry, whose shape
changes between releases (the suite runs on 2025.4 and on the newest).
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from emulator import SpRecordEmulator

from .helpers import wait_until
from .test_states import call, end


@pytest.mark.parametrize(
    "platform", [Platform.SENSOR, Platform.EVENT, Platform.BINARY_SENSOR]
)
async def test_entities(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
    entity_registry_enabled_by_default: None,
) -> None:
    freezer.move_to("2026-11-27T09:00:00+00:00")
    config_entry.add_to_hass(hass)
    with patch("custom_components.sprecord.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    events = [
        ("startup", {}),
        ("incoming_call", call(1, trunk="GSM1")),
        ("call_end", end(1, status="no_answer")),
        ("outgoing_call", call(2, src="103", dst="+74951234567", trunk="GSM2")),
        ("start_talk", call(2, src="103", dst="+74951234567", trunk="GSM2")),
        (
            "incoming_sms",
            {
                "sms_src": "OZON",
                "text": "Ваш заказ доставлен",
                "trunk": "GSM1",
                "date": "2026-11-27 12:00:00",
            },
        ),
        ("incoming_call", call(3, src="+79990001122", trunk="GSM1", dst="105")),
    ]
    for event_type, payload in events:
        emulator.emit(event_type, payload)
    stats = config_entry.runtime_data.link.stats
    await wait_until(lambda: sum(stats.events_by_type.values()) == len(events))
    await hass.async_block_till_done()
    # Written by hand from the traffic above, beside the snapshot: a snapshot
    # updated without a look cannot make a wrong state pass.
    for entity_id, (state, attributes) in EXPECTED[platform].items():
        current = hass.states.get(entity_id)
        assert current is not None, entity_id
        if platform is Platform.EVENT:
            # When it fired: the frozen clock, give or take the ticks the
            # newest release's harness lets pass.
            fired = dt_util.parse_datetime(current.state)
            expected = dt_util.parse_datetime(state)
            assert fired is not None, entity_id
            assert expected is not None
            assert abs(fired - expected) < timedelta(seconds=1), entity_id
        else:
            assert current.state == state, entity_id
        for key, value in attributes.items():
            assert current.attributes.get(key) == value, (entity_id, key)
    assert our_part(hass, config_entry) == snapshot
    assert await hass.config_entries.async_unload(config_entry.entry_id)


EXPECTED: dict[Platform, dict[str, tuple[str, dict[str, Any]]]] = {
    Platform.SENSOR: {
        # Call 3 rings (the newest), call 2 talks on GSM2, call 1 was missed.
        "sensor.sprecord_minipbx_call_state": (
            "ringing",
            {"caller": "+79990001122", "called": "105", "line": "GSM1"},
        ),
        "sensor.sprecord_minipbx_active_calls": ("2", {}),
        "sensor.sprecord_minipbx_last_call_result": ("no_answer", {"call_id": "1"}),
        "sensor.sprecord_minipbx_missed_calls": ("1", {"last_line": "GSM1"}),
        "sensor.sprecord_minipbx_recent_calls": ("1", {}),
        # When the SMS came (the text is an attribute, never recorded).
        "sensor.sprecord_minipbx_last_sms": (
            "2026-11-27T09:00:00+00:00",
            {"sender": "OZON", "line": "GSM1", "text": "Ваш заказ доставлен"},
        ),
        "sensor.line_gsm1_state": ("ringing", {"caller": "+79990001122"}),
        "sensor.line_gsm2_state": ("talking", {"called": "+74951234567"}),
    },
    Platform.EVENT: {
        "event.sprecord_minipbx_call": (
            "2026-11-27T09:00:00.000+00:00",
            {"event_type": "incoming_call", "caller": "+79990001122"},
        ),
        "event.sprecord_minipbx_sms": (
            "2026-11-27T09:00:00.000+00:00",
            {"event_type": "incoming_sms", "sms_src": "OZON"},
        ),
        "event.sprecord_minipbx_pbx": (
            "2026-11-27T09:00:00.000+00:00",
            {"event_type": "startup"},
        ),
    },
    Platform.BINARY_SENSOR: {
        "binary_sensor.sprecord_minipbx_cloud_connection": ("on", {}),
    },
}


def our_part(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Return, per entity of the entry, what the integration decides of it."""
    devices = dr.async_get(hass)
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    assert entities, "the entry has no entities"
    result: dict[str, Any] = {}
    for entity in sorted(entities, key=lambda e: e.entity_id):
        device = devices.async_get(entity.device_id) if entity.device_id else None
        state = hass.states.get(entity.entity_id)
        assert state is not None, entity.entity_id
        result[entity.entity_id] = {
            "unique_id": entity.unique_id,
            "translation_key": entity.translation_key,
            "original_name": entity.original_name,
            "device_class": plain(entity.original_device_class),
            "entity_category": plain(entity.entity_category),
            "unit": entity.unit_of_measurement,
            "device": sorted(device.identifiers) if device else None,
            "state": our_state(state),
            "attributes": plain(dict(state.attributes)),
        }
    return result


def our_state(state: State) -> str:
    """Return the state, an event entity's to the second.

    An event entity's state is when it last fired; newer Home Assistant
    releases move it a millisecond on for each event fired in the same
    instant, so only the second is the integration's doing.
    """
    if state.domain != "event":
        return state.state
    fired = dt_util.parse_datetime(state.state)
    assert fired is not None, state.state
    return fired.replace(microsecond=0).isoformat()


def plain(value: Any) -> Any:
    """Return `value` with enum members as their plain values.

    Newer Home Assistant releases use `StrEnum` members where older ones use
    strings (state attribute names, for one); they mean the same.
    """
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(item) for item in value)
    return value
