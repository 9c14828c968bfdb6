"""The stream's backlog after a long absence: held, then taken as a whole.

A server that resumes sends what happened while Home Assistant was away as
soon as the stream opens, and may take a while over a long backlog. After an
absence longer than the longest call, every event (from the stream, and from
the webhook with both transports on, in the order they came) is held from
setup until the backlog is over: the stream is open and nothing came for
`BACKLOG_QUIET`, or `BACKLOG_MAX` after setup at the latest. Then
`replay.py` tells which of them only replay the past, seeing whole calls.

The stream may also resume from before calls that were in progress when
Home Assistant went down (`journal.py`): their events come again, and are
held the same way after any absence, to tell whether they still are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .api import SpRecordEvent
from .replay import Delivery, deliveries
from .resume import ResumePosition

BACKLOG_QUIET = 1.0
"""Seconds without an event, the stream open, that end the backlog."""
BACKLOG_MAX = 15.0
"""Seconds after setup by which the held events are handled in any case."""


class BacklogHold:
    """Holds the events of a backlog until it is over."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        longest_call: timedelta,
        stream_open: Callable[[], bool],
        over: Callable[[], None],
    ) -> None:
        """Prepare; `async_expect()` starts holding.

        `stream_open()` tells whether the stream is open; `over()` is called
        when the backlog is over (it takes the events with `async_take()`).
        """
        self.hass = hass
        self.longest_call = longest_call
        self._stream_open = stream_open
        self._over = over
        self.resumed_from: ResumePosition | None = None
        """Where the stream resumed from (the position saved while holding)."""
        self._events: list[tuple[SpRecordEvent, bool]] | None = None
        """The events held, each with whether it was sent again."""
        self._quiet_unsub: CALLBACK_TYPE | None = None
        self._max_unsub: CALLBACK_TYPE | None = None

    @property
    def holding(self) -> bool:
        """Tell whether events are held."""
        return self._events is not None

    @callback
    def async_expect(self, resumed_from: ResumePosition) -> None:
        """Hold the events to come if Home Assistant was away for long.

        Only an absence longer than the longest call can have a backlog
        that merely replays the past; after a shorter one nothing is held,
        unless calls in progress come again.
        """
        self.resumed_from = resumed_from
        if (
            dt_util.utcnow() - resumed_from.away_since <= self.longest_call
            and not resumed_from.again
        ):
            return
        self._start()

    @callback
    def _start(self) -> list[tuple[SpRecordEvent, bool]]:
        """Hold from now until the backlog is over; return the list held."""
        events: list[tuple[SpRecordEvent, bool]] = []
        self._events = events
        self._max_unsub = async_call_later(self.hass, BACKLOG_MAX, self._timed_out)
        self._restart_quiet()
        return events

    @callback
    def async_hold(self, event: SpRecordEvent, *, again: bool = False) -> bool:
        """Hold an event if the backlog is not over; tell whether it was held.

        An event sent `again` (of a call in progress at the restart) that
        comes after the hold is over (the stream opened late) starts another
        one: whether its call still goes on shows in what follows it.
        """
        if (events := self._events) is None:
            if not again or self.resumed_from is None:
                return False
            events = self._start()
        events.append((event, again))
        self._restart_quiet()
        return True

    @callback
    def async_stream_opened(self) -> None:
        """Count the quiet from a stream that opened (it sends the backlog)."""
        if self._events is not None:
            self._restart_quiet()

    @callback
    def _restart_quiet(self) -> None:
        """Wait for `BACKLOG_QUIET` without events (only while the stream is open)."""
        if self._quiet_unsub is not None:
            self._quiet_unsub()
            self._quiet_unsub = None
        if self._stream_open():
            self._quiet_unsub = async_call_later(
                self.hass, BACKLOG_QUIET, self._quiet_over
            )

    @callback
    def _quiet_over(self, _now: datetime) -> None:
        self._quiet_unsub = None
        if self._stream_open():
            self._over()
        # Else the stream dropped meanwhile: its next one goes on sending.

    @callback
    def _timed_out(self, _now: datetime) -> None:
        self._max_unsub = None
        self._over()

    @callback
    def async_take(self) -> list[tuple[SpRecordEvent, Delivery]]:
        """Stop holding; return the events held, each with how it is shown.

        The events sent again come first: they are older than any other
        (a webhook's may have come between them).
        """
        for unsub in (self._quiet_unsub, self._max_unsub):
            if unsub is not None:
                unsub()
        self._quiet_unsub = self._max_unsub = None
        held, self._events = self._events, None
        if not held or self.resumed_from is None:
            return []
        held.sort(key=lambda item: not item[1])  # stable: each group in order
        events = [event for event, _ in held]
        flags = deliveries(
            events,
            since=self.resumed_from.away_since,
            now=dt_util.utcnow(),
            longest_call=self.longest_call,
            local_zone=dt_util.get_default_time_zone(),
            sent_again=[again for _, again in held],
        )
        return list(zip(events, flags, strict=True))
