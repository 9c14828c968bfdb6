"""The entry's link to the SpRecord cloud: SSE, webhook or both, one interface.

A `Link` keeps the event stream up (never more than one: the server allows
three in all), reconnecting as `reconnect.ReconnectPolicy` says; takes the
webhook's events while the cloud holds the hook, with a short handover from
the stream; recognises an event that came on both; and hands each parsed
event once to one sink, the coordinator's. It alone knows whether the link
is up (`connected`: the stream is open; `available`: events arrive, or a
drop is still short) and why not (`stats.last_error`), and tells the
entities about a change of `available` with Home Assistant's dispatcher
(`signal`): a stream cut and reopened at once writes no entity. It turns
what the server says into Home Assistant's answers: a refused key starts
reauth, "too many connections" raises a repair issue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    ProtocolError,
    SpRecordClient,
    SpRecordError,
    SpRecordEvent,
    TooManyConnectionsError,
    VerificationEvent,
)
from .api.clean import for_log
from .const import (
    DOMAIN,
    ISSUE_TOO_MANY_CONNECTIONS,
    LOGGER,
    TRANSPORT_BOTH,
    TRANSPORT_SSE,
    TRANSPORT_WEBHOOK,
)
from .dedupe import RecentEvents
from .ids import signal_link
from .linkstats import LinkStats
from .resume import StreamPosition
from .sse_link import StreamKeeper
from .webhook import WebhookIntake
from .webhook_subscription import WebhookSubscription

STREAM_READ_TIMEOUT = 2 * 3600.0
"""Silence that ends a stream from a server never seen to send keep-alives.
A server that sends them is learnt: a stream silent for a few of its
intervals is dead (`api.watch.SilenceWatch`); a dead peer of a quiet stream
is found by TCP keepalive within minutes."""
HANDOVER = 5.0
"""Seconds the stream is still read after the webhook took over."""
LINK_GRACE = 30.0
"""A drop shorter than this is not shown: no log, no unavailable entities."""
type Sink = Callable[[SpRecordEvent, str], None]
"""Where the link hands each event once: (event, transport)."""


def busy_issue_id(entry_id: str) -> str:
    """Return the id of an entry's "too many connections" repair issue."""
    return f"{ISSUE_TOO_MANY_CONNECTIONS}_{entry_id}"


