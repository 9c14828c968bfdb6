"""One PBX of the account: its calls, lines, last SMS and call list.

An SpRecord account (one API key, one event stream, one config entry) can
have several PBXs; every event names its PBX (`device_id`). A `Pbx` keeps
that PBX's call tracker, lines, missed calls, last call, last SMS and call
list, and knows nothing of Home Assistant: `handle()` and `expire()` return
a `PbxChange`, what the event changed, and the coordinator turns that into
registry updates, bus and logbook events, saves, timers and entity writes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from .api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
    IncomingSmsEvent,
    SpRecordEvent,
    StartupEvent,
)
from .api.clean import MAX_LINE_NAME, is_name
from .calllog import KIND_CALL, KIND_SMS, MAX_RECENT, call_entry, restore_entries
from .calls import Call, CallChange, CallTracker, saved_expired_call
from .const import DOMAIN, LOGGER
from .ids import (
    EVENT_KIND_CALL,
    EVENT_KIND_PBX,
    EVENT_KIND_SMS,
    LINE_MARK,
    TOPIC_CALLS,
    TOPIC_ENDED,
    TOPIC_SMS,
    device_part,
    line_identifier,
    line_topic,
    unique_prefix,
)
from .sms import SmsMessage, sms_time

MAX_EXPIRED_REMEMBERED = 64
"""Expired calls whose late end is recognised as that of a listed call
(twice the calls that can be open at once)."""

type NameFor = Callable[[str | None], str | None]
"""The phonebook's name of a number, None when it has none."""

__all__ = ["LINE_MARK", "NameFor", "Pbx", "PbxChange", "SmsMessage", "bus_payload"]


def bus_payload(event: SpRecordEvent) -> dict[str, Any]:
    """Return the payload the `sprecord_event` bus event carries.

    An SMS's text is left out: the recorder writes every bus event to the
    database. Automations read the text from the SMS event entity, whose
    text is neither recorded nor restored.
    """
    payload = event.payload_dict()
    if isinstance(event, IncomingSmsEvent):
        payload.pop("text", None)
    return payload


@dataclass(slots=True)
class PbxChange:
    """What an event (or the expiry of calls) changed of a PBX."""

    topics: set[str] = field(default_factory=set)
    """What its entities show that changed (`ids.TOPIC_*`, `line_topic()`)."""
    bus: dict[str, Any] | None = None
    """The event's `sprecord_event` data, but for the ids Home Assistant gives."""
    logs: list[dict[str, Any]] = field(default_factory=list)
    """Entries of the call list to log (`sprecord_log`): finished calls, SMS."""
    call: CallChange | None = None
    """What the event did to a call (the call event entity tells)."""
    new_line: str | None = None
    """A line (trunk) seen for the first time."""
    save: bool = False
    """Whether the lasting state changed."""
    reschedule: bool = False
    """Whether the time of the next call expiry may have moved."""
    next_expiry: datetime | None = None
    """When the next call whose end never comes is to be ended (`reschedule`)."""


