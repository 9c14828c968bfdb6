"""The call tracker: every call of the PBX through its states.

Pure Python (no Home Assistant import): the coordinator feeds it events and
reads what changed. Several calls at once are normal (one per GSM line); the
PBX is idle only when none is left. A call whose end never arrives (a dropped
stream) expires, so no state sticks on ringing or talking. Memory is bounded
however the server behaves.

Call ids are not unique for ever: a PBX that restarted while we were not
listening counts them from 1 again. An event for a call that ended less than
`LATE_EVENT_WINDOW` ago is late, out of order or repeated; after that, a call
with the same id is a new call.

A call that expired is listed as over with an unknown result. Its real end
may still come (the call outlived the longest-call option): within
`FINISHED_CALL_MEMORY` of the expiry it completes that call instead of
listing another one, also after Home Assistant restarted
(`expired_calls()` is saved, `recall_expired()` takes it back).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
    IncomingCallEvent,
    OutgoingCallEvent,
    RecordCallStatus,
    SpRecordEvent,
    StartTalkEvent,
)
from .api.clean import MAX_LINE_NAME, MAX_NUMBER, clean_field

DEFAULT_CALL_TIMEOUT = timedelta(hours=3)
RING_TIMEOUT = timedelta(minutes=10)
"""No GSM call rings or dials this long: after it, the call is over."""
LATE_EVENT_WINDOW = timedelta(minutes=1)
"""Events of a call that ended this recently are late or repeats, and ignored
(an end may come before its start). Later, the call's id is a new call's."""
FINISHED_CALL_MEMORY = timedelta(hours=1)
"""Finished calls are remembered this long (and at most `MAX_FINISHED_CALLS`):
the late end of a call that expired completes it within this time.

So an expired call is completed by an end that comes at most the longest-call
option (or `RING_TIMEOUT` for a call that only rang) plus this margin after
its last news, whether Home Assistant restarted in between or not. Later, an
end with its id is taken for another call: a PBX that restarted unseen counts
its call ids from 1 again, and a reused id must not complete an unrelated
call. A `startup` of the PBX forgets every finished call at once."""
MAX_ACTIVE_CALLS = 32
MAX_FINISHED_CALLS = 256
MAX_SAVED_EXPIRED = MAX_ACTIVE_CALLS
"""Expired calls kept across a restart: as many as can be open at once."""
MAX_LINES = 64

MISSED_STATUSES = frozenset({RecordCallStatus.NO_ANSWER, RecordCallStatus.BUSY})


class CallState(StrEnum):
    """State of a call, of a line, and of the PBX as a whole."""

    IDLE = "idle"
    RINGING = "ringing"
    DIALING = "dialing"
    TALKING = "talking"


class Direction(StrEnum):
    """Which way a call goes; unknown when its start was not seen."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"
    UNKNOWN = "unknown"


