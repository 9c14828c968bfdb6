"""Snapshots of every entity, platform by platform, after real traffic."""

from __future__ import annotations

from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
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
    stats = config_entry.runtime_data.coordinator.stats
    await wait_until(lambda: sum(stats.events_by_type.values()) == len(events))
    await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