class Pbx:
    """One PBX of the entry's account and what it reported.

    The first PBX of an entry (`number` 1) keeps the unique ids an entry had
    before accounts with several PBXs were supported, so an update keeps its
    entities and history; it may not know its id until its first event.
    """

    def __init__(
        self,
        entry_unique_id: str,
        title: Callable[[], str],
        pbx_id: str | None,
        number: int,
        *,
        call_timeout: timedelta,
    ) -> None:
        """Prepare the PBX of an entry (`title()` is the entry's title)."""
        self.entry_unique_id = entry_unique_id
        self._title = title
        self.pbx_id = pbx_id
        """The PBX's own id (`device_id` of its events); None until known."""
        self.number = number
        """1 for the entry's first PBX, then 2, 3... in the order first seen."""
        self.tracker = CallTracker(call_timeout=call_timeout)
        self.last_sms: SmsMessage | None = None
        self.last_startup: datetime | None = None
        self.recent_calls: deque[dict[str, Any]] = deque(maxlen=MAX_RECENT)
        """The last finished calls, newest first (`calllog.call_entry()`)."""
        self._expired_entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        """Entries of expired calls by call id: a late end updates its own."""
        self.device_registry_id: str | None = None
        """Home Assistant's id of the PBX's device (set where it is registered)."""

    # --- names and ids -----------------------------------------------------------

    @property
    def primary(self) -> bool:
        """Tell whether this is the entry's first PBX."""
        return self.number == 1

    @property
    def unique_prefix(self) -> str:
        """Return the start of the unique ids of this PBX's device and entities."""
        return unique_prefix(self.entry_unique_id, self.pbx_id, self.number)

    @property
    def identifier(self) -> tuple[str, str]:
        """Return the device registry identifier of the PBX."""
        return (DOMAIN, self.unique_prefix)

    def line_identifier(self, trunk: str) -> tuple[str, str]:
        """Return the device registry identifier of one of its lines."""
        return (DOMAIN, line_identifier(self.unique_prefix, trunk))

    def device_part(self, identifier: str) -> tuple[bool, str | None] | None:
        """Tell what a device identifier is of this PBX (see `ids.device_part()`)."""
        return device_part(self.entry_unique_id, self.pbx_id, self.number, identifier)

    @property
    def name(self) -> str:
        """Return the default name of the PBX's device."""
        title = self._title()
        return title if self.primary else f"{title} {self.number}"

    # --- events -----------------------------------------------------------------

    def handle(
        self,
        event: SpRecordEvent,
        now: datetime,
        name_for: NameFor,
        *,
        replay: bool = False,
        local_zone: tzinfo = UTC,
    ) -> PbxChange:
        """Take one event of this PBX; return what it changed.

        A `replay`ed SMS (`replay.py`) is listed when it is dated, if its
        date reads as a time (`local_zone` reads one without a zone).
        """
        change = PbxChange()
        names: dict[str, str | None] = {}
        match event:
            case IncomingSmsEvent():
                logged = now
                dated = sms_time(event.date, local_zone) if replay else None
                if dated is not None:
                    # Replayed after a long absence: listed when it was sent.
                    logged = min(dated, now).astimezone(now.tzinfo)
                names["sender_name"] = name_for(event.sms_src)
                self.last_sms = SmsMessage(
                    sender=event.sms_src,
                    text=event.text,
                    line=event.trunk,
                    date=event.date,
                    received=now,
                    sender_name=names["sender_name"],
                )
                change.logs.append(
                    {
                        "kind": KIND_SMS,
                        "time": logged.isoformat(),
                        "number": event.sms_src,
                        "name": names["sender_name"],
                        "line": event.trunk,
                    }
                )
                change.new_line = self.tracker.note_line(event.trunk)
                change.topics.add(TOPIC_SMS)
                change.save = True
            case StartupEvent():
                self.last_startup = now
                if ended := self.tracker.restart(now):
                    self._calls_ended(ended, change, name_for)
                # The PBX counts call ids from 1 again: no late end of an
                # earlier call can come, and an old id names a new call.
                self._expired_entries.clear()
            case _:
                if isinstance(event, CallEvent | CallEndEvent | AnswerElsewhereEvent):
                    # Every call event carries the keys, named or not.
                    names = {"caller_name": None, "called_name": None}
                call_change = self.tracker.apply(event, now)
                if call_change is not None:
                    call = call_change.call
                    call.caller_name = name_for(call.caller)
                    call.called_name = name_for(call.called)
                    names["caller_name"] = call.caller_name
                    names["called_name"] = call.called_name
                    self._call_changed(call_change, change, name_for)
        change.bus = {
            "pbx_id": event.device_id,
            "event_type": event.type,
            "payload": bus_payload(event),
            **names,
        }
        return change

    def _call_changed(
        self, call_change: CallChange, change: PbxChange, name_for: NameFor
    ) -> None:
        """Note what an event did to a call; list and log it if it ended."""
        change.call = call_change
        change.new_line = call_change.new_line
        call = call_change.call
        change.topics.add(TOPIC_CALLS)
        if call.trunk:
            change.topics.add(line_topic(call.trunk))
        if call_change.completes_expired and self._relist_call(call, name_for):
            # Listed (and logged) when it expired: its entry learns how it
            # ended, and it is neither listed nor logged again.
            pass
        elif call_change.ended:
            # Also an expired call that was never listed (dropped quietly when
            # too many calls were open) or whose entry left the list.
            change.logs.append(self._log_call(call, name_for))
        if call_change.ended:
            change.topics.add(TOPIC_ENDED)
            change.save = True
        self._reschedule(change)

    def _log_call(self, call: Call, name_for: NameFor) -> dict[str, Any]:
        """List a finished call; return its log entry."""
        entry = _call_entry(call, name_for)
        self.recent_calls.appendleft(entry)
        if call.expired:
            # Remembered past the entry's time in the list: a late end of a
            # call that was listed once is not listed again, in the list or not.
            self._expired_entries[call.call_id] = entry
            while len(self._expired_entries) > MAX_EXPIRED_REMEMBERED:
                self._expired_entries.popitem(last=False)
        return {"kind": KIND_CALL, **entry}

    def _relist_call(self, call: Call, name_for: NameFor) -> bool:
        """Complete the entry of an expired call whose end came late, in place.

        The entry keeps its time (when the call expired), so the list stays
        newest first; one that has left the list is not brought back. False
        when the call was never listed: dropped quietly while too many calls
        were open, or not linked to an entry after a restart.
        """
        if call.call_id not in self._expired_entries:
            return False
        listed = self._expired_entries.pop(call.call_id)
        for position, entry in enumerate(self.recent_calls):
            if entry is listed:
                completed = _call_entry(call, name_for)
                completed["time"] = entry["time"]
                self.recent_calls[position] = completed
                break
        return True

    def remove_line(self, trunk: str) -> None:
        """Forget a line the user removed; it comes back if it is used again."""
        self.tracker.lines.pop(trunk, None)

    # --- call expiry ------------------------------------------------------------

    def next_expiry(self) -> datetime | None:
        """Return when the next call whose end never comes is to be ended."""
        return self.tracker.next_expiry()

    def expire(self, now: datetime, name_for: NameFor) -> PbxChange:
        """End the calls that outlived their time; return what changed."""
        change = PbxChange()
        self._calls_ended(self.tracker.expire(now), change, name_for)
        return change

    def _calls_ended(
        self, calls: list[Call], change: PbxChange, name_for: NameFor
    ) -> None:
        """Note calls that ended without their end event (expired, restart)."""
        if calls:
            LOGGER.debug(
                "Calls over without an end event: %s", [c.call_id for c in calls]
            )
            change.logs.extend(self._log_call(call, name_for) for call in calls)
            change.save = True
            change.topics.update((TOPIC_CALLS, TOPIC_ENDED))
            change.topics.update(line_topic(c.trunk) for c in calls if c.trunk)
        self._reschedule(change)

    def _reschedule(self, change: PbxChange) -> None:
        change.reschedule = True
        change.next_expiry = self.tracker.next_expiry()

    # --- saved state ---------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """Return the state worth keeping across a restart, JSON-friendly."""
        tracker = self.tracker
        sms = self.last_sms
        return {
            "pbx_id": self.pbx_id,
            "number": self.number,
            "missed_count": tracker.missed_count,
            "last_call": tracker.last_call.as_dict() if tracker.last_call else None,
            "last_missed": tracker.last_missed.as_dict()
            if tracker.last_missed
            else None,
            "lines": list(tracker.lines),
            "last_sms": None if sms is None else sms.saved(),
            "recent_calls": list(self.recent_calls),
            "expired_calls": self._saved_expired_calls(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Apply state saved with `as_dict()`."""
        tracker = self.tracker
        tracker.missed_count = int(data.get("missed_count", 0))
        if data.get("last_call"):
            tracker.last_call = Call.from_dict(data["last_call"])
        if data.get("last_missed"):
            tracker.last_missed = Call.from_dict(data["last_missed"])
        for line in data.get("lines", []):
            if is_name(str(line), MAX_LINE_NAME):  # older versions took any
                tracker.note_line(str(line))
        if sms := data.get("last_sms"):
            self.last_sms = SmsMessage.from_dict(sms)
        self.recent_calls.clear()
        self.recent_calls.extend(restore_entries(data.get("recent_calls")))
        self._recall_expired_calls(data.get("expired_calls"))

    def _saved_expired_calls(self) -> list[dict[str, Any]]:
        """Return the expired calls a late end may complete, for saving.

        `listed` is the position of each one's entry in `recent_calls`
        (None when it is out of the list): after a restart, a late end
        completes that entry in place, as it does without a restart.
        """
        positions = {id(entry): n for n, entry in enumerate(self.recent_calls)}
        saved = []
        for call in self.tracker.expired_calls():
            entry = self._expired_entries.get(call.call_id)
            listed = None if entry is None else positions.get(id(entry))
            saved.append({**call.as_dict(), "listed": listed})
        return saved

    def _recall_expired_calls(self, saved: Any) -> None:
        """Take back the expired calls saved with `_saved_expired_calls()`.

        An entry is linked to its call again only if it still reads as that
        call's (same end time); an unreadable call is left out.
        """
        if not isinstance(saved, list):
            return
        calls = []
        for item in saved:
            call = saved_expired_call(item)
            if call is None:
                continue
            calls.append(call)
            listed = item.get("listed")
            if type(listed) is int and 0 <= listed < len(self.recent_calls):
                entry = self.recent_calls[listed]
                if entry.get("time") == call_entry(call)["time"]:
                    self._expired_entries[call.call_id] = entry
        self.tracker.recall_expired(calls)


def _call_entry(call: Call, name_for: NameFor) -> dict[str, Any]:
    """Return a finished call's entry of the list."""
    entry = call_entry(call)
    entry["answered_by_name"] = name_for(call.answered_by)
    return entry


def event_kind(event: SpRecordEvent) -> str | None:
    """Return the kind of event entity an event is for (None: none)."""
    if isinstance(event, CallEvent | CallEndEvent | AnswerElsewhereEvent):
        return EVENT_KIND_CALL
    if isinstance(event, IncomingSmsEvent):
        return EVENT_KIND_SMS
    if isinstance(event, StartupEvent):
        return EVENT_KIND_PBX
    return None
