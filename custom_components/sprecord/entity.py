"""Base entity of the SpRecord MiniPBX integration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity, EntityDescription

from .pbx import TOPIC_LINK, Pbx, line_device_info, pbx_device_info

if TYPE_CHECKING:
    from .autodial import PbxAutoDial


class SpRecordEntity(Entity):
    """An entity of one PBX, or of one of its lines when `line` is given.

    It listens to the PBX's topics `topics` (and to the link, for its
    availability) and writes its state when they change.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        pbx: Pbx,
        description: EntityDescription,
        topics: tuple[str, ...],
        line: str | None = None,
    ) -> None:
        """Describe the entity; it subscribes once added."""
        self.pbx = pbx
        self.entity_description = description
        self._topics = (*topics, TOPIC_LINK)
        self.line = line
        prefix = pbx.unique_prefix
        if line is None:
            self._attr_unique_id = f"{prefix}_{description.key}"
            self._attr_device_info = pbx_device_info(pbx)
        else:
            _, line_id = pbx.line_identifier(line)
            self._attr_unique_id = f"{line_id}_{description.key}"
            self._attr_device_info = line_device_info(pbx, line)

    @property
    def available(self) -> bool:
        """Return whether the link to the cloud is up (or only briefly down)."""
        return self.pbx.available

    async def async_added_to_hass(self) -> None:
        """Listen to the PBX."""
        await super().async_added_to_hass()
        for topic in self._topics:
            self.async_on_remove(
                self.pbx.async_add_listener(topic, self._handle_update)
            )

    @callback
    def _handle_update(self) -> None:
        """Write the new state."""
        self.async_write_ha_state()


class SpRecordAutoDialEntity(SpRecordEntity):
    """An entity of a PBX's auto-dialer, on the PBX's device.

    The auto-dialer is asked on the local network, not through the cloud:
    the entity does not go unavailable with the cloud link.
    """

    def __init__(
        self, pbx: Pbx, autodial: PbxAutoDial, description: EntityDescription
    ) -> None:
        """Describe the entity of the PBX's auto-dialer."""
        super().__init__(pbx, description, ())
        self.autodial = autodial

    @property
    def available(self) -> bool:
        """Return True: the PBX is asked directly, not through the cloud."""
        return True
