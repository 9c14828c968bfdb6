"""Events replayed after a restart: the past updates the state, but rings no bell.

After Home Assistant restarts, the link resumes the stream from the last
event handled before (`Last-Event-ID`). A server that resumes sends at once
what happened meanwhile: the backlog. Those events update the call list,
the counters and the logbook like any other, but what ended long ago must
not fire "ringing" or "incoming SMS" triggers: a call that rang and ended
while Home Assistant was down is not ringing now. The events carry no time
of their own (an SMS its date), so the backlog is taken as a whole. When
Home Assistant was away for less than the longest call, nothing in it can
be older: every event fires as usual. Otherwise a call whose end is in the
backlog is replayed (no triggers for any of its events), a call still going
when the backlog ends rings (again) as usual, an SMS is replayed when it is
dated before the longest call's span, and a PBX's startup is replayed (it
started while Home Assistant was away, long ago or not).

Free of Home Assistant; `backlog.py` collects the backlog and asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from .api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
    IncomingSmsEvent,
    SpRecordEvent,
    StartupEvent,
)
from .sms import sms_time

type _CallKey = tuple[str, int, str]
"""A call within a backlog: its PBX, the PBX's starts seen before it, its id."""


def replayed(
    events: Sequence[SpRecordEvent],
    *,
    since: datetime,
    now: datetime,
    longest_call: timedelta,
    local_zone: tzinfo,
) -> list[bool]:
    """Tell, for each event of a backlog, whether it only replays the past.

    `since` is when Home Assistant stopped seeing the stream. `local_zone`
    reads an SMS date written without a zone. A PBX that started again
    within the backlog counts its call ids anew: an id before its startup
    names another call than the same id after it.
    """
    oldest = now - longest_call
    if since >= oldest:
        return [False] * len(events)
    starts: dict[str, int] = {}
    keys: list[_CallKey | None] = []
    ended: set[_CallKey] = set()
    for event in events:
        if isinstance(event, StartupEvent):
            starts[event.device_id] = starts.get(event.device_id, 0) + 1
        key = _call_key(event, starts)
        keys.append(key)
        if key is not None and isinstance(event, CallEndEvent):
            ended.add(key)
    flags = []
    for event, key in zip(events, keys, strict=True):
        if key is not None:
            flags.append(key in ended)
        elif isinstance(event, IncomingSmsEvent):
            flags.append(_dated_before(event.date, oldest, local_zone))
        elif isinstance(event, StartupEvent):
            flags.append(True)
        else:
            flags.append(False)
    return flags


def _call_key(event: SpRecordEvent, starts: dict[str, int]) -> _CallKey | None:
    """Return the key of the call an event is of (None: not a call's)."""
    if isinstance(event, CallEvent | CallEndEvent | AnswerElsewhereEvent):
        return (event.device_id, starts.get(event.device_id, 0), event.call_id)
    return None


def _dated_before(date: datetime | str | None, oldest: datetime, zone: tzinfo) -> bool:
    """Tell whether an SMS is dated before `oldest`; undated ones are not.

    An SMS whose date cannot be read is taken as new: a notification too
    many is better than a message never shown.
    """
    dated = sms_time(date, zone)
    return dated is not None and dated < oldest
