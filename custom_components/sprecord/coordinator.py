"""The stream coordinator: one event stream per entry, kept up for its life.

It owns the SSE connection (never more than one: the server allows three in
all), reconnects forever with capped, jittered backoff, feeds every event once
to the call tracker, the bus and the entities, and keeps the link's figures for
diagnostics.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import random
import time
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    EventStream,
    ProtocolError,
    SpRecordClient,
    SpRecordError,
    SpRecordEvent,
    TooManyConnectionsError,
    VerificationEvent,
)
from .api.clean import for_log, is_pbx_id
from .calls import CallTracker
from .const import (
    CONF_DEVICE_ID,
    DOMAIN,
    ISSUE_TOO_MANY_CONNECTIONS,
    LOGGER,
    TRANSPORT_BOTH,
    TRANSPORT_SSE,
    TRANSPORT_WEBHOOK,
)
from .contacts import EntryPhonebook
from .dedupe import RecentEvents, SeenStreamIds
from .pbx import LINE_MARK, TOPIC_LINK, Pbx, pbx_device_info

if TYPE_CHECKING:
    from .autodial import PbxAutoDial
    from .storage import SpRecordStore
    from .webhook import WebhookTransport

BACKOFF_MIN = 1.0
BACKOFF_MAX = 300.0
BUSY_BACKOFF_MIN = 60.0
"""After a 429 another client holds the connections: wait at least this."""
BUSY_BACKOFF_MAX = 900.0
HEALTHY_STREAM_SECONDS = 60.0
IMMEDIATE_RECONNECT_EVERY = 30.0
"""At most one immediate reconnect in this many seconds: a server that keeps
closing good streams at once gets the backoff, not a tight loop."""
"""A stream that lived this long resets the backoff, events or not."""
STREAM_READ_TIMEOUT = 2 * 3600.0
"""Silence that ends a stream from a server never seen to send keep-alives.
A server that sends them is learnt: a stream silent for a few of its
intervals is dead (`api.watch.SilenceWatch`); a dead peer of a quiet stream
is found by TCP keepalive within minutes."""
HANDOVER = 5.0
"""Seconds the stream is still read after the webhook took over."""
YIELD_EVERY = 50
"""Events handled in a row before the stream yields to the event loop."""
LINK_GRACE = 30.0
"""A drop shorter than this is not shown: no log, no unavailable entities."""

MAX_PBXS = 16
"""PBXs one entry follows; events of more are skipped (memory stays bounded
whatever arrives, e.g. webhook bodies with made-up ids)."""
MAX_COUNTED_TYPES = 32
"""Event types counted by name in diagnostics; more go under `OTHER_TYPES`."""
OTHER_TYPES = "(other types)"


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
    tcp_keepalive: bool | None = None
    """Whether the kernel probes the peer of the last stream opened."""
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
            "tcp_keepalive": self.tcp_keepalive,
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
        """Return the call tracker of the entry's first PBX."""
        return self.coordinator.primary.tracker


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
        self.call_timeout = call_timeout
        self.webhook: WebhookTransport | None = None
        self._recent = RecentEvents() if transport != TRANSPORT_SSE else None
        """With both transports on (or SSE standing in for a webhook that the
        cloud may still call), an event can come twice: handle it once."""
        self._stream_task: asyncio.Task[None] | None = None
        self._stream_ids = SeenStreamIds()
        """A server resuming at-least-once sends handled events again."""
        self.stats = LinkStats()
        self.autodial: dict[str, PbxAutoDial] = {}
        """Auto-dialers by their PBX's `unique_prefix` (PBXs with an address)."""
        self.phonebook = EntryPhonebook(hass, entry)
        """Names for numbers (the UI's contacts and the options' file)."""
        first_id = entry.data.get(CONF_DEVICE_ID)
        if not isinstance(first_id, str) or not is_pbx_id(first_id):
            first_id = None  # none yet, or taken from a request by an old version
        self.primary = Pbx(self, first_id, 1, call_timeout=call_timeout)
        """The entry's first PBX: its device exists before any event."""
        self.pbxs: dict[str, Pbx] = {}
        """The PBXs seen, by their own id."""
        if self.primary.pbx_id is not None:
            self.pbxs[self.primary.pbx_id] = self.primary
        self._pbx_listeners: list[Callable[[Pbx], None]] = []
        self._too_many_logged = False
        self._handover_unsub: CALLBACK_TYPE | None = None
        self.unloading = False
        """Set while the entry unloads: no new PBX, no new save."""
        self.connected = False
        """Whether the event stream is open."""
        self.available = False
        """Whether events arrive (a transport delivers, or a drop is short)."""
        self.webhook_registered = False
        """Whether the SpRecord cloud holds the webhook."""
        self._stream: EventStream | None = None
        self._last_event_id: str | None = None
        self._grace_unsub: CALLBACK_TYPE | None = None
        self._outage_logged = False
        self._malformed_logged = False
        self._stopped = False

    # --- the PBXs --------------------------------------------------------------

    @property
    def all_pbxs(self) -> list[Pbx]:
        """Return every PBX of the entry, the first one first."""
        others = [pbx for pbx in self.pbxs.values() if not pbx.primary]
        return [self.primary, *sorted(others, key=lambda pbx: pbx.number)]

    @callback
    def async_add_pbx_listener(self, listener: Callable[[Pbx], None]) -> CALLBACK_TYPE:
        """Call `listener` with each PBX first seen while the entry runs."""
        self._pbx_listeners.append(listener)
        return lambda: _discard(self._pbx_listeners, listener)

    def add_saved_pbx(self, pbx_id: str, number: int) -> Pbx:
        """Return a PBX known from saved state (its device is made at setup)."""
        pbx = Pbx(self, pbx_id, number, call_timeout=self.call_timeout)
        self.pbxs[pbx_id] = pbx
        return pbx

    def follows_pbx(self, pbx_id: str) -> bool:
        """Tell whether the entry follows the PBX of that id."""
        return pbx_id in self.pbxs

    @callback
    def async_adopt_pbx(self, pbx_id: str) -> None:
        """Follow a PBX the cloud named while it verified our webhook."""
        self._pbx_for(pbx_id)

    @callback
    def async_register_device(self, pbx: Pbx) -> None:
        """Create (or find) the PBX's device in Home Assistant."""
        device = dr.async_get(self.hass).async_get_or_create(
            config_entry_id=self.entry.entry_id, **pbx_device_info(pbx)
        )
        pbx.device_registry_id = device.id

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
        pbx = Pbx(self, pbx_id, number, call_timeout=self.call_timeout)
        self.pbxs[pbx_id] = pbx
        self.async_register_device(pbx)
        LOGGER.info("Another PBX of the SpRecord account sent events: %s", pbx.name)
        for listener in list(self._pbx_listeners):
            listener(pbx)
        self.async_schedule_save()
        return pbx

    @callback
    def async_remove_pbx(self, pbx: Pbx) -> None:
        """Forget a PBX the user removed; it comes back if it sends again."""
        if pbx.primary or pbx.pbx_id is None:
            return
        pbx.async_shutdown()
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
                    pbx.async_remove_line(line)
                return

    @callback
    def async_schedule_save(self) -> None:
        """Save the PBXs' lasting state soon (the unload saves it at once)."""
        if not self.unloading:
            self.store.async_schedule_save(self)

    @callback
    def _link_changed(self) -> None:
        """Tell every PBX's entities that the link changed."""
        for pbx in self.all_pbxs:
            pbx.touch(TOPIC_LINK)

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
            self.stats.tcp_keepalive = stream.tcp_keepalive
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
                self._link_changed()
            elif not registered and not self.connected:
                self._start_grace()
            return
        if self.transport != TRANSPORT_WEBHOOK:
            return
        self._cancel_handover()
        if registered:
            self._link_up()
            if self._stream_task is not None:
                # Events the cloud sent on the stream before the hook took
                # over may still be on their way: read it a little longer
                # (repeats on both are recognised), then close it.
                self._handover_unsub = async_call_later(
                    self.hass, HANDOVER, self._handover_done
                )
        else:
            self.async_start()

    @callback
    def _handover_done(self, _now: datetime) -> None:
        """Close the stream: the webhook carries the events."""
        self._handover_unsub = None
        if self.webhook_registered:
            self.async_stop_stream()
            if self._grace_unsub is not None:  # the stream's drop is moot
                self._grace_unsub()
                self._grace_unsub = None

    @callback
    def _cancel_handover(self) -> None:
        if self._handover_unsub is not None:
            self._handover_unsub()
            self._handover_unsub = None

    @callback
    def async_shutdown(self) -> None:
        """Stop everything tied to the entry (the task is cancelled by HA)."""
        self._stopped = True
        self._cancel_handover()
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._grace_unsub is not None:
            self._grace_unsub()
            self._grace_unsub = None
        for pbx in self.all_pbxs:
            pbx.async_shutdown()
        self._pbx_listeners.clear()

    async def _run(self) -> None:
        """Keep one stream open for the entry's lifetime."""
        delay = BACKOFF_MIN
        last_immediate = -IMMEDIATE_RECONNECT_EVERY
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
                self.stats.tcp_keepalive = stream.tcp_keepalive
                self._link_up()
            opened = time.monotonic()
            await self._read(stream)
            ended = time.monotonic()
            healthy = stream.events_received or ended - opened > HEALTHY_STREAM_SECONDS
            if healthy and ended - last_immediate > IMMEDIATE_RECONNECT_EVERY:
                # The first reconnect after a good stream is at once: every
                # second away is a second in which an event can be lost.
                # The backoff starts with the second attempt.
                last_immediate = ended
                delay, wait = BACKOFF_MIN, 0.0
            else:
                if healthy:
                    delay = BACKOFF_MIN
                wait = _jitter(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            if stream.retry is not None:
                # The server's `retry:` is taken, within our own bounds.
                wait = max(wait, min(stream.retry / 1000, BACKOFF_MAX))
            await asyncio.sleep(wait)

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
            self._link_changed()

    @callback
    def _link_down(self, err: Exception) -> None:
        """Note a lost stream; show it only if it stays lost for a while."""
        if self._stopped:
            return
        self.stats.last_error = str(err)
        if self.connected:
            self.stats.drops += 1
            self.connected = False
            LOGGER.debug("SpRecord event stream lost: %s", for_log(err))
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
        """Tell whether the webhook carries the events (the stream may not)."""
        return self.transport != TRANSPORT_SSE and self.webhook_registered

    @callback
    def _grace_over(self, _now: datetime) -> None:
        """Log a link that stayed down, once, and make the entities unavailable."""
        self._grace_unsub = None
        if self.connected or self._webhook_delivers:
            return
        self._mark_unavailable()
        LOGGER.info(
            "The SpRecord event stream is down, reconnecting: %s",
            for_log(self.stats.last_error),
        )

    @callback
    def _mark_unavailable(self) -> None:
        """Show the link as down; its return will be logged."""
        self._outage_logged = True
        self.connected = self.available = False
        self._link_changed()

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
        return busy_issue_id(self.entry.entry_id)

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
            LOGGER.exception(
                "Error while handling an SpRecord %s event", for_log(event.type)
            )

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
        if (pbx := self._pbx_for(event.device_id)) is not None:
            pbx.handle(event, now)

    @callback
    def async_malformed_event(self, err: ProtocolError) -> None:
        """Log the first malformed event at warning, later ones at debug."""
        self.stats.malformed_events += 1
        if not self._malformed_logged:
            self._malformed_logged = True
            LOGGER.warning("Skipped a malformed SpRecord event: %s", for_log(err))
        else:
            LOGGER.debug("Skipped a malformed SpRecord event: %s", for_log(err))


@callback
def async_remove_line_devices(hass: HomeAssistant, entry_id: str, prefix: str) -> None:
    """Remove the line devices (and so their entities) of a removed PBX.

    Home Assistant only unlinks the sub-devices of a removed device.
    """
    registry = dr.async_get(hass)
    line_prefix = f"{prefix}{LINE_MARK}"
    for device in dr.async_entries_for_config_entry(registry, entry_id):
        if any(
            domain == DOMAIN and value.startswith(line_prefix)
            for domain, value in device.identifiers
        ):
            registry.async_remove_device(device.id)


def busy_issue_id(entry_id: str) -> str:
    """Return the id of an entry's "too many connections" repair issue."""
    return f"{ISSUE_TOO_MANY_CONNECTIONS}_{entry_id}"


def _discard(items: list[Any], item: Any) -> None:
    """Remove an item if it is still there (shutdown may have cleared it)."""
    if item in items:
        items.remove(item)


def _jitter(delay: float) -> float:
    """Spread reconnects: between half and the whole of `delay`."""
    return delay * (0.5 + random.random() / 2)  # noqa: S311 (not crypto)
