"""What survives a restart: each PBX's last call, missed calls, last SMS, lines.

Calls in progress are not saved: after a restart their events may never come,
and a call shown as ringing that no longer rings is worse than none. Calls
that expired recently are (`expired_calls`, with their place in the call
list): a late end completes such a call's entry instead of listing it twice.

Format: the entry's first PBX's state at the top level, as before an
account could have several PBXs (minor version 1), and the other PBXs under
`others` (minor version 2). The change is additive: an older version of the
integration reads the first PBX's state and ignores the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .api.clean import for_log, is_pbx_id
from .const import DOMAIN, LOGGER
from .pbx import device_part, unique_prefix

if TYPE_CHECKING:
    from .coordinator import SpRecordCoordinator

STORAGE_VERSION = 1
STORAGE_MINOR_VERSION = 2
SAVE_DELAY = 10.0


class _Store(Store[dict[str, Any]]):
    """The entry's store: minor version 1 data is read as it is."""

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: Any
    ) -> dict[str, Any]:
        """Take 1.1 data as it is: it is 1.2 data without other PBXs."""
        return dict(old_data)


def _saved_pbxs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the saved PBXs, the entry's first first."""
    first = {key: value for key, value in data.items() if key != "others"}
    return [{"number": 1, **first}, *data.get("others", [])]


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
        for saved in _saved_pbxs(data):
            try:
                _restore(coordinator, saved)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                LOGGER.warning(
                    "Ignored unreadable saved SpRecord state: %s", for_log(err)
                )

    def async_schedule_save(self, coordinator: SpRecordCoordinator) -> None:
        """Save soon; several changes in a row are written once."""
        self._store.async_delay_save(lambda: _dump(coordinator), SAVE_DELAY)

    async def async_save_now(self, coordinator: SpRecordCoordinator) -> None:
        """Save at once (at unload), dropping a pending delayed save."""
        await self._store.async_save(_dump(coordinator))

    async def async_forget_device(
        self, entry_unique_id: str, identifier: str
    ) -> list[str]:
        """Drop a line or a PBX from the saved state (the entry is not loaded).

        Returns the unique-id prefixes of the PBXs removed (their lines go
        with them).
        """
        data = await self._store.async_load()
        if not data:
            return []
        saved_pbxs = _saved_pbxs(data)
        for saved in saved_pbxs:
            number = int(saved.get("number", 1))
            pbx_id = saved.get("pbx_id")
            part = device_part(entry_unique_id, pbx_id, number, identifier)
            if part is None:
                continue
            is_pbx, line = part
            removed: list[str] = []
            if is_pbx and number != 1:
                saved_pbxs.remove(saved)
                removed.append(unique_prefix(entry_unique_id, pbx_id, number))
            elif line is not None:
                saved["lines"] = [x for x in saved.get("lines", []) if x != line]
            first, *others = saved_pbxs
            await self._store.async_save({**first, "others": others})
            return removed
        return []

    async def async_remove(self) -> None:
        """Delete the saved state (the entry was removed)."""
        await self._store.async_remove()


def _dump(coordinator: SpRecordCoordinator) -> dict[str, Any]:
    """Return the state worth keeping, JSON-friendly."""
    first, *others = coordinator.all_pbxs
    return {**first.as_dict(), "others": [pbx.as_dict() for pbx in others]}


def _restore(coordinator: SpRecordCoordinator, saved: dict[str, Any]) -> None:
    """Apply one PBX's saved state.

    A PBX id that is no PBX id (saved by a version that took any) is not
    taken: that PBX is forgotten, the entry's first one learns its id anew.
    """
    number = int(saved.get("number", 1))
    pbx_id = saved.get("pbx_id")
    if not isinstance(pbx_id, str) or not is_pbx_id(pbx_id):
        pbx_id = None
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
