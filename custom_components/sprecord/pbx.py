"""One PBX of the account: its calls, lines, last SMS, and who listens to them.

An SpRecord account (one API key, one event stream, one config entry) can
have several PBXs; every event names its PBX (`device_id`). The coordinator
keeps the link and hands each event to the `Pbx` it names; a `Pbx` keeps
that PBX's call tracker, lines, missed calls, last call and last SMS, ends
its calls whose end never comes, fires the bus event, and tells its entities.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import hashlib
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.event import async_track_point_in_utc_time

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
from .compat import via_device_info
from .const import (
    DOMAIN,
    EVENT_SPRECORD,
    EVENT_SPRECORD_LOG,
    LOGGER,
    MANUFACTURER,
    MODEL,
)

if TYPE_CHECKING:
    from .coordinator import SpRecordCoordinator

TOPIC_CALLS = "calls"
TOPIC_ENDED = "ended"
TOPIC_SMS = "sms"
TOPIC_LINK = "link"
MAX_EXPIRED_REMEMBERED = 64
"""Expired calls whose late end is recognised as that of a listed call
(twice the calls that can be open at once)."""


def line_topic(trunk: str) -> str:
    """Return the listener topic of one line."""
    return f"line:{trunk}"


type EventListener = Callable[[SpRecordEvent, CallChange | None], None]

LINE_MARK = "_line_"
PBX_MARK = "_pbx_"


def pbx_key(pbx_id: str) -> str:
    """Return a short, stable key of a PBX id for unique ids (not the id)."""
    return hashlib.sha256(f"{DOMAIN}:pbx:{pbx_id}".encode()).hexdigest()[:12]


def unique_prefix(entry_unique_id: str, pbx_id: str | None, number: int) -> str:
    """Return the start of the unique ids of a PBX's device and entities.

    The entry's first PBX keeps the entry's own unique id, as before an
    account could have several PBXs: an update keeps its entities.
    """
    if number == 1 or pbx_id is None:
        return entry_unique_id
    return f"{entry_unique_id}{PBX_MARK}{pbx_key(pbx_id)}"


def device_part(
    entry_unique_id: str, pbx_id: str | None, number: int, identifier: str
) -> tuple[bool, str | None] | None:
    """Tell what a device identifier is of a PBX: (is the PBX, line or None).

    None when the identifier is not of this PBX.
    """
    prefix = unique_prefix(entry_unique_id, pbx_id, number)
    if identifier == prefix:
        return True, None
    line_prefix = f"{prefix}{LINE_MARK}"
    if identifier.startswith(line_prefix):
        return False, identifier.removeprefix(line_prefix)
    return None


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


@dataclass
class SmsMessage:
    """The last SMS, as the sensor shows it."""

    sender: str
    text: str | None
    """The message; None after a restart (a text is never saved)."""
    line: str
    date: datetime | str | None
    received: datetime
    sender_name: str | None = None
    """The phonebook's name of `sender`, when it has one."""

    def as_dict(self) -> dict[str, Any]:
        """Return the SMS as JSON-friendly attributes."""
        return {
            "text": self.text,
            "sender": self.sender,
            "sender_name": self.sender_name,
            "line": self.line,
            "date": self.date.isoformat()
            if isinstance(self.date, datetime)
            else self.date,
            "received": self.received.isoformat(),
        }

    def saved(self) -> dict[str, Any]:
        """Return what is saved of the SMS: everything but its text.

        The text stays in memory only (privacy: nothing on disk holds it);
        `""` rather than no key, so that an older version reads the rest.
        """
        return {**self.as_dict(), "text": ""}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmsMessage:
        """Rebuild an SMS saved with `saved()`, without its text."""
        date = data.get("date")
        if isinstance(date, str):
            with contextlib.suppress(ValueError):  # the server's own text
                date = datetime.fromisoformat(date)
        return cls(
            sender=data["sender"],
            text=None,  # an older version saved it: not shown again
            line=data["line"],
            date=date,
            received=datetime.fromisoformat(data["received"]),
            sender_name=data.get("sender_name"),
        )


