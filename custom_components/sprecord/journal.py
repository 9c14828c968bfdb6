"""The stream's last events: where to resume so that calls in progress come again.

Calls in progress are not saved: after a restart, a saved call would ring
on whether it still does or not. Instead the stream resumes from just
before the first event of the oldest call in progress. A server that
resumes sends that call's events again, which show it again (ringing, or
talking) or, when its end follows in the backlog, only complete it
(`replay.py`); the other events handled since are saved as handled, and
recognised and skipped when they come again. A server that does not resume
sends none of it: those calls are shown from their next event, as before.

The journal keeps the stream's last `JOURNAL_SIZE` events, handled or
recognised, in the order they came. Free of Home Assistant.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from .api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
    SpRecordEvent,
    StartupEvent,
)
from .dedupe import event_digest

JOURNAL_SIZE = 64
"""Events kept. A call whose first event is further back is not sent again
after a restart: the resume never goes back further than this (a server
that resumes keeps some of its past, and how much is not known)."""

type CallKey = tuple[str, str]
"""A call in progress: its PBX's id and its call id."""
type Handled = tuple[str, str]
"""An event as saved: its SSE id and its digest (`dedupe.event_digest`)."""


type _Entry = tuple[str, SpRecordEvent]
"""One event of the stream, with its id: kept as it came, for every event."""


def _pair(entry: _Entry) -> Handled:
    """Return an event as saved (its digest is made when a position is saved)."""
    return (entry[0], event_digest(entry[1]))


@dataclass(frozen=True, slots=True)
class HoldBack:
    """Where to resume so that the calls in progress come again."""

    event_id: str
    """The id just before the oldest call in progress's first event."""
    before: list[Handled]
    """The events up to it (the last of them), which a server resuming
    at-least-once sends again."""
    after: list[Handled]
    """The events after it that are not of a call in progress: handled."""
    again: list[Handled]
    """The events of the calls in progress, to be handled again."""


class StreamJournal:
    """The stream's last events, in the order they came."""

    __slots__ = ("_base", "_entries")

    def __init__(self, base: str | None) -> None:
        """Start after the id `base`, where the stream resumes from."""
        self._base = base
        """The id just before the first event kept."""
        self._entries: deque[_Entry] = deque(maxlen=JOURNAL_SIZE)

    def __len__(self) -> int:
        """Return how many events are kept."""
        return len(self._entries)

    def rebase(self, base: str) -> None:
        """Go back to resuming after the id `base`: only later events are kept.

        The stream reopens there: what it handled since came after it.
        """
        self._base = base

    def record(self, event_id: str, event: SpRecordEvent) -> None:
        """Keep an event of the stream (handled, or recognised as handled).

        Every event of the stream comes here: it costs a tuple, no more.
        """
        entries = self._entries
        if len(entries) == JOURNAL_SIZE:
            self._base = entries[0][0]  # the deque drops it
        entries.append((event_id, event))

    def last(self, count: int) -> list[Handled]:
        """Return the last `count` events kept, as saved."""
        entries = self._entries
        return [
            _pair(entries[index])
            for index in range(max(len(entries) - count, 0), len(entries))
        ]

    def hold_back(self, active: Collection[CallKey], before: int) -> HoldBack | None:
        """Return where to resume to see the `active` calls again (None: nowhere).

        A call's events are those after its id last ended, or its PBX last
        started (an id may name an earlier call before that). `before`
        events up to the point are returned with it.
        """
        entries = self._entries
        waiting = set(active)
        again: list[int] = []
        for index in range(len(entries) - 1, -1, -1):
            if not waiting:
                break
            event = entries[index][1]
            if isinstance(event, StartupEvent):
                waiting = {key for key in waiting if key[0] != event.device_id}
                continue
            if (key := call_of(event)) is None or key not in waiting:
                continue
            if isinstance(event, CallEndEvent):
                waiting.discard(key)  # an earlier call with this id ended here
                continue
            again.append(index)
        if not again:
            return None
        first = again[-1]
        point = entries[first - 1][0] if first > 0 else self._base
        if point is None:
            return None  # no id before it: the stream cannot go back there
        marked = set(again)
        return HoldBack(
            point,
            before=[
                _pair(entries[index]) for index in range(max(first - before, 0), first)
            ],
            after=[
                _pair(entries[index])
                for index in range(first, len(entries))
                if index not in marked
            ],
            again=[_pair(entries[index]) for index in reversed(again)],
        )


def call_of(event: SpRecordEvent) -> CallKey | None:
    """Return the call an event is of (None: not a call's)."""
    if isinstance(event, CallEvent | CallEndEvent | AnswerElsewhereEvent):
        return (event.device_id, event.call_id)
    return None
