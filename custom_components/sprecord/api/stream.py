"""An open event stream of the cloud API: events as they come, until it breaks."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Self

import aiohttp

from .exceptions import ProtocolError, SpRecordConnectionError, SpRecordTimeoutError
from .models import SpRecordEvent
from .parse import parse_event
from .sse import SSEEvent, SSEOverflowError, SSEParser
from .watch import SilenceWatch, enable_tcp_keepalive

MalformedEventCallback = Callable[[ProtocolError], None]


class EventStream:
    """An open event stream: iterate it for events; close it when done.

    Iteration ends only by raising: `SpRecordConnectionError` when the server
    closes the stream or the connection breaks, `SpRecordTimeoutError` when no
    byte came within the read timeout, `ProtocolError` for an over-long line.
    A malformed event is passed to the callback and skipped.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        on_malformed_event: MalformedEventCallback,
        last_event_id: str = "",
        watch: SilenceWatch | None = None,
    ) -> None:
        """Wrap a response whose headers said `text/event-stream`."""
        self._response = response
        self._on_malformed_event = on_malformed_event
        self._parser = SSEParser(last_event_id=last_event_id)
        self._pending: deque[SSEEvent] = deque()
        self._resume_id = last_event_id
        """The id to resume from while events read are still pending."""
        self._failure: ProtocolError | None = None
        """An over-long line or event, raised once the events before it went."""
        self._loop = asyncio.get_running_loop()
        connection = response.connection
        self.tcp_keepalive = enable_tcp_keepalive(
            connection.transport.get_extra_info("socket")
            if connection is not None and connection.transport is not None
            else None
        )
        """Whether the kernel probes the peer of this quiet stream."""
        self.watch = watch or SilenceWatch()
        """Times each read: see `SilenceWatch`."""
        self.watch.stream_opened(probed=self.tcp_keepalive)
        self.event_id = ""
        """The SSE id of the event last returned ("" when the server gave none)."""
        self.bytes_received = 0
        self.events_received = 0
        self.malformed_events = 0

    @property
    def last_event_id(self) -> str:
        """Return the event id to resume from.

        It is the last id the server set, but never past an event read and
        not yet returned.
        """
        return self._resume_id if self._pending else self._parser.last_event_id

    @property
    def retry(self) -> int | None:
        """Return the reconnection delay the server asked for, in ms."""
        return self._parser.retry

    @property
    def closed(self) -> bool:
        """Tell whether the stream has been closed."""
        return self._response.closed

    def close(self) -> None:
        """Close the connection; the server frees its slot at once."""
        self._response.close()

    async def __aenter__(self) -> Self:
        """Use the stream in `async with`; it is closed on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream."""
        self.close()

    def __aiter__(self) -> Self:
        """Iterate the stream's events."""
        return self

    async def __anext__(self) -> SpRecordEvent:
        """Return the next event, reading from the network when needed."""
        pending = self._pending
        while True:
            while pending:
                sse = pending.popleft()
                self._resume_id = sse.last_event_id
                data = sse.data
                if not data or data.isspace():
                    continue  # an empty `data:` is a keep-alive, not an event
                try:
                    event = parse_event(data)
                except ProtocolError as err:
                    self.malformed_events += 1
                    self._on_malformed_event(err)
                    continue
                self.events_received += 1
                self.event_id = sse.last_event_id
                return event
            if self._failure is not None:
                raise self._failure
            parser = self._parser
            self._resume_id = parser.last_event_id
            chunk = await self._read()
            comments = parser.comments
            try:
                events = parser.feed(chunk)
            except SSEOverflowError as err:
                # Whole events before the over-long line are handed out
                # first; the stream fails after them.
                events = err.events
                self._failure = err
            pending.extend(events)
            self.watch.chunk(
                self._loop.time(),
                keepalive=(
                    all(not sse.data or sse.data.isspace() for sse in events)
                    if events
                    else parser.comments != comments
                ),
            )

    async def _read(self) -> bytes:
        """Return the next chunk of the stream; raise when it ended or broke."""
        limit = self.watch.limit
        try:
            async with asyncio.timeout(limit):
                chunk = await self._response.content.readany()
        except TimeoutError as err:
            self.watch.timed_out()
            raise SpRecordTimeoutError(
                f"The event stream sent nothing in {limit:g} s"
            ) from err
        except (aiohttp.ClientError, OSError) as err:
            raise SpRecordConnectionError(
                f"The event stream broke: {err.__class__.__name__}"
            ) from err
        if not chunk:
            raise SpRecordConnectionError("The server closed the event stream")
        self.bytes_received += len(chunk)
        return chunk