class Link:
    """The entry's one link: events in, up/down/why out."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: SpRecordClient,
        *,
        transport: str,
        sink: Sink,
        follows_pbx: Callable[[str], bool],
        adopt_pbx: Callable[[str], None],
        stream_opened: Callable[[], None],
        position: StreamPosition,
    ) -> None:
        """Prepare the link; `async_connect()` opens the stream at setup.

        `follows_pbx(pbx_id)` tells whether a webhook event's PBX is known,
        `adopt_pbx(pbx_id)` follows the PBX the webhook's verification named,
        `stream_opened()` is called whenever a stream opens; `position` is
        where the stream resumes (from storage), moved as events come.
        """
        self.hass = hass
        self.entry = entry
        self.client = client
        self.transport = transport
        self._sink = sink
        self._follows_pbx = follows_pbx
        self._adopt_pbx = adopt_pbx
        self._stream_opened = stream_opened
        self.signal = signal_link(entry.entry_id)
        """Sent (no arguments) whenever `available` changes."""
        self.stats = LinkStats()
        self.stream = StreamKeeper(
            hass,
            entry,
            client,
            self.stats,
            deliver=self.async_deliver,
            state=self,
            position=position,
        )
        """The event stream (read in all modes but webhook-only)."""
        self.webhook: WebhookIntake | None = None
        """The webhook's intake (webhook transports only)."""
        self.subscription: WebhookSubscription | None = None
        """The webhook's subscription with the cloud (webhook transports only)."""
        self.connected = False
        """Whether the event stream is open."""
        self.available = False
        """Whether events arrive (a transport delivers, or a drop is short)."""
        self.webhook_registered = False
        """Whether the SpRecord cloud holds the webhook."""
        self._recent = RecentEvents() if transport != TRANSPORT_SSE else None
        """With both transports on (or SSE standing in for a webhook that the
        cloud may still call), an event can come twice: handle it once."""
        self._handover_unsub: CALLBACK_TYPE | None = None
        self._grace_unsub: CALLBACK_TYPE | None = None
        self._outage_logged = False
        self._malformed_logged = False
        self._stopped = False
        self._delivering = True
        """False from the start of an unload: no event is handed on."""

    # --- what the link says ------------------------------------------------------

    @property
    def why(self) -> str | None:
        """Return why the link is down (None while it is up)."""
        return None if self.available else self.stats.last_error

    @property
    def last_event_id(self) -> str | None:
        """Return the SSE id to resume from (the last event's, as it came)."""
        return self.stream.last_event_id

    # --- start and stop -----------------------------------------------------------

    async def async_connect(self, *, keep_open: bool = True) -> None:
        """Open the stream at setup, turning failures into setup outcomes.

        Without `keep_open` it only proves the URL and key (webhook mode).
        """
        try:
            stream = await self.stream.connect()
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
            self.stream.opened(stream)
        else:
            stream.close()
            self._link_up()

    @callback
    def async_start(self) -> None:
        """Start delivering: the stream's reading, the webhook's intake."""
        if self.transport != TRANSPORT_WEBHOOK:
            self.stream.start()
        if self.transport != TRANSPORT_SSE:
            self.webhook = WebhookIntake(
                self.hass, self.entry, self.async_deliver, self._follows_pbx
            )
            self.subscription = WebhookSubscription(
                self.hass,
                self.entry,
                self.client,
                self.webhook,
                on_status=self.async_webhook_status,
                adopt_pbx=self._adopt_pbx,
            )
            self.webhook.async_start()
            self.subscription.async_start()

    @callback
    def async_stop_delivery(self) -> None:
        """Hand no event on any more: the stream stops, webhook posts are ignored.

        At the start of an unload: what the entry saves is then all it
        handled; the stream's next events stay on the server to resume.
        """
        self._delivering = False
        self._cancel_handover()
        self.stream.stop()

    @callback
    def async_restart_delivery(self) -> None:
        """Deliver again after `async_stop_delivery()` (an unload that failed)."""
        self._delivering = True
        if self.transport != TRANSPORT_WEBHOOK or not self.webhook_registered:
            self.stream.start()

    @callback
    def async_shutdown(self) -> None:
        """Stop everything tied to the entry (the task is cancelled by HA)."""
        self._stopped = True
        if self.webhook is not None:
            self.webhook.async_stop()
        if self.subscription is not None:
            self.subscription.async_stop()
        self._cancel_handover()
        self.stream.close()
        self._cancel_grace()

    # --- the webhook --------------------------------------------------------------

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
                self._changed()
            elif not registered and not self.connected:
                self._start_grace()
            return
        if self.transport != TRANSPORT_WEBHOOK:
            return
        self._cancel_handover()
        if registered:
            self._link_up()
            if self.stream.reading:
                # Events the cloud sent on the stream before the hook took
                # over may still be on their way: read it a little longer
                # (repeats on both are recognised), then close it.
                self._handover_unsub = async_call_later(
                    self.hass, HANDOVER, self._handover_done
                )
        elif self._delivering:
            self.stream.start()

    @callback
    def _handover_done(self, _now: datetime) -> None:
        """Close the stream: the webhook carries the events."""
        self._handover_unsub = None
        if self.webhook_registered:
            self.stream.stop()
            self._cancel_grace()  # the stream's drop is moot

    @callback
    def _cancel_handover(self) -> None:
        if self._handover_unsub is not None:
            self._handover_unsub()
            self._handover_unsub = None

    # --- events -------------------------------------------------------------------

    @callback
    def async_deliver(self, event: SpRecordEvent, transport: str) -> None:
        """Hand an event from either transport to the sink, once.

        Nothing is handed on once the entry began to unload.
        """
        if isinstance(event, VerificationEvent) or self._stopped:
            return
        if not self._delivering:
            return  # answered (a webhook post) and dropped
        stats = self.stats
        stats.events_by_transport[transport] += 1
        if self._recent is not None and not self._recent.first_time(event):
            stats.duplicates += 1
            return
        stats.last_event = dt_util.utcnow()
        stats.count_type(event.type)
        self._sink(event, transport)

    @callback
    def async_malformed_event(self, err: ProtocolError) -> None:
        """Log the first malformed event at warning, later ones at debug."""
        self.stats.malformed_events += 1
        if not self._malformed_logged:
            self._malformed_logged = True
            LOGGER.warning("Skipped a malformed SpRecord event: %s", for_log(err))
        else:
            LOGGER.debug("Skipped a malformed SpRecord event: %s", for_log(err))

    # --- up and down --------------------------------------------------------------

    @callback
    def _changed(self) -> None:
        """Tell the entities that `available` changed."""
        async_dispatcher_send(self.hass, self.signal)

    @callback
    def _link_up(self) -> None:
        """Note a link that came up; show it and clear a repair issue."""
        self.stats.connects += 1
        self.stats.last_connected = dt_util.utcnow()
        self._cancel_grace()
        if self._outage_logged:
            LOGGER.info("The SpRecord event stream is back")
            self._outage_logged = False
        ir.async_delete_issue(self.hass, DOMAIN, busy_issue_id(self.entry.entry_id))
        if not self.available:
            self.available = True
            self._changed()

    @callback
    def stream_up(self) -> None:
        """Note a stream that opened."""
        self.connected = True
        self._link_up()
        self._stream_opened()

    @callback
    def stream_down(self, err: Exception) -> None:
        """Note a stream that ended or could not open."""
        self._link_down(err)

    @callback
    def stream_stopped(self) -> None:
        """Note a stream closed on purpose: no drop, nothing shown."""
        self.connected = False

    @callback
    def stream_busy(self) -> None:
        """Note a stream the server refused: its connections are taken."""
        self._raise_busy_issue()
        self.stats.busy_refusals += 1

    @callback
    def stream_refused(self) -> None:
        """Note a key the server refused: the stream stopped."""
        self._auth_failed()

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

    @callback
    def _cancel_grace(self) -> None:
        if self._grace_unsub is not None:
            self._grace_unsub()
            self._grace_unsub = None

    @callback
    def _grace_over(self, _now: datetime) -> None:
        """Log a link that stayed down, once, and make the entities unavailable."""
        self._grace_unsub = None
        if self.connected or (
            self.transport != TRANSPORT_SSE and self.webhook_registered
        ):
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
        self.connected = False
        if self.available:
            self.available = False
            self._changed()

    @callback
    def _auth_failed(self) -> None:
        """Stop reconnecting after the key was refused and ask for a new key."""
        self.stats.auth_failures += 1
        self.stats.last_error = "authentication failed"
        LOGGER.warning("The SpRecord server refused the API key; reauthenticate")
        self._cancel_grace()
        self._mark_unavailable()
        self.entry.async_start_reauth(self.hass)

    @callback
    def _raise_busy_issue(self) -> None:
        """Tell the user that another client holds the server's connections."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            busy_issue_id(self.entry.entry_id),
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_TOO_MANY_CONNECTIONS,
            translation_placeholders={"title": self.entry.title},
        )
