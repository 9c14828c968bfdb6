"""The coordinator: the entry's PBXs, and Home Assistant's side of their news.

The link hands every event once to `async_handle_event()`, the sink. The
coordinator routes it to the `Pbx` it names (a PBX seen first gets its
device), and is the one place that turns what a `Pbx` returns (`PbxChange`)
into Home Assistant: the `sprecord_event` and `sprecord_log` bus events, a
save, the timer that ends calls whose end never comes, and entity updates
through Home Assistant's dispatcher. Entities are written once per burst:
the signals of a burst are sent together, after it has been read. After a
long absence the stream's backlog is held until it is over and taken as a
whole (`backlog.py`, `replay.py`): what it only replays updates the state
but fires no trigger.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from .api import SpRecordEvent
from .api.clean import for_log, is_pbx_id
from .backlog import BacklogHold
from .const import CONF_DEVICE_ID, DOMAIN, EVENT_SPRECORD, EVENT_SPRECORD_LOG, LOGGER
from .contacts import EntryPhonebook
from .devices import async_register_device, async_remove_line_devices
from .expiry import ExpiryTimers
from .ids import signal_event, signal_new_line, signal_new_pbx, signal_pbx
from .pbx import Pbx, PbxChange, event_kind
from .replay import Delivery
from .resume import ResumePosition, StreamPosition
from .storage import SpRecordStore

if TYPE_CHECKING:
    from .autodial import PbxAutoDial


_BUS_FLAGS: dict[Delivery, dict[str, bool]] = {
    Delivery.REPLAY: {"replayed": True},
    Delivery.AGAIN: {"again": True},
}
"""What a `sprecord_event` adds to say how its event came (live: nothing)."""
MAX_PBXS = 16
"""PBXs one entry follows; events of more are skipped (memory stays bounded
whatever arrives, e.g. webhook bodies with made-up ids)."""


class SpRecordCoordinator:
    """Holds the entry's PBXs and shows what their events change."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        store: SpRecordStore,
        *,
        call_timeout: timedelta,
        position: StreamPosition,
    ) -> None:
        """Prepare the coordinator; the link feeds it once set up.

        `position` is where the event stream resumes: the link's stream
        moves it, the coordinator saves it with the PBXs.
        """
        self.hass = hass
        self.entry = entry
        self.store = store
        self.options = dict(entry.options)
        """The options the coordinator runs with (a change reloads the entry)."""
        self.call_timeout = call_timeout
        self.autodial: dict[str, PbxAutoDial] = {}
        """Auto-dialers by their PBX's `unique_prefix` (PBXs with an address)."""
        self.phonebook = EntryPhonebook(hass, entry)
        """Names for numbers (the UI's contacts and the options' file)."""
        self.position = position
        """Where the event stream resumes (the link's stream moves it)."""
        first_id = entry.data.get(CONF_DEVICE_ID)
        if not isinstance(first_id, str) or not is_pbx_id(first_id):
            first_id = None  # none yet, or taken from a request by an old version
        self.primary = self._new_pbx(first_id, 1)
        """The entry's first PBX: its device exists before any event."""
        self.pbxs: dict[str, Pbx] = {}
        """The PBXs seen, by their own id."""
        if self.primary.pbx_id is not None:
            self.pbxs[self.primary.pbx_id] = self.primary
        self._too_many_logged = False
        self.unloading = False
        """Set while the entry unloads: no new PBX, no new save."""
        self._dirty: dict[str, set[str]] = {}
        """The topics changed in this burst, by PBX (`unique_prefix`)."""
        self._flush_scheduled = False
        self._resume_moved = False
        self._expiry = ExpiryTimers(hass)
        """Each PBX's timer that ends calls whose end never comes."""
        self._backlog = BacklogHold(
            hass,
            longest_call=call_timeout,
            # A stream resumed from before calls in progress is not yet
            # known to send them again (`StreamKeeper._probe`).
            stream_open=lambda: position.open and not position.probing,
            over=self.async_release_backlog,
        )
        """The stream's first events after a long absence, held."""
        self._stopped = False
        position.active_calls = self._active_calls

    # --- the PBXs --------------------------------------------------------------

    @property
    def all_pbxs(self) -> list[Pbx]:
        """Return every PBX of the entry, the first one first."""
        others = [pbx for pbx in self.pbxs.values() if not pbx.primary]
        return [self.primary, *sorted(others, key=lambda pbx: pbx.number)]

    def _new_pbx(self, pbx_id: str | None, number: int) -> Pbx:
        entry = self.entry
        return Pbx(
            str(entry.unique_id),
            lambda: entry.title,
            pbx_id,
            number,
            call_timeout=self.call_timeout,
        )

    def add_saved_pbx(self, pbx_id: str, number: int) -> Pbx:
        """Return a PBX known from saved state (its device is made at setup)."""
        pbx = self._new_pbx(pbx_id, number)
        self.pbxs[pbx_id] = pbx
        return pbx

    def _active_calls(self) -> list[tuple[str, str]]:
        """Return the calls in progress, by PBX id and call id."""
        return [
            (pbx_id, call_id)
            for pbx_id, pbx in self.pbxs.items()
            for call_id in pbx.tracker.active
        ]

    def follows_pbx(self, pbx_id: str) -> bool:
        """Tell whether the entry follows the PBX of that id."""
        return pbx_id in self.pbxs

    @callback
    def async_adopt_pbx(self, pbx_id: str) -> None:
        """Follow a PBX the cloud named while it verified our webhook."""
        self._pbx_for(pbx_id)

    @callback
    def async_register_devices(self) -> None:
        """Create (or find) the device of every PBX known at setup."""
        for pbx in self.all_pbxs:
            async_register_device(self.hass, self.entry.entry_id, pbx)

    @callback
    def _pbx_for(self, pbx_id: str) -> Pbx | None:
        """Return the PBX an event names; a PBX seen first gets its device.

        None when the entry already follows `MAX_PBXS` PBXs.
        """
        if (pbx := self.pbxs.get(pbx_id)) is not None:
            return pbx
        primary = self.primary
        if primary.pbx_id is None:
            # The entry's first PBX learns its id from its first event.
            primary.pbx_id = pbx_id
            self.pbxs[pbx_id] = primary
            self.hass.config_entries.async_update_entry(
                self.entry, data={**self.entry.data, CONF_DEVICE_ID: pbx_id}
            )
            return primary
        if self.unloading:
            return None  # its entities could not be added any more
        if len(self.pbxs) >= MAX_PBXS:
            if not self._too_many_logged:
                self._too_many_logged = True
                LOGGER.warning(
                    "Events of more than %s PBXs on one SpRecord account: "
                    "the others are skipped",
                    MAX_PBXS,
                )
            return None
        number = max(other.number for other in self.all_pbxs) + 1
        pbx = self._new_pbx(pbx_id, number)
        self.pbxs[pbx_id] = pbx
        async_register_device(self.hass, self.entry.entry_id, pbx)
        LOGGER.info("Another PBX of the SpRecord account sent events: %s", pbx.name)
        async_dispatcher_send(self.hass, signal_new_pbx(self.entry.entry_id), pbx)
        self.async_schedule_save()
        return pbx

    @callback
    def async_remove_pbx(self, pbx: Pbx) -> None:
        """Forget a PBX the user removed; it comes back if it sends again."""
        if pbx.primary or pbx.pbx_id is None:
            return
        self._expiry.async_cancel(pbx.unique_prefix)
        self.pbxs.pop(pbx.pbx_id, None)
        async_remove_line_devices(self.hass, self.entry.entry_id, pbx.unique_prefix)
        self.async_schedule_save()

    @callback
    def async_remove_device(self, identifiers: list[str]) -> None:
        """Forget the PBX (with its lines) or the line a removed device was."""
        for pbx in self.all_pbxs:
            for identifier in identifiers:
                if (part := pbx.device_part(identifier)) is None:
                    continue
                is_pbx, line = part
                if is_pbx:
                    self.async_remove_pbx(pbx)
                elif line is not None:
                    pbx.remove_line(line)
                    self.async_schedule_save()
                return

    # --- saved state -------------------------------------------------------------

    def restore(self, saved_pbxs: list[dict[str, Any]]) -> None:
        """Put saved state back: the first PBX's, and the other PBXs seen."""
        for saved in saved_pbxs:
            try:
                self._restore(saved)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                LOGGER.warning(
                    "Ignored unreadable saved SpRecord state: %s", for_log(err)
                )

    def _restore(self, saved: dict[str, Any]) -> None:
        """Apply one PBX's saved state.

        A PBX id that is no PBX id (saved by a version that took any) is not
        taken: that PBX is forgotten, the entry's first one learns its id anew.
        """
        number = int(saved.get("number", 1))
        pbx_id = saved.get("pbx_id")
        if not isinstance(pbx_id, str) or not is_pbx_id(pbx_id):
            pbx_id = None
        if number == 1:
            pbx = self.primary
            if pbx.pbx_id is None and isinstance(pbx_id, str):
                pbx.pbx_id = pbx_id
                self.pbxs[pbx_id] = pbx
        elif isinstance(pbx_id, str) and pbx_id not in self.pbxs:
            pbx = self.add_saved_pbx(pbx_id, number)
        else:
            return
        pbx.restore(saved)

    @callback
    def async_schedule_save(self) -> None:
        """Save the PBXs' lasting state soon (the unload saves it at once)."""
        if not self.unloading:
            self.store.async_schedule_save(self.saved)

    def saved(self) -> dict[str, Any]:
        """Return what the store keeps: every PBX, and where the stream resumes."""
        if self._backlog.holding:
            # Held events are not handled yet: the stream resumes before them,
            # and Home Assistant is as far away as it was.
            resume = self._backlog.resumed_from
        else:
            resume = self.position.saved(dt_util.utcnow())
        return self.store.dump(self.all_pbxs, resume)

    # --- events --------------------------------------------------------------

    @callback
    def async_handle_event(self, event: SpRecordEvent, transport: str) -> None:
        """Take one event from the link: route it, show what it changed.

        A bug anywhere behind it (the PBX model, an entity) is logged with its
        traceback and the event is skipped: the stream and the webhook go on
        with the next one.
        """
        again = False
        if transport == "sse":
            self._resume_moved = True
            self._schedule_flush()
            again = self.position.sent_again(event)
        if self._backlog.async_hold(event, again=again):
            return
        self._handle(event, Delivery.LIVE)

    @callback
    def _handle(self, event: SpRecordEvent, delivery: Delivery) -> None:
        """Route one event to its PBX and show what it changed."""
        if delivery is Delivery.STALE:
            return
        replay = delivery in (Delivery.REPLAY, Delivery.RESENT)
        try:
            if (pbx := self._pbx_for(event.device_id)) is not None:
                change = pbx.handle(
                    event,
                    dt_util.utcnow(),
                    self.phonebook.name_for,
                    replay=replay,
                    local_zone=dt_util.get_default_time_zone(),
                )
                self._show(pbx, change, event, delivery)
        except Exception:  # noqa: BLE001 (logged with its traceback)
            LOGGER.exception(
                "Error while handling an SpRecord %s event", for_log(event.type)
            )

    @callback
    def async_expect_backlog(self, resumed_from: ResumePosition) -> None:
        """Hold the events to come: the stream resumes after a long absence.

        After a shorter absence than the longest call every event is shown
        at once (`BacklogHold.async_expect()`).
        """
        self._backlog.async_expect(resumed_from)

    @callback
    def async_stream_opened(self) -> None:
        """Take note of a stream that opened (a held backlog comes on it)."""
        self._backlog.async_stream_opened()

    @callback
    def async_release_backlog(self, *, unloading: bool = False) -> None:
        """Handle the held backlog as a whole (also when the entry unloads).

        At an unload, a call sent again is not rung: its end may be on its
        way, and the next setup resumes from before it again.
        """
        for event, delivery in self._backlog.async_take():
            unrung = unloading and delivery is Delivery.AGAIN
            self._handle(event, Delivery.RESENT if unrung else delivery)

    @callback
    def _show(
        self,
        pbx: Pbx,
        change: PbxChange,
        event: SpRecordEvent | None = None,
        delivery: Delivery = Delivery.LIVE,
    ) -> None:
        """Turn what a PBX's event (or expiry) changed into Home Assistant's.

        A replayed event (`replay.py`) updates the state and the logbook, and
        its bus event says `replayed`; it triggers no event entity. One sent
        again after a restart, of a call over since, only updates the state;
        of a call still going, it fires as new, its bus event saying `again`.
        """
        hass = self.hass
        entry_id = self.entry.entry_id
        prefix = pbx.unique_prefix
        if change.new_line is not None and not self.unloading:
            # Not while the entry unloads: its entities would be added to a
            # platform that is gone. The line is kept (and saved at unload).
            self.async_schedule_save()
            async_dispatcher_send(hass, signal_new_line(entry_id), pbx, change.new_line)
        if change.topics:
            self._dirty.setdefault(prefix, set()).update(change.topics)
            self._schedule_flush()
        if change.save:
            self.async_schedule_save()
        if change.reschedule:
            self._expiry.async_schedule(
                pbx.unique_prefix,
                change.next_expiry,
                lambda now: self._show(pbx, pbx.expire(now, self.phonebook.name_for)),
            )
        if change.bus is not None and delivery is not Delivery.RESENT:
            data = {
                "device_id": pbx.device_registry_id,
                "config_entry_id": entry_id,
                **change.bus,
            }
            if delivery is not Delivery.LIVE:
                data.update(_BUS_FLAGS.get(delivery, {}))
            hass.bus.async_fire(EVENT_SPRECORD, data)
        for logged in change.logs:
            self._fire_log(pbx, logged)
        if (
            event is not None
            and delivery in (Delivery.LIVE, Delivery.AGAIN)
            and (kind := event_kind(event))
        ):
            # The event entity fires at once, one event after the other.
            async_dispatcher_send(
                hass, signal_event(entry_id, prefix, kind), event, change.call
            )

    @callback
    def _fire_log(self, pbx: Pbx, entry: dict[str, Any]) -> None:
        """Fire the one `sprecord_log` event of a finished call or an SMS.

        It names the PBX's recent-calls sensor, so that a logbook card or
        filter on that entity shows the call list.
        """
        entity_id = er.async_get(self.hass).async_get_entity_id(
            "sensor", DOMAIN, f"{pbx.unique_prefix}_recent_calls"
        )
        self.hass.bus.async_fire(
            EVENT_SPRECORD_LOG,
            {
                "entity_id": entity_id,
                "device_id": pbx.device_registry_id,
                "config_entry_id": self.entry.entry_id,
                "pbx_id": pbx.pbx_id,
                **entry,
            },
        )

    @callback
    def _schedule_flush(self) -> None:
        """Send the burst's signals once it has been read."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.hass.loop.call_soon(self._flush)

    @callback
    def _flush(self) -> None:
        """Write the entities of the topics changed; save a moved resume id.

        Events that arrive together (one network read) are handled in one
        go, so an entity is written once per burst rather than once per event.
        """
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, {}
        if self._stopped:
            return
        if self._resume_moved:
            self._resume_moved = False
            self.async_schedule_save()
        entry_id = self.entry.entry_id
        for prefix, topics in dirty.items():
            for topic in topics:
                async_dispatcher_send(self.hass, signal_pbx(entry_id, prefix, topic))

    @callback
    def async_shutdown(self) -> None:
        """Stop the timers (the entry unloads)."""
        self._stopped = True
        self._backlog.async_take()  # released at the unload's start: none left
        self._expiry.async_stop()
