"""What survives a restart: each PBX's last call, missed calls, last SMS, lines.

Calls in progress are not saved: after a restart their events may never come,
and a call shown as ringing that no longer rings is worse than none.

Format: `{"pbxs": [Pbx.as_dict(), ...]}`, the entry's first PBX first
(minor version 2). Minor version 1, from before an account could have
several PBXs, held one PBX's state at the top level: it becomes the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN, LOGGER
from .pbx import device_part

if TYPE_CHECKING:
    from .coordinator import SpRecordCoordinator

STORAGE_VERSION = 1
STORAGE_MINOR_VERSION = 2
SAVE_DELAY = 10.0


class _Store(Store[dict[str, Any]]):
    """The entry's store, migrating older formats as it loads them."""

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: Any
    ) -> dict[str, Any]:
        """Turn the single-PBX format (1.1) into the list of PBXs."""
        if old_minor_version < 2:
            return {"pbxs": [{**old_data, "pbx_id": None, "number": 1}]}
        return dict(old_data)


class SpRecordStore:
    """Saves the PBXs' lasting state in `.storage/sprecord.<entry>`."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Prepare the store of one entry."""
        self._store = _Store(
            hass,
            STORAGE_VERSION,
            f"{DOMAIN}.{entry_id}",
            minor_version=STORAGE_MINOR_VERSION,
        )

    async def async_restore(self, coordinator: SpRecordCoordinator) -> None:
        """Put saved state back: the first PBX's, and the other PBXs seen."""
        data = await self._store.async_load()
        if not data:
            return
        for saved in data.get("pbxs", []):
            try:
                _restore(coordinator, saved)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                LOGGER.warning("Ignored unreadable saved SpRecord state: %s", err)

    def async_schedule_save(self, coordinator: SpRecordCoordinator) -> None:
        """Save soon; several changes in a row are written once."""
        self._store.async_delay_save(lambda: _dump(coordinator), SAVE_DELAY)

    async def async_save_now(self, coordinator: SpRecordCoordinator) -> None:
        """Save at once (at unload), dropping a pending delayed save."""
        await self._store.async_save(_dump(coordinator))

    async def async_forget_device(
        self, entry_unique_id: str, identifiers: Iterable[str]
    ) -> bool:
        """Drop a line or a PBX from the saved state (the entry is not loaded).

        Returns whether the device may be removed: a line, or a PBX other than
        the entry's first.
        """
        data = await self._store.async_load() or {"pbxs": []}
        pbxs: list[dict[str, Any]] = list(data.get("pbxs", []))
        for identifier in identifiers:
            for saved in pbxs:
                number = int(saved.get("number", 1))
                part = device_part(
                    entry_unique_id, saved.get("pbx_id"), number, identifier
                )
                if part is None:
                    continue
                is_pbx, line = part
                if is_pbx:
                    if number == 1:
                        return False
                    pbxs.remove(saved)
                else:
                    saved["lines"] = [x for x in saved.get("lines", []) if x != line]
                await self._store.async_save({"pbxs": pbxs})
                return True
        return False

    async def async_remove(self) -> None:
        """Delete the saved state (the entry was removed)."""
        await self._store.async_remove()


def _dump(coordinator: SpRecordCoordinator) -> dict[str, Any]:
    """Return the state worth keeping, JSON-friendly."""
    return {"pbxs": [pbx.as_dict() for pbx in coordinator.all_pbxs]}


def _restore(coordinator: SpRecordCoordinator, saved: dict[str, Any]) -> None:
    """Apply one PBX's saved state."""
    number = int(saved.get("number", 1))
    pbx_id = saved.get("pbx_id")
    if number == 1:
        pbx = coordinator.primary
        if pbx.pbx_id is None and isinstance(pbx_id, str):
            pbx.pbx_id = pbx_id
            coordinator.pbxs[pbx_id] = pbx
    elif isinstance(pbx_id, str) and pbx_id not in coordinator.pbxs:
        pbx = coordinator.add_saved_pbx(pbx_id, number)
    else:
        return
    pbx.restore(saved)
