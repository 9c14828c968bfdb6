"""Where the event stream resumes after a restart, and since when it was away.

A server that resumes sends what came after `Last-Event-ID`, so the id of
the last event handled is saved, with when that event came. Home Assistant
may have seen the stream open for hours after that event (a quiet night):
what it could have missed begins when it stopped seeing the stream, `seen`,
stamped whenever the position is saved while the stream is open and when
the stream closes. Free of Home Assistant; the stream moves the position,
the coordinator saves it.

While calls are in progress, the position saved is held back to before the
oldest one's first event, so that a resuming server sends the calls again
(`journal.py`); the last event handled is saved with it (`latest`). After
the restart, the first stream must show that the server resumes from
there (`StreamPosition.probing`); if not, it opens again from `latest`.
What a resuming server sends again is recognised (`StreamPosition.resent`)
until it sends news.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from .api import SpRecordEvent
from .dedupe import event_digest
from .journal import JOURNAL_SIZE, CallKey, Handled, StreamJournal

RESUME_HANDLED = 16
"""The last events handled saved with the position (a resuming server's
overlap is a few events)."""
MAX_SAVED_EVENTS = RESUME_HANDLED + JOURNAL_SIZE
"""The most events saved as handled, or as sent again, with a position."""


@dataclass(frozen=True, slots=True)
class ResumePosition:
    """A place in the event stream, as saved."""

    event_id: str
    """Where the stream resumes: the last event handled, or (held back)
    the one just before the oldest call in progress's first event."""
    time: datetime
    """When the last event handled came."""
    seen: datetime | None = None
    """When Home Assistant last saw the stream open (None: not known)."""
    handled: tuple[Handled, ...] = ()
    """The last events handled up to it, as (id, digest): a server resuming
    at-least-once sends them again, and they are recognised. Held back, also
    those after it that are not of a call in progress."""
    again: tuple[Handled, ...] = ()
    """Held back: the events of the calls in progress after it, which a
    resuming server sends again and which are handled again."""
    latest: str | None = None
    """Held back: the id of the last event handled."""

    @property
    def away_since(self) -> datetime:
        """Return since when events may have been missed."""
        return self.time if self.seen is None else max(self.seen, self.time)


