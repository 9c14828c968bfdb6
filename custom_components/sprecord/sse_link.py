"""The link's event stream: one SSE stream kept open, reconnected by policy.

`StreamKeeper` reads the stream in a task that lives as long as the entry,
hands every event on (an event a resuming server sends again is skipped),
and reconnects after every end with the wait `reconnect.ReconnectPolicy`
gives; the old stream is always closed before a new connect, so the entry
never holds more than one of the server's three connections. It reports
ups and downs to its `LinkState` (the `Link`), which decides what Home
Assistant shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time
from typing import Protocol

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    EventStream,
    SpRecordClient,
    SpRecordError,
    SpRecordEvent,
    TooManyConnectionsError,
)
from .const import DOMAIN, LOGGER
from .dedupe import SeenStreamIds
from .linkstats import LinkStats
from .reconnect import ReconnectPolicy, StreamHistory, StreamRecord
from .resume import Resent, StreamPosition

YIELD_EVERY = 50
"""Events handled in a row before the stream yields to the event loop."""
PROBE_WAIT = 5.0
"""Seconds a stream resumed from a held-back position waits for the first
event sent again (a resuming server sends its backlog at once; waiting
longer only delays the fall-back, which loses nothing)."""


class LinkState(Protocol):
    """What the stream tells the link about."""

    def stream_up(self) -> None:
        """Take note of a stream that opened."""

    def stream_down(self, err: Exception) -> None:
        """Take note of a stream that ended, or of a connect that failed."""

    def stream_stopped(self) -> None:
        """Take note of a stream closed on purpose (`StreamKeeper.stop()`)."""

    def stream_busy(self) -> None:
        """Take note of a 429: another client holds the server's connections."""

    def stream_refused(self) -> None:
        """Take note of a refused key: the stream stops."""


