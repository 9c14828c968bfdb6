"""Base entity of the SpRecord MiniPBX integration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription

from .devices import line_device_info, pbx_device_info
from .ids import signal_pbx
from .link import Link
from .pbx import Pbx

if TYPE_CHECKING:
    from .autodial import PbxAutoDial


class SpRecordEntity(Entity):
    """An entity of one PBX, or of one of its lines when `line` is given.

    It follows the PBX's topics `topics` (and the link, for its
    availability) and writes its state when they change.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        pbx: Pbx,
        link: Link,
        description: EntityDescription,
        topics: tuple[str, ...],
        line: str | None = None,
    ) -> None:
        """Describe the entity; it subscribes once added."""
        self.pbx = pbx
        self.link = link
        self.entity_description = description
        self._topics = topics
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
        return self.link.available

    async def async_added_to_hass(self) -> None:
        """Follow the PBX's topics and the link."""
        await super().async_added_to_hass()
        entry_id = self.link.entry.entry_id
        prefix = self.pbx.unique_prefix
        signals = [signal_pbx(entry_id, prefix, topic) for topic in self._topics]
        for signal in (*signals, self.link.signal):
            self.async_on_remove(
                async_dispatcher_connect(self.hass, signal, self._handle_update)
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
        self,
        pbx: Pbx,
        link: Link,
        autodial: PbxAutoDial,
        description: EntityDescription,
        topics: tuple[str, ...] = (),
    ) -> None:
        """Describe the entity of the PBX's auto-dialer (following `topics`)."""
        super().__init__(pbx, link, description, topics)
        self.autodial = autodial

    @property
    def available(self) -> bool:
        """Return True: the PBX is asked directly, not through the cloud."""
        return True
