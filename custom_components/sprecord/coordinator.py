"""The stream coordinator: one event stream per entry, kept up for its life.

It owns the SSE connection (never more than one: the server allows three in
all), reconnects forever with capped, jittered backoff, feeds every event once
to the call tracker, the bus and the entities, and keeps the link's figures for
diagnostics.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import random
import time
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    EventStream,
    IncomingSmsEvent,
    ProtocolError,
    SpRecordClient,
    SpRecordError,
    SpRecordEvent,
    StartupEvent,
    TooManyConnectionsError,
    VerificationEvent,
)
from .calls import Call, CallChange, CallTracker
from .const import (
    CONF_DEVICE_ID,
    DOMAIN,
    EVENT_SPRECORD,
    ISSUE_TOO_MANY_CONNECTIONS,
    LOGGER,
    TRANSPORT_BOTH,
    TRANSPORT_SSE,
    TRANSPORT_WEBHOOK,
)
from .dedupe import RecentEvents, SeenStreamIds

if TYPE_CHECKING:
    from .storage import SpRecordStore
    from .webhook import WebhookTransport

BACKOFF_MIN = 1.0
BACKOFF_MAX = 300.0
BUSY_BACKOFF_MIN = 60.0
"""After a 429 another client holds the connections: wait at least this."""
BUSY_BACKOFF_MAX = 900.0
HEALTHY_STREAM_SECONDS = 60.0
"""A stream that lived this long resets the backoff, events or not."""
STREAM_READ_TIMEOUT = 90.0
"""A stream that sends no byte (not even a keep-alive) this long is dead."""
YIELD_EVERY = 50
"""Events handled in a row before the stream yields to the event loop."""
LINK_GRACE = 30.0
"""A drop shorter than this is not shown: no log, no unavailable entities."""

MAX_COUNTED_TYPES = 32
"""Event types counted by name in diagnostics; more go under `OTHER_TYPES`."""
OTHER_TYPES = "(other types)"

TOPIC_CALLS = "calls"
TOPIC_ENDED = "ended"
TOPIC_SMS = "sms"
TOPIC_LINK = "link"


def line_topic(trunk: str) -> str:
    """Return the listener topic of one line."""
    return f"line:{trunk}"


type EventListener = Callable[[SpRecordEvent, CallChange | None], None]


@dataclass
class SmsMessage:
    """The last SMS, as the sensor shows it."""

    sender: str
    text: str
    line: str
    date: datetime | str | None
    received: datetime

    def as_dict(self) -> dict[str, Any]:
        """Return the SMS as JSON-friendly attributes (also what is saved)."""
        return {
            "text": self.text,
            "sender": self.sender,
            "line": self.line,
            "date": self.date.isoformat()
            if isinstance(self.date, datetime)
            else self.date,
            "received": self.received.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmsMessage:
        """Rebuild an SMS saved with `as_dict()`."""
        date = data.get("date")
        if isinstance(date, str):
            with contextlib.suppress(ValueError):  # the server's own text
                date = datetime.fromisoformat(date)
        return cls(
            sender=data["sender"],
            text=data["text"],
            line=data["line"],
            date=date,
            received=datetime.fromisoformat(data["received"]),
        )


@dataclass
class LinkStats:
    """What the link did, for diagnostics."""

    connects: int = 0
    drops: int = 0
    auth_failures: int = 0
    busy_refusals: int = 0
    malformed_events: int = 0
    duplicates: int = 0
    """Events that came on both transports and were handled once."""
    last_error: str | None = None
    last_connected: datetime | None = None
    last_event: datetime | None = None
    events_by_type: Counter[str] = field(default_factory=Counter)
    events_by_transport: Counter[str] = field(default_factory=Counter)

    def count_type(self, event_type: str) -> None:
        """Count an event by its type, within a bound on the number of types."""
        by_type = self.events_by_type
        if event_type in by_type or len(by_type) < MAX_COUNTED_TYPES:
            by_type[event_type] += 1
        else:
            by_type[OTHER_TYPES] += 1

    def as_dict(self) -> dict[str, Any]:
        """Return the figures, JSON-friendly."""
        return {
            "connects": self.connects,
            "drops": self.drops,
            "auth_failures": self.auth_failures,
            "busy_refusals": self.busy_refusals,
            "malformed_events": self.malformed_events,
            "duplicates": self.duplicates,
            "last_error": self.last_error,
            "last_connected": _iso(self.last_connected),
            "last_event": _iso(self.last_event),
            "events_by_type": dict(self.events_by_type),
            "events_by_transport": dict(self.events_by_transport),
        }


@dataclass
class SpRecordRuntimeData:
    """What a loaded entry holds."""

    client: SpRecordClient
    coordinator: SpRecordCoordinator

    @property
    def tracker(self) -> CallTracker:
        """Return the entry's call tracker."""
        return self.coordinator.tracker


