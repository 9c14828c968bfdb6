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

A call in progress when Home Assistant went down is sent again too: the
stream resumed from before its first event (`journal.py`). Those events,
handled before the restart, show the call again and ring again if it is
still going; if its end is in the backlog, they only restore it, without a
trigger or a bus event (they were on the bus before the restart), whatever
the absence. One that nothing new was heard of and that would have timed out
while Home Assistant was away is over: it is not shown at all.

Free of Home Assistant; `backlog.py` collects the backlog and asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from enum import Enum

from .api import (
    CallEndEvent,
    IncomingSmsEvent,
    SpRecordEvent,
    StartTalkEvent,
    StartupEvent,
)
from .calls import RING_TIMEOUT
from .journal import call_of
from .sms import sms_time

type _CallKey = tuple[str, int, str]
"""A call within a backlog: its PBX, the PBX's starts seen before it, its id."""


class Delivery(Enum):
    """How an event of a backlog is shown."""

    LIVE = "live"
    """As it comes: state, bus, logbook, triggers."""
    REPLAY = "replay"
    """The past: state, list, logbook; the bus says `replayed`; no trigger."""
    RESENT = "resent"
    """Handled before the restart, its call over since: the state only."""
    AGAIN = "again"
    """Handled before the restart, its call still going: shown and rung again;
    the bus says `again`."""
    STALE = "stale"
    """Handled before the restart, its call over by now though its end did
    not come (it would have expired meanwhile): skipped."""


def deliveries(
    events: Sequence[SpRecordEvent],
    *,
    since: datetime,
    now: datetime,
    longest_call: timedelta,
    local_zone: tzinfo,
    sent_again: Sequence[bool] | None = None,
) -> list[Delivery]:
    """Tell, for each event of a backlog, how it is shown.

    `sent_again` tells which events the server sent again to be handled
    again: those of calls in progress at the restart. A call with none of
    its events new in the backlog was last heard of before `since`: if its
    ring (or, answered, the longest call) would have timed out since, it is
    over. The others follow `replayed()`.
    """
    flags = replayed(
        events, since=since, now=now, longest_call=longest_call, local_zone=local_zone
    )
    shown = [Delivery.REPLAY if flag else Delivery.LIVE for flag in flags]
    if sent_again is None or not any(sent_again):
        return shown
    keys, ended = _calls(events)
    heard: set[_CallKey] = set()
    talked: set[_CallKey] = set()
    for event, key, again in zip(events, keys, sent_again, strict=True):
        if key is not None and not again:
            heard.add(key)  # news of the call: it went on after the restart
        elif key is not None and isinstance(event, StartTalkEvent):
            talked.add(key)
    away = now - since
    for index, (key, again) in enumerate(zip(keys, sent_again, strict=True)):
        if key is None or not again:
            continue
        if key in ended:
            shown[index] = Delivery.RESENT
        elif key not in heard and away > (
            longest_call if key in talked else RING_TIMEOUT
        ):
            shown[index] = Delivery.STALE
        else:
            shown[index] = Delivery.AGAIN
    return shown


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
    keys, ended = _calls(events)
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


def _calls(
    events: Sequence[SpRecordEvent],
) -> tuple[list[_CallKey | None], set[_CallKey]]:
    """Return each event's call (None: not a call's) and the calls that end.

    A PBX's startup ends its calls (a call cut by it is not going on).
    """
    starts: dict[str, int] = {}
    keys: list[_CallKey | None] = []
    ended: set[_CallKey] = set()
    for event in events:
        if isinstance(event, StartupEvent):
            ended.update(
                key
                for key in keys
                if key is not None
                and key[0] == event.device_id
                and key[1] == starts.get(event.device_id, 0)
            )
            starts[event.device_id] = starts.get(event.device_id, 0) + 1
        keys.append(key := _call_key(event, starts))
        if key is not None and isinstance(event, CallEndEvent):
            ended.add(key)
    return keys, ended


def _call_key(event: SpRecordEvent, starts: dict[str, int]) -> _CallKey | None:
    """Return the key of the call an event is of (None: not a call's)."""
    if (call := call_of(event)) is None:
        return None
    pbx_id, call_id = call
    return (pbx_id, starts.get(pbx_id, 0), call_id)


def _dated_before(date: datetime | str | None, oldest: datetime, zone: tzinfo) -> bool:
    """Tell whether an SMS is dated before `oldest`; undated ones are not.

    An SMS whose date cannot be read is taken as new: a notification too
    many is better than a message never shown.
    """
    dated = sms_time(date, zone)
    return dated is not None and dated < oldest