class Pbx:
    """One PBX of the entry's account and what it reported.

    The first PBX of an entry (`number` 1) keeps the unique ids an entry had
    before accounts with several PBXs were supported, so an update keeps its
    entities and history; it may not know its id until its first event.
    """

    def __init__(
        self,
        coordinator: SpRecordCoordinator,
        pbx_id: str | None,
        number: int,
        *,
        call_timeout: timedelta,
    ) -> None:
        """Prepare the PBX; its device is registered by the coordinator."""
        self.coordinator = coordinator
        self.hass: HomeAssistant = coordinator.hass
        self.entry = coordinator.entry
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
        """Home Assistant's id of the PBX's device (bus events, logbook)."""
        self._listeners: dict[str, list[CALLBACK_TYPE]] = {}
        self._event_listeners: list[EventListener] = []
        self._line_listeners: list[Callable[[str], None]] = []
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._expiry_at: datetime | None = None
        self._expiry_unsub: CALLBACK_TYPE | None = None
        self._stopped = False

    # --- names and ids -----------------------------------------------------------

    @property
    def primary(self) -> bool:
        """Tell whether this is the entry's first PBX."""
        return self.number == 1

    @property
    def unique_prefix(self) -> str:
        """Return the start of the unique ids of this PBX's device and entities."""
        return unique_prefix(str(self.entry.unique_id), self.pbx_id, self.number)

    @property
    def identifier(self) -> tuple[str, str]:
        """Return the device registry identifier of the PBX."""
        return (DOMAIN, self.unique_prefix)

    def line_identifier(self, trunk: str) -> tuple[str, str]:
        """Return the device registry identifier of one of its lines."""
        return (DOMAIN, f"{self.unique_prefix}{LINE_MARK}{trunk}")

    def device_part(self, identifier: str) -> tuple[bool, str | None] | None:
        """Tell what a device identifier is of this PBX (see `device_part()`)."""
        return device_part(
            str(self.entry.unique_id), self.pbx_id, self.number, identifier
        )

    @property
    def name(self) -> str:
        """Return the default name of the PBX's device."""
        title = self.entry.title
        return title if self.primary else f"{title} {self.number}"

    @property
    def available(self) -> bool:
        """Return whether events arrive (the link is account-wide)."""
        return self.coordinator.available

    # --- listeners ----------------------------------------------------------------

    @callback
    def async_add_listener(self, topic: str, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` after events that touch `topic`; return the remover."""
        listeners = self._listeners.setdefault(topic, [])
        listeners.append(update)
        return lambda: _discard(listeners, update)

    @callback
    def async_add_event_listener(self, listener: EventListener) -> CALLBACK_TYPE:
        """Call `listener` with every event of this PBX; return the remover."""
        self._event_listeners.append(listener)
        return lambda: _discard(self._event_listeners, listener)

    @callback
    def async_add_line_listener(self, listener: Callable[[str], None]) -> CALLBACK_TYPE:
        """Call `listener` with each line (trunk) seen for the first time."""
        self._line_listeners.append(listener)
        return lambda: _discard(self._line_listeners, listener)

    @callback
    def touch(self, *topics: str) -> None:
        """Mark topics changed; listeners run once, after the current burst.

        Events that arrive together (one network read) are handled in one go,
        so a sensor is written once per burst rather than once per event.
        """
        self._dirty.update(topics)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.hass.loop.call_soon(self._flush)

    @callback
    def _flush(self) -> None:
        """Run the listeners of the topics marked changed."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        if self._stopped:
            return
        for topic in dirty:
            for update in list(self._listeners.get(topic, ())):
                try:
                    update()
                except Exception:  # noqa: BLE001 (logged with its traceback)
                    # One entity's bug must not keep the others stale.
                    LOGGER.exception("Error while updating an SpRecord entity")

    @callback
    def async_shutdown(self) -> None:
        """Stop the timer and drop the listeners (the entry unloads)."""
        self._stopped = True
        if self._expiry_unsub is not None:
            self._expiry_unsub()
            self._expiry_unsub = None
        self._listeners.clear()
        self._event_listeners.clear()
        self._line_listeners.clear()

    # --- events -----------------------------------------------------------------

    @callback
    def handle(self, event: SpRecordEvent, now: datetime) -> None:
        """Take one event of this PBX: track, fire, notify."""
        change: CallChange | None = None
        logged: dict[str, Any] | None = None
        names: dict[str, str | None] = {}
        name_for = self.coordinator.phonebook.name_for
        match event:
            case IncomingSmsEvent():
                names["sender_name"] = name_for(event.sms_src)
                self.last_sms = SmsMessage(
                    sender=event.sms_src,
                    text=event.text,
                    line=event.trunk,
                    date=event.date,
                    received=now,
                    sender_name=names["sender_name"],
                )
                logged = {
                    "kind": KIND_SMS,
                    "time": now.isoformat(),
                    "number": event.sms_src,
                    "name": names["sender_name"],
                    "line": event.trunk,
                }
                self._new_line(self.tracker.note_line(event.trunk))
                self.touch(TOPIC_SMS)
                self.coordinator.async_schedule_save()
            case StartupEvent():
                self.last_startup = now
                if ended := self.tracker.restart(now):
                    self._calls_ended(ended)
                # The PBX counts call ids from 1 again: no late end of an
                # earlier call can come, and an old id names a new call.
                self._expired_entries.clear()
            case _:
                if isinstance(event, CallEvent | CallEndEvent | AnswerElsewhereEvent):
                    # Every call event carries the keys, named or not.
                    names = {"caller_name": None, "called_name": None}
                change = self.tracker.apply(event, now)
                if change is not None:
                    call = change.call
                    call.caller_name = name_for(call.caller)
                    call.called_name = name_for(call.called)
                    names["caller_name"] = call.caller_name
                    names["called_name"] = call.called_name
                    logged = self._call_changed(change)

        self.hass.bus.async_fire(
            EVENT_SPRECORD,
            {
                "device_id": self.device_registry_id,
                "config_entry_id": self.entry.entry_id,
                "pbx_id": event.device_id,
                "event_type": event.type,
                "payload": bus_payload(event),
                **names,
            },
        )
        if logged is not None:
            self._fire_log(logged)
        self._notify(event, change)

    @callback
    def _call_changed(self, change: CallChange) -> dict[str, Any] | None:
        """Show what an event did to a call; return its log entry if it ended."""
        self._new_line(change.new_line)
        topics = [TOPIC_CALLS]
        if change.call.trunk:
            topics.append(line_topic(change.call.trunk))
        logged: dict[str, Any] | None = None
        if change.completes_expired and self._relist_call(change.call):
            # Listed (and logged) when it expired: its entry learns how it
            # ended, and it is neither listed nor logged again.
            pass
        elif change.ended:
            # Also an expired call that was never listed (dropped quietly when
            # too many calls were open) or whose entry left the list.
            logged = self._log_call(change.call)
        if change.ended:
            topics.append(TOPIC_ENDED)
            self.coordinator.async_schedule_save()
        self.touch(*topics)
        self._schedule_expiry()
        return logged

    def _log_call(self, call: Call) -> dict[str, Any]:
        """List a finished call; return its log entry."""
        entry = self._call_entry(call)
        self.recent_calls.appendleft(entry)
        if call.expired:
            # Remembered past the entry's time in the list: a late end of a
            # call that was listed once is not listed again, in the list or not.
            self._expired_entries[call.call_id] = entry
            while len(self._expired_entries) > MAX_EXPIRED_REMEMBERED:
                self._expired_entries.popitem(last=False)
        return {"kind": KIND_CALL, **entry}

    def _call_entry(self, call: Call) -> dict[str, Any]:
        """Return a finished call's entry of the list."""
        entry = call_entry(call)
        entry["answered_by_name"] = self.coordinator.phonebook.name_for(
            call.answered_by
        )
        return entry

    def _relist_call(self, call: Call) -> bool:
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
                completed = self._call_entry(call)
                completed["time"] = entry["time"]
                self.recent_calls[position] = completed
                break
        return True

    @callback
    def _fire_log(self, entry: dict[str, Any]) -> None:
        """Fire the one `sprecord_log` event of a finished call or an SMS.

        It names the PBX's recent-calls sensor, so that a logbook card or
        filter on that entity shows the call list.
        """
        entity_id = er.async_get(self.hass).async_get_entity_id(
            "sensor", DOMAIN, f"{self.unique_prefix}_recent_calls"
        )
        self.hass.bus.async_fire(
            EVENT_SPRECORD_LOG,
            {
                "entity_id": entity_id,
                "device_id": self.device_registry_id,
                "config_entry_id": self.entry.entry_id,
                "pbx_id": self.pbx_id,
                **entry,
            },
        )

    @callback
    def _notify(self, event: SpRecordEvent, change: CallChange | None) -> None:
        """Hand the event to its listeners (the event entities), each on its own."""
        for listener in list(self._event_listeners):
            try:
                listener(event, change)
            except Exception:  # noqa: BLE001 (logged with its traceback)
                LOGGER.exception(
                    "Error while handing an SpRecord %s event on", event.type
                )

    @callback
    def _new_line(self, trunk: str | None) -> None:
        """Announce a line seen for the first time.

        Not while the entry unloads: its entities would be added to a
        platform that is gone. The line is kept (and saved), so it has its
        entities at the next setup.
        """
        if trunk is None or self.coordinator.unloading:
            return
        self.coordinator.async_schedule_save()
        for listener in list(self._line_listeners):
            listener(trunk)

    @callback
    def async_remove_line(self, trunk: str) -> None:
        """Forget a line the user removed; it comes back if it is used again."""
        self.tracker.lines.pop(trunk, None)
        self.coordinator.async_schedule_save()

    # --- call expiry ------------------------------------------------------------

    @callback
    def _schedule_expiry(self) -> None:
        """Make sure a timer ends the next call whose end never comes."""
        when = self.tracker.next_expiry()
        if when == self._expiry_at:
            return
        if self._expiry_unsub is not None:
            self._expiry_unsub()
            self._expiry_unsub = None
        self._expiry_at = when
        if when is not None and not self._stopped:
            self._expiry_unsub = async_track_point_in_utc_time(
                self.hass, self._expire, when
            )

    @callback
    def _expire(self, now: datetime) -> None:
        """End the calls that outlived their time."""
        self._expiry_unsub = None
        self._expiry_at = None
        self._calls_ended(self.tracker.expire(now))

    @callback
    def _calls_ended(self, calls: list[Call]) -> None:
        """Show calls that ended without their end event (expired, restart)."""
        if calls:
            LOGGER.debug(
                "Calls over without an end event: %s", [c.call_id for c in calls]
            )
            for call in calls:
                self._fire_log(self._log_call(call))
            self.coordinator.async_schedule_save()
            topics = {TOPIC_CALLS, TOPIC_ENDED}
            topics.update(line_topic(c.trunk) for c in calls if c.trunk)
            self.touch(*topics)
        self._schedule_expiry()

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


def pbx_device_info(pbx: Pbx) -> DeviceInfo:
    """Return the device info of a PBX."""
    return DeviceInfo(
        identifiers={pbx.identifier},
        manufacturer=MANUFACTURER,
        model=MODEL,
        name=pbx.name,
    )


def line_device_info(pbx: Pbx, trunk: str) -> DeviceInfo:
    """Return the device info of one line (trunk), under its PBX."""
    # The first PBX's lines keep their names; another PBX's name theirs too,
    # so that two offices' GSM1 can be told apart.
    info = DeviceInfo(
        identifiers={pbx.line_identifier(trunk)},
        manufacturer=MANUFACTURER,
        model="GSM line",
        translation_key="line" if pbx.primary else "pbx_line",
        translation_placeholders={"line": trunk}
        if pbx.primary
        else {"line": trunk, "pbx": pbx.name},
    )
    info.update(via_device_info(pbx.identifier, pbx.device_registry_id))
    return info


def _discard(items: list[Any], item: Any) -> None:
    """Remove an item if it is still there (shutdown may have cleared it)."""
    if item in items:
        items.remove(item)