@dataclass(slots=True, kw_only=True)
class Call:
    """One call, from its first event to its end."""

    call_id: str
    direction: Direction
    state: CallState
    started: datetime
    updated: datetime
    caller: str | None = None
    """The number the call comes from (`call_src`)."""
    called: str | None = None
    """The number called (`call_dst`): an extension for incoming calls."""
    caller_name: str | None = None
    """The phonebook's name of `caller`, when it has one."""
    called_name: str | None = None
    """The phonebook's name of `called`, when it has one."""
    trunk: str | None = None
    answered: datetime | None = None
    answered_by: str | None = None
    """The extension that answered elsewhere (`answer_elsewhere`)."""
    ended: datetime | None = None
    expired: bool = False
    status: RecordCallStatus | None = None
    duration: int | None = None
    record_id: int | None = None

    @property
    def missed(self) -> bool:
        """Tell whether this is an incoming call nobody answered."""
        return self.direction is Direction.INCOMING and self.status in MISSED_STATUSES

    def as_dict(self) -> dict[str, Any]:
        """Return the call as JSON-friendly attributes."""
        return {
            "call_id": self.call_id,
            "direction": self.direction.value,
            "state": self.state.value,
            "caller": self.caller,
            "called": self.called,
            "caller_name": self.caller_name,
            "called_name": self.called_name,
            "line": self.trunk,
            "answered_by": self.answered_by,
            "started": self.started.isoformat(),
            "answered": self.answered.isoformat() if self.answered else None,
            "ended": self.ended.isoformat() if self.ended else None,
            "status": self.status.value if self.status else None,
            "duration": self.duration,
            "record_id": self.record_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Call:
        """Rebuild a finished call saved with `as_dict()`."""
        started = datetime.fromisoformat(data["started"])
        return cls(
            call_id=str(data["call_id"]),
            direction=Direction(data["direction"]),
            state=CallState.IDLE,
            started=started,
            updated=started,
            caller=data.get("caller"),
            called=data.get("called"),
            caller_name=data.get("caller_name"),
            called_name=data.get("called_name"),
            trunk=data.get("line"),
            answered_by=data.get("answered_by"),
            answered=_datetime(data.get("answered")),
            ended=_datetime(data.get("ended")),
            status=RecordCallStatus(data["status"]) if data.get("status") else None,
            duration=data.get("duration"),
            record_id=data.get("record_id"),
        )


@dataclass(frozen=True, slots=True)
class CallChange:
    """What one event did to the calls."""

    call: Call
    ended: bool = False
    missed: bool = False
    new_line: str | None = None
    """A line (trunk) named for the first time."""
    completes_expired: bool = False
    """The late end of a call that expired: it was listed as over already."""


@dataclass
class CallTracker:
    """Follows the PBX's calls; feed it events with `apply()`."""

    call_timeout: timedelta = DEFAULT_CALL_TIMEOUT
    ring_timeout: timedelta = RING_TIMEOUT
    active: dict[str, Call] = field(default_factory=dict)
    """Calls in progress, oldest first."""
    last_call: Call | None = None
    """The call that ended last."""
    last_missed: Call | None = None
    missed_count: int = 0
    lines: dict[str, None] = field(default_factory=dict)
    """Every line (trunk) seen, in order of first sight."""
    _finished: OrderedDict[str, Call] = field(default_factory=OrderedDict)

    @property
    def current(self) -> Call | None:
        """Return the most recent active call."""
        return next(reversed(self.active.values()), None)

    @property
    def state(self) -> CallState:
        """Return the PBX's state: the most recent active call's, or idle."""
        current = self.current
        return current.state if current else CallState.IDLE

    def line_call(self, trunk: str) -> Call | None:
        """Return the most recent active call on a line."""
        for call in reversed(self.active.values()):
            if call.trunk == trunk:
                return call
        return None

    def line_state(self, trunk: str) -> CallState:
        """Return a line's state: its most recent active call's, or idle."""
        call = self.line_call(trunk)
        return call.state if call else CallState.IDLE

    def note_line(self, trunk: str | None) -> str | None:
        """Remember a line; return it if it was new."""
        if not trunk or trunk in self.lines or len(self.lines) >= MAX_LINES:
            return None
        self.lines[trunk] = None
        return trunk

    def apply(self, event: SpRecordEvent, now: datetime) -> CallChange | None:
        """Apply a call event; return what changed, or None for nothing."""
        self._forget_finished(now)
        match event:
            case CallEvent():
                return self._apply_call_event(event, now)
            case AnswerElsewhereEvent():
                call = self.active.get(event.call_id)
                if call is None:
                    return None
                call.answered_by = event.number or call.answered_by
                call.updated = now
                return CallChange(call)
            case CallEndEvent():
                return self._apply_end(event, now)
        return None

    def restart(self, now: datetime) -> list[Call]:
        """End every call in progress: the PBX was switched on again.

        Its call ids may start over, so the ids of finished calls are
        forgotten too (a new call with an old id must not be ignored).
        """
        ended = list(self.active.values())
        for call in ended:
            self._finish(call, expired=True, now=now)
        self._finished.clear()
        return ended

    def expired_calls(self) -> list[Call]:
        """Return the expired calls a late end would still complete, oldest first.

        At most `MAX_SAVED_EXPIRED`, the newest: what is saved across a
        restart. Calls over because the PBX restarted are not among them
        (its call ids start over).
        """
        expired = [call for call in self._finished.values() if call.expired]
        return expired[-MAX_SAVED_EXPIRED:]

    def recall_expired(self, calls: Iterable[Call]) -> None:
        """Take back expired calls saved with `expired_calls()` (after a restart).

        They are older than any call finished since, so they go first; the
        usual memory forgets them `FINISHED_CALL_MEMORY` after their expiry.
        A call id known already is left as it is.
        """
        recalled = sorted(
            (
                call
                for call in calls
                if call.ended is not None
                and call.call_id not in self._finished
                and call.call_id not in self.active
            ),
            key=lambda call: call.ended or call.started,
        )[-MAX_SAVED_EXPIRED:]
        finished: OrderedDict[str, Call] = OrderedDict()
        for call in recalled:
            call.state = CallState.IDLE
            call.expired = True
            finished[call.call_id] = call
        finished.update(self._finished)
        while len(finished) > MAX_FINISHED_CALLS:
            finished.popitem(last=False)
        self._finished = finished

    def _apply_call_event(self, event: CallEvent, now: datetime) -> CallChange | None:
        """Start a call, or move it to talking."""
        finished = self._finished.get(event.call_id)
        if finished is not None:
            if _is_late(finished, now):
                return None  # a late or repeated event of a call that is over
            del self._finished[event.call_id]  # the id is reused: a new call
        call = self.active.get(event.call_id)
        talking = isinstance(event, StartTalkEvent)
        if call is None:
            call = Call(
                call_id=event.call_id,
                direction=_DIRECTIONS.get(type(event), Direction.UNKNOWN),
                state=_START_STATES.get(type(event), CallState.TALKING),
                started=now,
                updated=now,
                answered=now if talking else None,
            )
            self._add_active(call)
        call.caller = event.call_src or call.caller
        call.called = event.call_dst or call.called
        call.trunk = event.trunk or call.trunk
        call.updated = now
        if talking and call.state is not CallState.TALKING:
            call.state = CallState.TALKING
            call.answered = now
        return CallChange(call, new_line=self.note_line(call.trunk))

    def _add_active(self, call: Call) -> None:
        """Track a new call, dropping the oldest when too many are open."""
        self.active[call.call_id] = call
        while len(self.active) > MAX_ACTIVE_CALLS:
            oldest = next(iter(self.active.values()))
            self._finish(oldest, expired=True, now=oldest.updated)

    def _apply_end(self, event: CallEndEvent, now: datetime) -> CallChange | None:
        """End a call: record how it ended and whether it was missed."""
        call = self.active.get(event.call_id)
        completes_expired = False
        if call is None:
            call = self._finished.get(event.call_id)
            if call is not None and not call.expired:
                if _is_late(call, now):
                    return None  # ended already: a repeated end
                call = None  # a new call with a reused id, its start unseen
            completes_expired = call is not None
            if call is None:
                # Its start was not seen (before a restart or a lost stream).
                call = Call(
                    call_id=event.call_id,
                    direction=Direction.UNKNOWN,
                    state=CallState.IDLE,
                    started=now,
                    updated=now,
                )
        call.status = event.status
        call.duration = event.duration
        call.record_id = event.record_id
        self._finish(call, expired=False, now=now)
        self.last_call = call
        if call.missed:
            self.missed_count += 1
            self.last_missed = call
        return CallChange(
            call, ended=True, missed=call.missed, completes_expired=completes_expired
        )

    def _finish(self, call: Call, *, expired: bool, now: datetime) -> None:
        """Move a call from the active ones to the bounded finished ones."""
        self.active.pop(call.call_id, None)
        call.state = CallState.IDLE
        call.ended = now
        call.expired = expired
        self._finished[call.call_id] = call
        self._finished.move_to_end(call.call_id)
        while len(self._finished) > MAX_FINISHED_CALLS:
            self._finished.popitem(last=False)

    def _forget_finished(self, now: datetime) -> None:
        """Forget the finished calls older than `FINISHED_CALL_MEMORY`."""
        cutoff = now - FINISHED_CALL_MEMORY
        finished = self._finished
        while finished:
            oldest = next(iter(finished.values()))
            if oldest.ended is not None and oldest.ended > cutoff:
                break
            finished.popitem(last=False)

    def _deadline(self, call: Call) -> datetime:
        """Return when a call without news is taken to be over."""
        ringing = call.state in (CallState.RINGING, CallState.DIALING)
        return call.updated + (self.ring_timeout if ringing else self.call_timeout)

    def next_expiry(self) -> datetime | None:
        """Return when the next active call would expire, if any is open."""
        return min((self._deadline(c) for c in self.active.values()), default=None)

    def expire(self, now: datetime) -> list[Call]:
        """End the calls whose end never came in time; return them."""
        expired = [c for c in self.active.values() if self._deadline(c) <= now]
        for call in expired:
            self._finish(call, expired=True, now=now)
        return expired


def saved_expired_call(data: Any) -> Call | None:
    """Rebuild an expired call saved with `Call.as_dict()`; None if unreadable.

    The saved state is outside text too: its times must be aware (they are
    compared with now), its id and numbers read as the stream's would.
    """
    if not isinstance(data, Mapping):
        return None
    try:
        call = Call.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None
    call_id = data["call_id"]
    if (
        not isinstance(call_id, str)
        or not call_id.strip()
        or clean_field(call_id) != call_id
        or call.ended is None
        or call.ended.tzinfo is None
        or call.started.tzinfo is None
    ):
        return None
    call.caller = _saved_text(call.caller, MAX_NUMBER)
    call.called = _saved_text(call.called, MAX_NUMBER)
    call.answered_by = _saved_text(call.answered_by, MAX_NUMBER)
    call.trunk = _saved_text(call.trunk, MAX_LINE_NAME)
    call.caller_name = call.called_name = None  # the phonebook names them again
    call.status = call.duration = call.record_id = None  # its end never came
    call.expired = True
    return call


def _saved_text(value: object, limit: int) -> str | None:
    """Return a saved text field cleaned as the stream's; None if it is none."""
    return clean_field(value, limit) or None if isinstance(value, str) else None


def _is_late(call: Call, now: datetime) -> bool:
    """Tell whether an event for a finished call may still be one of its own."""
    return call.ended is not None and now - call.ended <= LATE_EVENT_WINDOW


def _datetime(value: str | None) -> datetime | None:
    """Read an ISO datetime saved by `Call.as_dict()`."""
    return datetime.fromisoformat(value) if value else None


_DIRECTIONS: dict[type[CallEvent], Direction] = {
    IncomingCallEvent: Direction.INCOMING,
    OutgoingCallEvent: Direction.OUTGOING,
}
_START_STATES: dict[type[CallEvent], CallState] = {
    IncomingCallEvent: CallState.RINGING,
    OutgoingCallEvent: CallState.DIALING,
}