class StreamKeeper:
    """Keeps the entry's one event stream open."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: SpRecordClient,
        stats: LinkStats,
        *,
        deliver: Callable[[SpRecordEvent, str], None],
        state: LinkState,
        position: StreamPosition,
    ) -> None:
        """Prepare; `opened()` takes the stream setup opened, `start()` reads.

        `position` is where the stream resumes (from storage); the keeper
        moves it with every event handled and notes when the stream is open.
        """
        self.hass = hass
        self.entry = entry
        self.client = client
        self.stats = stats
        self._deliver = deliver
        self._state = state
        self.policy = ReconnectPolicy()
        self.history = StreamHistory(time.monotonic())
        self._stream_ids = SeenStreamIds()
        """A server resuming at-least-once sends handled events again (those
        handled before a restart: `StreamPosition.resent()`)."""
        self._from_latest = False
        """The stream ends to open again from the last event handled."""
        self._stream: EventStream | None = None
        self._opened = 0.0
        self._last_event: float | None = None
        """When (monotonic) the open stream's last event came."""
        self._task: asyncio.Task[None] | None = None
        self.position = position

    @property
    def reading(self) -> bool:
        """Tell whether the stream's task runs."""
        return self._task is not None and not self._task.done()

    @property
    def last_event_id(self) -> str | None:
        """Return the SSE id to resume from (the last event's, as it came)."""
        if (stream := self._stream) is not None and stream.last_event_id:
            return stream.last_event_id
        return self.position.event_id

    async def connect(self) -> EventStream:
        """Open a stream where it resumes (from the last event if refused).

        A held-back id gets one try: a server may refuse an id it no longer
        keeps, with any error but a refused key or a connection too many.
        """
        try:
            return await self.client.connect(self.last_event_id)
        except (AuthenticationError, TooManyConnectionsError):
            raise
        except SpRecordError:
            if not self.position.probing:
                raise
            self.position.fall_back()
            return await self.client.connect(self.last_event_id)

    @callback
    def start(self) -> None:
        """Read the stream in a task that lives as long as the entry."""
        if self._task is not None and not self._task.done():
            return
        self._task = self.entry.async_create_background_task(
            self.hass, self._run(), f"{DOMAIN} event stream {self.entry.title}"
        )

    @callback
    def stop(self) -> None:
        """Stop reading the stream and close it; its end is noted as such."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if (stream := self._stream) is not None:
            self._ended(stream, cut=False)
            self.close()
            self._state.stream_stopped()

    @callback
    def close(self) -> None:
        """Close the open stream, keeping its resume position."""
        if (stream := self._stream) is not None:
            self.position.passed(stream.last_event_id)
            stream.close()
            self._stream = None
            self.position.closed(dt_util.utcnow())

    @callback
    def opened(self, stream: EventStream) -> None:
        """Take a stream that opened (never while another one is open)."""
        self._stream = stream
        self._opened = time.monotonic()
        self._last_event = None
        self.history.opened(self._opened)
        self.position.opened()
        self.stats.tcp_keepalive = stream.tcp_keepalive
        self._state.stream_up()

    def _ended(self, stream: EventStream, *, cut: bool = True) -> StreamRecord:
        """Note in the history a stream that ended; log a pattern of cuts."""
        ended = time.monotonic()
        record = StreamRecord(
            lived=ended - self._opened,
            silent=ended
            - (self._opened if self._last_event is None else self._last_event),
            events=stream.events_received,
        )
        if (silence := self.history.ended(record, ended, cut=cut)) is not None:
            # Once: a quiet night behind such a proxy is no news after that.
            LOGGER.info(
                "The SpRecord event stream is cut after about %s s without "
                "events, again and again (a proxy or router on the way, "
                "most likely); it reconnects at once each time",
                round(silence),
            )
        return record

    async def _run(self) -> None:
        """Keep one stream open for the entry's lifetime.

        Every wait comes from the policy: at once after a stream that lived
        a while (or after the server's `retry:`), a growing backoff after
        failed connects and streams that end at once, longer after a 429.
        """
        policy = self.policy
        state = self._state
        while True:
            stream = self._stream
            if stream is None:
                try:
                    stream = await self.connect()
                except AuthenticationError:
                    state.stream_refused()
                    return
                except TooManyConnectionsError as err:
                    state.stream_down(err)
                    state.stream_busy()
                    await asyncio.sleep(policy.refused_busy(err.retry_after))
                    continue
                except SpRecordError as err:
                    state.stream_down(err)
                    await asyncio.sleep(policy.connect_failed())
                    continue
                self.opened(stream)
            await self._read(stream)
            record = self._ended(stream, cut=not self._from_latest)
            # A held-back id gets one stream (one that ended at once too).
            self.position.fall_back()
            if self._from_latest:
                self._from_latest = False
                continue  # at once: not a failure of the stream
            retry = None if stream.retry is None else stream.retry / 1000
            await asyncio.sleep(
                policy.stream_ended(record.lived, events=record.events, retry=retry)
            )

    async def _read(self, stream: EventStream) -> None:
        """Handle the stream's events until it ends; then close it."""
        handled = 0
        try:
            if self.position.probing and not await self._probe(stream):
                self._from_latest = True
                return
            async for event in stream:
                if self._take(stream, event):
                    handled += 1
                    if handled % YIELD_EVERY == 0:
                        # A burst is all buffered: let the rest of Home
                        # Assistant run between slices of it.
                        await asyncio.sleep(0)
        except SpRecordError as err:
            self._state.stream_down(err)
        except Exception as err:  # noqa: BLE001 (logged with its traceback)
            # A bug reading the stream: log it, reconnect, never stop.
            LOGGER.exception("Error while reading the SpRecord event stream")
            self._state.stream_down(err)
        finally:
            if self._stream is stream:
                self.close()
            else:
                stream.close()

    def _take(self, stream: EventStream, event: SpRecordEvent) -> bool:
        """Hand an event on, unless it is one handled already; tell which."""
        self._last_event = time.monotonic()
        if (
            self._stream_ids.replayed(stream.event_id, event)
            or self.position.resent(stream.event_id, event) is Resent.HANDLED
        ):
            self.stats.duplicates += 1
            self.position.passed(stream.last_event_id, event)
            return False
        self._deliver(event, "sse")
        self.position.handled(stream.last_event_id, dt_util.utcnow(), event)
        return True

    async def _probe(self, stream: EventStream) -> bool:
        """Tell whether the stream goes on (False: it opens again from `latest`).

        A server resuming from the held-back position sends at once the
        first event of a call in progress at the restart, or an event handled
        before (at-least-once). If nothing comes, or news comes first, it did
        not go back: it keeps too little of its past, or does not resume at
        all. The stream then opens again from the last event handled, so that
        a server that keeps that much loses nothing (news first is handled,
        and recognised when it comes again). A server that does not resume
        loses what it sends in that gap, as in any reconnect.
        """
        try:
            async with asyncio.timeout(PROBE_WAIT):
                event = await anext(stream)
        except TimeoutError:
            LOGGER.debug("Nothing sent again: the stream resumes from the last event")
            return False
        resumed = self.position.expected(stream.event_id, event)
        if resumed:
            self.position.confirmed()
        else:
            LOGGER.debug("News first: the stream resumes from the last event")
        self._take(stream, event)
        return resumed
