"""Binary sensor of the SpRecord MiniPBX: the link to the cloud."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import SpRecordConfigEntry
from .entity import SpRecordEntity

PARALLEL_UPDATES = 0

CONNECTED = BinarySensorEntityDescription(
    key="connected",
    translation_key="connected",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SpRecordConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensor: one for the account's one stream.

    It sits on the entry's first PBX's device.
    """
    runtime = entry.runtime_data
    async_add_entities(
        [
            SpRecordConnectedSensor(
                runtime.coordinator.primary, runtime.link, CONNECTED, ()
            )
        ]
    )


class SpRecordConnectedSensor(SpRecordEntity, BinarySensorEntity):
    """Whether the event stream to the SpRecord cloud is up."""

    @property
    def available(self) -> bool:
        """Always available: it is the sensor that tells about the link."""
        return True

    @property
    def is_on(self) -> bool:
        """Return whether the link is up (short drops are not shown)."""
        return self.link.available
