"""Recognise an event that arrives twice (SSE and webhook both on)."""

from __future__ import annotations

from collections import OrderedDict
import hashlib
import json
import time

from .api import SpRecordEvent

WINDOW = 60.0
"""Seconds within which the same event on the other transport is a repeat."""
MAX_EVENTS = 4096


def event_identity(event: SpRecordEvent) -> str:
    """Return what makes an event itself: PBX, type and normalised payload."""
    return json.dumps(
        (event.device_id, event.type, event.payload_dict()),
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )


def event_digest(event: SpRecordEvent) -> str:
    """Return a short digest of an event's identity (saved, not the event)."""
    return hashlib.sha256(event_identity(event).encode()).hexdigest()[:16]


class SeenStreamIds:
    """The SSE ids of recently handled events, with what each event was.

    A server that resumes after `Last-Event-ID` at-least-once sends again,
    right after the reconnect, events already handled: same id, same content.
    A server that restarted may count its ids from 1 again: same id, other
    content, a new event. Ids are remembered for a minute (a replay comes at
    once), so an event that merely repeats an old one later is not taken
    for a replay.
    """

    __slots__ = ("_seen", "max_ids", "window")

    def __init__(self, window: float = WINDOW, max_ids: int = MAX_EVENTS) -> None:
        """Remember ids for `window` seconds, at most `max_ids` of them."""
        self.window = window
        self.max_ids = max_ids
        self._seen: OrderedDict[str, tuple[SpRecordEvent | str, float]] = OrderedDict()
        """By id: the event (or, taken from storage, its digest) and when."""

    def replayed(
        self, event_id: str, event: SpRecordEvent, now: float | None = None
    ) -> bool:
        """Remember the event; tell whether it was just handled under this id."""
        if not event_id:
            return False
        now = time.monotonic() if now is None else now
        seen = self._seen
        while seen:
            oldest, (_, when) = next(iter(seen.items()))
            if now - when < self.window:
                break
            del seen[oldest]
        # The event itself is kept (a frozen model, compared field by field
        # only when its id comes again): no identity to build per event.
        if (known := seen.get(event_id)) is not None and (
            known[0] == event_digest(event)
            if isinstance(known[0], str)
            else known[0] == event
        ):
            return True
        seen[event_id] = (event, now)
        seen.move_to_end(event_id)
        if len(seen) > self.max_ids:
            seen.popitem(last=False)
        return False


class RecentEvents:
    """The identities of recent events, bounded in time and in number.

    An event has no id shared by both transports, so its identity is its
    content: PBX, type and normalised payload. Two different events with the
    same content within a minute do not happen: a call's events carry its id
    and an SMS carries its date.
    """

    __slots__ = ("_seen", "max_events", "window")

    def __init__(self, window: float = WINDOW, max_events: int = MAX_EVENTS) -> None:
        """Remember events for `window` seconds, at most `max_events` of them."""
        self.window = window
        self.max_events = max_events
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        """Return how many events are remembered."""
        return len(self._seen)

    def first_time(self, event: SpRecordEvent, now: float | None = None) -> bool:
        """Remember the event; tell whether it was not seen within the window."""
        now = time.monotonic() if now is None else now
        seen = self._seen
        while seen:
            oldest, when = next(iter(seen.items()))
            if now - when < self.window:
                break
            del seen[oldest]
        identity = event_identity(event)
        if identity in seen:
            return False
        seen[identity] = now
        if len(seen) > self.max_events:
            seen.popitem(last=False)
        return True
