"""Base entity and device info of the SpRecord MiniPBX integration."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .compat import via_device_info
from .const import DOMAIN, MANUFACTURER, MODEL
from .coordinator import TOPIC_LINK, SpRecordConfigEntry, SpRecordCoordinator

_LINE_MARK = "_line_"


def _pbx_identifier(entry: SpRecordConfigEntry) -> tuple[str, str]:
    return (DOMAIN, str(entry.unique_id))


def pbx_device_info(entry: SpRecordConfigEntry) -> DeviceInfo:
    """Return the device info of the PBX."""
    return DeviceInfo(
        identifiers={_pbx_identifier(entry)},
        manufacturer=MANUFACTURER,
        model=MODEL,
        name=entry.title,
    )


def line_device_info(
    entry: SpRecordConfigEntry, trunk: str, pbx_device_id: str | None
) -> DeviceInfo:
    """Return the device info of one line (trunk), under the PBX.

    `pbx_device_id` is the PBX's id in the device registry.
    """
    info = DeviceInfo(
        identifiers={(DOMAIN, f"{entry.unique_id}{_LINE_MARK}{trunk}")},
        manufacturer=MANUFACTURER,
        model="GSM line",
        translation_key="line",
        translation_placeholders={"line": trunk},
    )
    info.update(via_device_info(_pbx_identifier(entry), pbx_device_id))
    return info


def line_from_identifiers(
    entry: SpRecordConfigEntry, identifiers: Iterable[tuple[str, str]]
) -> str | None:
    """Return the line a device stands for, or None for the PBX device."""
    prefix = f"{entry.unique_id}{_LINE_MARK}"
    for domain, identifier in identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            return identifier.removeprefix(prefix)
    return None


class SpRecordEntity(Entity):
    """An entity of the PBX, or of one of its lines when `line` is given.

    It listens to the coordinator topics `topics` (and to the link, for its
    availability) and writes its state when they change.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        coordinator: SpRecordCoordinator,
        description: EntityDescription,
        topics: tuple[str, ...],
        line: str | None = None,
    ) -> None:
        """Describe the entity; it subscribes once added."""
        entry = coordinator.entry
        self.coordinator = coordinator
        self.entity_description = description
        self._topics = (*topics, TOPIC_LINK)
        self.line = line
        if line is None:
            self._attr_unique_id = f"{entry.unique_id}_{description.key}"
            self._attr_device_info = pbx_device_info(entry)
        else:
            self._attr_unique_id = (
                f"{entry.unique_id}{_LINE_MARK}{line}_{description.key}"
            )
            self._attr_device_info = line_device_info(
                entry, line, coordinator.device_registry_id
            )

    @property
    def available(self) -> bool:
        """Return whether the link to the cloud is up (or only briefly down)."""
        return self.coordinator.available

    async def async_added_to_hass(self) -> None:
        """Listen to the coordinator."""
        await super().async_added_to_hass()
        for topic in self._topics:
            self.async_on_remove(
                self.coordinator.async_add_listener(topic, self._handle_update)
            )

    @callback
    def _handle_update(self) -> None:
        """Write the new state."""
        self.async_write_ha_state()