class Resent(Enum):
    """What an event a resuming server sent again is."""

    HANDLED = "handled"
    """Handled before the restart: skipped."""
    AGAIN = "again"
    """Of a call in progress at the restart: handled again."""


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
        self._restored = saved
        """The position as saved, saved again until the stream moves."""
        self.event_id = None if saved is None else saved.event_id
        """The id to resume from: the last event's handled (or the saved one)."""
        self._time = None if saved is None else saved.time
        self._seen = None if saved is None else saved.seen
        self.open = False
        """Whether a stream is open now."""
        self.saved_handled = () if saved is None else saved.handled
        """The events handled before the restart, as saved."""
        self.journal = StreamJournal(self.event_id)
        """The stream's last events (to hold the saved position back)."""
        self.active_calls: Callable[[], Collection[CallKey]] = tuple
        """The calls in progress (the coordinator's), by PBX and call id."""
        self.latest = None if saved is None else saved.latest
        """Held back: the id to resume from if the server does not go back."""
        again = () if saved is None else saved.again
        self._before: dict[str, str] = dict((*self.saved_handled, *again))
        """Every event saved as handled before the restart: by id."""
        self._resent = dict(self.saved_handled)
        """Events a resuming server sends again that were handled: by id."""
        self._again = dict(again)
        """Events it sends again of the calls in progress: by id."""
        self._matched: set[Handled] = set()
        """Those recognised already (a stream that drops sends them again)."""
        self._marked: dict[int, SpRecordEvent] = {}
        """The events sent again to be handled again, until the sink asks."""

    @property
    def probing(self) -> bool:
        """Tell whether the stream resumes from a held-back position, unproven."""
        return self.latest is not None

    def expected(self, event_id: str, event: SpRecordEvent) -> bool:
        """Tell whether an event is one a server resuming from here sends first.

        It is an event handled before the restart, sent again: one of the
        calls in progress, or one of those handled (at-least-once).
        """
        pair = (event_id, event_digest(event))
        return pair in self._resent.items() or pair in self._again.items()

    def resent(self, event_id: str, event: SpRecordEvent) -> Resent | None:
        """Tell whether the stream's event was sent again after the restart.

        A resuming server sends again, at once and in order, what came after
        the position: each such event is recognised once, by its id and its
        content. The first event that is none of them is news: what was not
        sent again by then will not be.
        """
        if not (self._resent or self._again or self._matched):
            return None
        digest = event_digest(event)
        if (event_id, digest) in self._matched:
            return Resent.HANDLED  # the resend began again on a new stream
        if self._resent.get(event_id) == digest:
            del self._resent[event_id]
            self._matched.add((event_id, digest))
            return Resent.HANDLED
        if self._again.get(event_id) == digest:
            del self._again[event_id]
            self._matched.add((event_id, digest))
            self._marked[id(event)] = event
            return Resent.AGAIN
        self._resent.clear()
        self._again.clear()
        self._matched.clear()
        return None

    def sent_again(self, event: SpRecordEvent) -> bool:
        """Tell (once) whether an event was sent again to be handled again."""
        return bool(self._marked) and self._marked.pop(id(event), None) is not None

    def confirmed(self) -> None:
        """Note that the server resumes from the held-back position."""
        self.latest = None

    def fall_back(self) -> None:
        """Resume from the last event handled: the server did not go back.

        Whatever it sends again from there (at-least-once) was handled
        before the restart, the calls in progress too: all is recognised.
        """
        if self.latest is not None:
            self.event_id = self.latest
            self.journal.rebase(self.latest)
            self._restored = None
            self._resent = dict(self._before)
            self._again.clear()
            self._matched.clear()
            self.saved_handled = _last(self._before.items(), MAX_SAVED_EVENTS)
        self.latest = None

    def handled(
        self, event_id: str | None, when: datetime, event: SpRecordEvent | None = None
    ) -> None:
        """Note an event handled (`event_id` None: the stream gave no id)."""
        if event_id:
            self.event_id = event_id
            self._time = when
            self._restored = None
            if event is not None:
                self.journal.record(event_id, event)

    def passed(self, event_id: str | None, event: SpRecordEvent | None = None) -> None:
        """Note an id the stream went past without a new event (a repeat)."""
        if event_id and event_id != self.event_id:
            self.event_id = event_id
            self._restored = None
        if event_id and event is not None:
            self._restored = None
            self.journal.record(event_id, event)

    def opened(self) -> None:
        """Note a stream that opened."""
        self.open = True

    def closed(self, now: datetime) -> None:
        """Note the stream's end: Home Assistant saw it until `now`."""
        if self.open:
            self.open = False
            self._seen = now

    def saved(self, now: datetime) -> ResumePosition | None:
        """Return the position to save now (None: the stream gave no id yet).

        While calls are in progress, it is held back to before the oldest
        one's first event (`journal.py`).
        """
        if not self.kept or not self.event_id or self._time is None:
            return None
        seen = now if self.open else self._seen
        if (restored := self._restored) is not None:
            # Not seen while unproven: what it missed has not come yet.
            return replace(restored, seen=restored.seen if self.probing else seen)
        hold = self.journal.hold_back(self.active_calls(), RESUME_HANDLED)
        if hold is None:
            return ResumePosition(
                self.event_id,
                self._time,
                seen,
                _last(
                    (*self.saved_handled, *self.journal.last(RESUME_HANDLED)),
                    RESUME_HANDLED,
                ),
            )
        # The events saved before stay while calls are in progress: some of
        # them may come before the point (at-least-once), some after it.
        return ResumePosition(
            hold.event_id,
            self._time,
            seen,
            _last((*self.saved_handled, *hold.before, *hold.after), MAX_SAVED_EVENTS),
            tuple(hold.again),
            self.event_id,
        )


def _last(handled: Iterable[Handled], count: int) -> tuple[Handled, ...]:
    """Return the last `count` events of `handled`, each id once (its last)."""
    unique: dict[str, str] = {}
    for event_id, digest in handled:
        unique.pop(event_id, None)
        unique[event_id] = digest
    return tuple(unique.items())[-count:]