type SpRecordConfigEntry = ConfigEntry[SpRecordRuntimeData]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class SpRecordCoordinator:
    """Keeps the entry's event stream and hands events to everything else."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SpRecordConfigEntry,
        client: SpRecordClient,
        store: SpRecordStore,
        *,
        call_timeout: timedelta,
        transport: str = TRANSPORT_SSE,
    ) -> None:
        """Prepare the coordinator; `async_connect()` opens the stream."""
        self.hass = hass
        self.entry = entry
        self.client = client
        self.store = store
        self.options = dict(entry.options)
        """The options the coordinator runs with (a change reloads the entry)."""
        self.transport = transport
        self.tracker = CallTracker(call_timeout=call_timeout)
        self.webhook: WebhookTransport | None = None
        self._recent = RecentEvents() if transport != TRANSPORT_SSE else None
        """With both transports on (or SSE standing in for a webhook that the
        cloud may still call), an event can come twice: handle it once."""
        self._stream_task: asyncio.Task[None] | None = None
        self._stream_ids = SeenStreamIds()
        """A server resuming at-least-once sends handled events again."""
        self.last_sms: SmsMessage | None = None
        self.last_startup: datetime | None = None
        self.stats = LinkStats()
        self.device_registry_id: str | None = None
        """Home Assistant's id of the PBX device (for bus events, logbook)."""
        self.connected = False
        """Whether the event stream is open."""
        self.available = False
        """Whether events arrive (a transport delivers, or a drop is short)."""
        self.webhook_registered = False
        """Whether the SpRecord cloud holds the webhook."""
        self._stream: EventStream | None = None
        self._last_event_id: str | None = None
        self._listeners: dict[str, list[CALLBACK_TYPE]] = {}
        self._event_listeners: list[EventListener] = []
        self._line_listeners: list[Callable[[str], None]] = []
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._expiry_at: datetime | None = None
        self._expiry_unsub: CALLBACK_TYPE | None = None
        self._grace_unsub: CALLBACK_TYPE | None = None
        self._outage_logged = False
        self._malformed_logged = False
        self._stopped = False

    # --- listeners ------------------------------------------------------------

    @callback
    def async_add_listener(self, topic: str, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` after events that touch `topic`; return the remover."""
        listeners = self._listeners.setdefault(topic, [])
        listeners.append(update)
        return lambda: _discard(listeners, update)

    @callback
    def async_add_event_listener(self, listener: EventListener) -> CALLBACK_TYPE:
        """Call `listener` with every event as it comes; return the remover."""
        self._event_listeners.append(listener)
        return lambda: _discard(self._event_listeners, listener)

    @callback
    def async_add_line_listener(self, listener: Callable[[str], None]) -> CALLBACK_TYPE:
        """Call `listener` with each line (trunk) seen for the first time."""
        self._line_listeners.append(listener)
        return lambda: _discard(self._line_listeners, listener)

    @callback
    def _touch(self, *topics: str) -> None:
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

    # --- the link ------------------------------------------------------------

    async def async_connect(self, *, keep_open: bool = True) -> None:
        """Open the stream at setup, turning failures into setup outcomes.

        Without `keep_open` it only proves the URL and key (webhook mode).
        """
        try:
            stream = await self.client.connect()
        except AuthenticationError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except TooManyConnectionsError as err:
            if not keep_open:
                # The key passed (the server counts streams after it checks
                # the key) and webhook mode needs no stream of its own.
                self._link_up()
                return
            self._raise_busy_issue()
            if self.transport == TRANSPORT_BOTH:
                # The webhook carries the events meanwhile; the stream keeps
                # trying with its busy backoff once the entry runs.
                self.stats.busy_refusals += 1
                return
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN, translation_key="too_many_connections"
            ) from err
        except SpRecordError as err:
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err)},
            ) from err
        if keep_open:
            self._stream = stream
        else:
            stream.close()
        self._link_up()

    @callback
    def async_start(self) -> None:
        """Read the stream in a task that lives as long as the entry."""
        if self._stream_task is not None and not self._stream_task.done():
            return
        self._stream_task = self.entry.async_create_background_task(
            self.hass, self._run(), f"{DOMAIN} event stream {self.entry.title}"
        )

    @callback
    def async_stop_stream(self) -> None:
        """Stop reading the stream and close it (the webhook took over)."""
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    @callback
    def async_webhook_status(self, registered: bool) -> None:
        """Follow the webhook's registration.

        In webhook-only mode, use the stream while the hook is not registered:
        events must not be lost because the instance has no external URL or
        the cloud refused the hook for a while. With both transports on, the
        entities stay available while either one delivers.
        """
        self.webhook_registered = registered
        if self.transport == TRANSPORT_BOTH:
            if registered and not self.available:
                self.available = True
                self._touch(TOPIC_LINK)
            elif not registered and not self.connected:
                self._start_grace()
            return
        if self.transport != TRANSPORT_WEBHOOK:
            return
        if registered:
            self.async_stop_stream()
            self._link_up()
        else:
            self.async_start()

    @callback
    def async_shutdown(self) -> None:
        """Stop everything tied to the entry (the task is cancelled by HA)."""
        self._stopped = True
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        for unsub in (self._expiry_unsub, self._grace_unsub):
            if unsub is not None:
                unsub()
        self._expiry_unsub = self._grace_unsub = None
        self._listeners.clear()
        self._event_listeners.clear()
        self._line_listeners.clear()

    async def _run(self) -> None:
        """Keep one stream open for the entry's lifetime."""
        delay = BACKOFF_MIN
        while True:
            stream = self._stream
            if stream is None:
                try:
                    stream = await self.client.connect(self._last_event_id)
                except AuthenticationError:
                    self._auth_failed()
                    return
                except TooManyConnectionsError as err:
                    self._link_down(err)
                    self._raise_busy_issue()
                    self.stats.busy_refusals += 1
                    busy = max(BUSY_BACKOFF_MIN, err.retry_after or 0, delay)
                    delay = min(busy * 2, BUSY_BACKOFF_MAX)
                    await asyncio.sleep(_jitter(busy))
                    continue
                except SpRecordError as err:
                    self._link_down(err)
                    await asyncio.sleep(_jitter(delay))
                    delay = min(delay * 2, BACKOFF_MAX)
                    continue
                self._stream = stream
                self._link_up()
            opened = time.monotonic()
            await self._read(stream)
            if (
                stream.events_received
                or time.monotonic() - opened > HEALTHY_STREAM_SECONDS
            ):
                delay = BACKOFF_MIN
            if stream.retry is not None:
                # The server's `retry:` is taken, within our own bounds.
                delay = max(delay, min(stream.retry / 1000, BACKOFF_MAX))
            await asyncio.sleep(_jitter(delay))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _read(self, stream: EventStream) -> None:
        """Handle the stream's events until it ends; then close it."""
        handled = 0
        try:
            async for event in stream:
                if self._stream_ids.replayed(stream.event_id, event):
                    self.stats.duplicates += 1
                    continue
                self.async_handle_event(event, "sse")
                handled += 1
                if handled % YIELD_EVERY == 0:
                    # A burst is all buffered: let the rest of Home Assistant
                    # run between slices of it.
                    await asyncio.sleep(0)
        except SpRecordError as err:
            self._link_down(err)
        except Exception as err:  # noqa: BLE001 (logged with its traceback)
            # A bug reading the stream: log it, reconnect, never stop.
            LOGGER.exception("Error while reading the SpRecord event stream")
            self._link_down(err)
        finally:
            self._last_event_id = stream.last_event_id or self._last_event_id
            stream.close()
            self._stream = None

    @callback
    def _link_up(self) -> None:
        """Note a stream that opened; show it and clear a repair issue."""
        self.stats.connects += 1
        self.stats.last_connected = dt_util.utcnow()
        if self._grace_unsub is not None:
            self._grace_unsub()
            self._grace_unsub = None
        if self._outage_logged:
            LOGGER.info("The SpRecord event stream is back")
            self._outage_logged = False
        ir.async_delete_issue(self.hass, DOMAIN, self._busy_issue_id)
        if not (self.connected and self.available):
            self.connected = self.available = True
            self._touch(TOPIC_LINK)

    @callback
    def _link_down(self, err: Exception) -> None:
        """Note a lost stream; show it only if it stays lost for a while."""
        if self._stopped:
            return
        self.stats.last_error = str(err)
        if self.connected:
            self.stats.drops += 1
            self.connected = False
            LOGGER.debug("SpRecord event stream lost: %s", err)
        self._start_grace()

    @callback
    def _start_grace(self) -> None:
        """Make the entities unavailable if nothing delivers for a while."""
        if self._grace_unsub is None and self.available:
            self._grace_unsub = async_call_later(
                self.hass, LINK_GRACE, self._grace_over
            )

    @property
    def _webhook_delivers(self) -> bool:
        """Tell whether, with both transports on, the webhook stands in."""
        return self.transport == TRANSPORT_BOTH and self.webhook_registered

    @callback
    def _grace_over(self, _now: datetime) -> None:
        """Log a link that stayed down, once, and make the entities unavailable."""
        self._grace_unsub = None
        if self.connected or self._webhook_delivers:
            return
        self._mark_unavailable()
        LOGGER.info(
            "The SpRecord event stream is down, reconnecting: %s", self.stats.last_error
        )

    @callback
    def _mark_unavailable(self) -> None:
        """Show the link as down; its return will be logged."""
        self._outage_logged = True
        self.connected = self.available = False
        self._touch(TOPIC_LINK)

    @callback
    def _auth_failed(self) -> None:
        """Stop reconnecting after the key was refused and ask for a new key."""
        self.stats.auth_failures += 1
        self.stats.last_error = "authentication failed"
        LOGGER.warning("The SpRecord server refused the API key; reauthenticate")
        if self._grace_unsub is not None:
            self._grace_unsub()
            self._grace_unsub = None
        self._mark_unavailable()
        self.entry.async_start_reauth(self.hass)

    @property
    def _busy_issue_id(self) -> str:
        return f"{ISSUE_TOO_MANY_CONNECTIONS}_{self.entry.entry_id}"

    @callback
    def _raise_busy_issue(self) -> None:
        """Tell the user that another client holds the server's connections."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._busy_issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_TOO_MANY_CONNECTIONS,
            translation_placeholders={"title": self.entry.title},
        )

    # --- events --------------------------------------------------------------

    @callback
    def async_handle_event(self, event: SpRecordEvent, transport: str) -> None:
        """Take one event from any transport: track, fire, notify.

        A bug anywhere behind it (the tracker, a listener, an entity) is
        logged with its traceback and the event is skipped: the stream and
        the webhook go on with the next one.
        """
        try:
            self._handle_event(event, transport)
        except Exception:  # noqa: BLE001 (logged with its traceback)
            LOGGER.exception("Error while handling an SpRecord %s event", event.type)

    @callback
    def _handle_event(self, event: SpRecordEvent, transport: str) -> None:
        """Take one event: track, fire, notify."""
        if isinstance(event, VerificationEvent):
            return
        stats = self.stats
        stats.events_by_transport[transport] += 1
        if self._recent is not None and not self._recent.first_time(event):
            stats.duplicates += 1
            return
        now = dt_util.utcnow()
        stats.last_event = now
        stats.count_type(event.type)
        self._learn_device_id(event.device_id)

        change: CallChange | None = None
        match event:
            case IncomingSmsEvent():
                self.last_sms = SmsMessage(
                    sender=event.sms_src,
                    text=event.text,
                    line=event.trunk,
                    date=event.date,
                    received=now,
                )
                self._new_line(self.tracker.note_line(event.trunk))
                self._touch(TOPIC_SMS)
                self.store.async_schedule_save(self)
            case StartupEvent():
                self.last_startup = now
                if ended := self.tracker.restart(now):
                    self._calls_ended(ended)
            case _:
                change = self.tracker.apply(event, now)
                if change is not None:
                    self._new_line(change.new_line)
                    topics = [TOPIC_CALLS]
                    if change.call.trunk:
                        topics.append(line_topic(change.call.trunk))
                    if change.ended:
                        topics.append(TOPIC_ENDED)
                        self.store.async_schedule_save(self)
                    self._touch(*topics)
                    self._schedule_expiry()

        self.hass.bus.async_fire(
            EVENT_SPRECORD,
            {
                "device_id": self.device_registry_id,
                "config_entry_id": self.entry.entry_id,
                "pbx_id": event.device_id,
                "event_type": event.type,
                "payload": event.payload_dict(),
            },
        )
        self._notify(event, change)

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
        """Announce a line seen for the first time."""
        if trunk is None:
            return
        self.store.async_schedule_save(self)
        for listener in list(self._line_listeners):
            listener(trunk)

    @callback
    def _learn_device_id(self, device_id: str) -> None:
        """Keep the PBX's own id in the entry (webhooks are checked against it)."""
        if self.entry.data.get(CONF_DEVICE_ID) != device_id:
            self.hass.config_entries.async_update_entry(
                self.entry, data={**self.entry.data, CONF_DEVICE_ID: device_id}
            )

    @callback
    def async_remove_line(self, trunk: str) -> None:
        """Forget a line the user removed; it comes back if it is used again."""
        self.tracker.lines.pop(trunk, None)
        self.store.async_schedule_save(self)

    @callback
    def async_malformed_event(self, err: ProtocolError) -> None:
        """Log the first malformed event at warning, later ones at debug."""
        self.stats.malformed_events += 1
        if not self._malformed_logged:
            self._malformed_logged = True
            LOGGER.warning("Skipped a malformed SpRecord event: %s", err)
        else:
            LOGGER.debug("Skipped a malformed SpRecord event: %s", err)

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
        if when is not None:
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
            topics = {TOPIC_CALLS}
            topics.update(line_topic(c.trunk) for c in calls if c.trunk)
            self._touch(*topics)
        self._schedule_expiry()


def _discard(items: list[Any], item: Any) -> None:
    """Remove an item if it is still there (shutdown may have cleared it)."""
    if item in items:
        items.remove(item)


def _jitter(delay: float) -> float:
    """Spread reconnects: between half and the whole of `delay`."""
    return delay * (0.5 + random.random() / 2)  # noqa: S311 (not crypto)
