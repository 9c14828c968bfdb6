"""The timers that end calls whose end never comes: one per PBX.

A `Pbx` tells when its next call would expire (`PbxChange.next_expiry`);
the coordinator keeps one timer per PBX on that time, and shows what the
PBX's `expire()` changed when it fires.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time


class ExpiryTimers:
    """One timer per PBX (by `unique_prefix`), at its next call's expiry."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Keep no timer yet."""
        self.hass = hass
        self._timers: dict[str, tuple[datetime, CALLBACK_TYPE]] = {}
        """Each PBX's timer: when, and its cancel."""
        self._stopped = False

    @callback
    def async_schedule(
        self, prefix: str, when: datetime | None, expire: Callable[[datetime], None]
    ) -> None:
        """Make sure `expire` runs at `when` for the PBX (None: no timer)."""
        current = self._timers.get(prefix)
        if (current[0] if current else None) == when:
            return
        self.async_cancel(prefix)
        if when is None or self._stopped:
            return

        @callback
        def fire(now: datetime) -> None:
            self._timers.pop(prefix, None)
            expire(now)

        self._timers[prefix] = (
            when,
            async_track_point_in_utc_time(self.hass, fire, when),
        )

    @callback
    def async_cancel(self, prefix: str) -> None:
        """Cancel the PBX's timer, if it has one."""
        if (current := self._timers.pop(prefix, None)) is not None:
            current[1]()

    @callback
    def async_stop(self) -> None:
        """Cancel every timer; none is set any more (the entry unloads)."""
        self._stopped = True
        for _when, cancel in self._timers.values():
            cancel()
        self._timers.clear()
