"""The timers that end calls whose end never comes: one per PBX.

A `Pbx` tells when its next call would expire (`PbxChange.next_expiry`);
the coordinator keeps one timer per PBX, and shows what the PBX's
`expire()` changed when it fires. A timer set for earlier than asked stays:
it fires, ends nothing, and the PBX's next expiry sets the next timer. So a
busy line (each new call expires later than the one before) sets one timer,
not one per event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time


class ExpiryTimers:
    """One timer per PBX (by `unique_prefix`), at or before its next expiry."""

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
        """Make sure `expire` runs by `when` for the PBX (None: no need).

        A timer that fires by then already is kept: it costs a wake-up that
        ends nothing, where setting a timer costs one per event.
        """
        current = self._timers.get(prefix)
        if current is not None and (when is None or current[0] <= when):
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
