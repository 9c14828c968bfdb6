"""Where the event stream resumes after a restart, and since when it was away.

A server that resumes sends what came after `Last-Event-ID`, so the id of
the last event handled is saved, with when that event came. Home Assistant
may have seen the stream open for hours after that event (a quiet night):
what it could have missed begins when it stopped seeing the stream, `seen`,
stamped whenever the position is saved while the stream is open and when
the stream closes. Free of Home Assistant; the stream moves the position,
the coordinator saves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

RESUME_HANDLED = 16
"""The last events handled saved with the position (a resuming server's
overlap is a few events)."""


@dataclass(frozen=True, slots=True)
class ResumePosition:
    """A place in the event stream, as saved."""

    event_id: str
    time: datetime
    """When the event of that id came."""
    seen: datetime | None = None
    """When Home Assistant last saw the stream open (None: not known)."""
    handled: tuple[tuple[str, str], ...] = ()
    """The last events handled up to it, as (id, digest): a server resuming
    at-least-once sends them again, and they are recognised."""

    @property
    def away_since(self) -> datetime:
        """Return since when events may have been missed."""
        return self.time if self.seen is None else max(self.seen, self.time)


class StreamPosition:
    """The stream's live place: shared by the stream and the coordinator."""

    def __init__(self, saved: ResumePosition | None, *, kept: bool = True) -> None:
        """Start where the saved position (from storage) says.

        Not `kept` (webhook-only entries), nothing is saved or resumed: the
        stream only stands in while the webhook is not registered, and a
        position it left would, after a restart, replay what the webhook
        delivered since.
        """
        if not kept:
            saved = None
        self.kept = kept
        self.event_id = None if saved is None else saved.event_id
        """The id of the last event handled (or of the saved one)."""
        self._time = None if saved is None else saved.time
        self._seen = None if saved is None else saved.seen
        self.open = False
        """Whether a stream is open now."""
        self.saved_handled = () if saved is None else saved.handled
        """The events handled before the restart, as saved."""
        self.recent_handled: Callable[[], list[tuple[str, str]]] = list
        """The last events handled (the stream's), to save with the position."""

    def handled(self, event_id: str | None, when: datetime) -> None:
        """Note an event handled (`event_id` None: the stream gave no id)."""
        if event_id:
            self.event_id = event_id
            self._time = when

    def passed(self, event_id: str | None) -> None:
        """Note an id the stream went past without a new event (a repeat)."""
        if event_id:
            self.event_id = event_id

    def opened(self) -> None:
        """Note a stream that opened."""
        self.open = True

    def closed(self, now: datetime) -> None:
        """Note the stream's end: Home Assistant saw it until `now`."""
        if self.open:
            self.open = False
            self._seen = now

    def saved(self, now: datetime) -> ResumePosition | None:
        """Return the position to save now (None: the stream gave no id yet)."""
        if not self.kept or not self.event_id or self._time is None:
            return None
        return ResumePosition(
            self.event_id,
            self._time,
            now if self.open else self._seen,
            tuple(self.recent_handled()),
        )
