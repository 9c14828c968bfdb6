"""What survives a restart: last call, missed calls, last SMS.

Calls in progress are not saved: after a restart their events may never come,
and a call shown as ringing that no longer rings is worse than none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .calls import Call
from .const import DOMAIN, LOGGER
from .coordinator import SmsMessage

if TYPE_CHECKING:
    from .coordinator import SpRecordCoordinator

STORAGE_VERSION = 1
SAVE_DELAY = 10.0


class SpRecordStore:
    """Saves the coordinator's lasting state in `.storage/sprecord.<entry>`."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Prepare the store of one entry."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}"
        )

    async def async_restore(self, coordinator: SpRecordCoordinator) -> None:
        """Put saved state back into the coordinator, if any was saved."""
        data = await self._store.async_load()
        if not data:
            return
        try:
            _restore(coordinator, data)
        except (KeyError, TypeError, ValueError) as err:
            LOGGER.warning("Ignored unreadable saved SpRecord state: %s", err)

    def async_schedule_save(self, coordinator: SpRecordCoordinator) -> None:
        """Save soon; several changes in a row are written once."""
        self._store.async_delay_save(lambda: _dump(coordinator), SAVE_DELAY)

    async def async_save_now(self, coordinator: SpRecordCoordinator) -> None:
        """Save at once (at unload), dropping a pending delayed save."""
        await self._store.async_save(_dump(coordinator))

    async def async_forget_line(self, trunk: str) -> None:
        """Drop a line from the saved state (the entry is not loaded)."""
        data = await self._store.async_load()
        if not data or trunk not in data.get("lines", []):
            return
        data["lines"] = [line for line in data["lines"] if line != trunk]
        await self._store.async_save(data)

    async def async_remove(self) -> None:
        """Delete the saved state (the entry was removed)."""
        await self._store.async_remove()


def _dump(coordinator: SpRecordCoordinator) -> dict[str, Any]:
    """Return the state worth keeping, JSON-friendly."""
    tracker = coordinator.tracker
    sms = coordinator.last_sms
    return {
        "missed_count": tracker.missed_count,
        "last_call": tracker.last_call.as_dict() if tracker.last_call else None,
        "last_missed": tracker.last_missed.as_dict() if tracker.last_missed else None,
        "lines": list(tracker.lines),
        "last_sms": None if sms is None else sms.as_dict(),
    }


def _restore(coordinator: SpRecordCoordinator, data: dict[str, Any]) -> None:
    """Apply saved state."""
    tracker = coordinator.tracker
    tracker.missed_count = int(data.get("missed_count", 0))
    if data.get("last_call"):
        tracker.last_call = Call.from_dict(data["last_call"])
    if data.get("last_missed"):
        tracker.last_missed = Call.from_dict(data["last_missed"])
    for line in data.get("lines", []):
        tracker.note_line(str(line))
    if sms := data.get("last_sms"):
        coordinator.last_sms = SmsMessage.from_dict(sms)
