"""Client for the SpRecord MiniPBX cloud event API."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
import hashlib
import logging
from types import TracebackType
from typing import Any, Self

import aiohttp
from yarl import URL

from .auth import BEARER, CANDIDATES, AuthScheme, scheme_from_openapi
from .clean import for_log
from .exceptions import (
    AuthenticationError,
    ProtocolError,
    RedirectRefusedError,
    SpRecordConnectionError,
    SpRecordError,
    SpRecordTimeoutError,
    TooManyConnectionsError,
)
from .models import SpRecordEvent, SubscriptionSettings, parse_event
from .sse import SSEEvent, SSEOverflowError, SSEParser
from .watch import QUIET_SILENCE, SilenceWatch, enable_tcp_keepalive

_LOGGER = logging.getLogger(__name__)

EVENTS_PATH = "/sys/events"
OPENAPI_PATH = "/openapi.json"
SUBSCRIBE_PATH = "/sys/subscribe_events"
DEFAULT_REQUEST_TIMEOUT = 15.0
MAX_REDIRECTS = 10
"""Redirects followed for one request (within the server's origin)."""
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_SHOWN = 100
"""Characters of a server-given location an error shows at most."""
DEFAULT_READ_TIMEOUT = QUIET_SILENCE
"""Silence that ends a stream from a server never seen to send keep-alives
(one that sends them is given `SilenceWatch.limit`, a few intervals)."""

MalformedEventCallback = Callable[[ProtocolError], None]


def normalize_base_url(base_url: str) -> str:
    """Return the server URL without a trailing slash; raise ValueError if bad."""
    url = URL(base_url.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("the server URL must start with http:// or https://")
    if url.query_string or url.fragment:
        raise ValueError("the server URL must not have a query or fragment")
    return str(url).rstrip("/")


def verification_response(payload: str) -> dict[str, str]:
    """Return the answer to the webhook verification request.

    The server sends a random string; the hook proves it is ours by answering
    its MD5 digest as JSON (the vendor's format since 2025-06-30).
    """
    digest = hashlib.md5(payload.encode(), usedforsecurity=False).hexdigest()
    return {"result": digest}


def _log_malformed(err: ProtocolError) -> None:
    """Log a skipped event in one line; the error names the field, not data."""
    _LOGGER.warning("Skipped a malformed event: %s", for_log(err))


class SpRecordClient:
    """Talks to one SpRecord account through an injected aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        on_malformed_event: MalformedEventCallback | None = None,
        user_agent: str = "sprecord-client",
        auth: AuthScheme = BEARER,
    ) -> None:
        """Prepare a client; nothing is sent until a method is called."""
        self._session = session
        self._base_url = URL(normalize_base_url(base_url))
        self._api_key = api_key
        self.auth = auth
        """How the key is sent (`discover_auth()` finds it out)."""
        self.request_timeout = request_timeout
        self.watch = SilenceWatch(quiet_limit=read_timeout)
        """Learns the server's keep-alives; sets each stream's read timeout."""
        self._on_malformed_event = on_malformed_event or _log_malformed
        self._user_agent = user_agent

    @property
    def base_url(self) -> str:
        """Return the server URL the client talks to."""
        return str(self._base_url)

    def _headers(self, **extra: str) -> dict[str, str]:
        """Return request headers (the key is added by `_send`)."""
        return {"User-Agent": self._user_agent, **extra}

    async def discover_auth(self) -> AuthScheme:
        """Find how the server takes the key, prove it, and use it from now on.

        The scheme the server's `/openapi.json` declares for the event stream
        is taken when there is one; otherwise `CANDIDATES` are tried in order,
        one probe stream at a time, each closed before the next. Raises
        `AuthenticationError` when the key is refused every way (a wrong
        key), and what `connect()` raises for anything else.
        """
        declared = await self._declared_scheme()
        candidates = (declared,) if declared is not None else CANDIDATES
        refused: AuthenticationError | None = None
        for scheme in candidates:
            self.auth = scheme
            try:
                await self.verify()
            except AuthenticationError as err:
                refused = err
                continue
            return scheme
        assert refused is not None  # noqa: S101 (there is a candidate)
        raise refused

    async def _declared_scheme(self) -> AuthScheme | None:
        """Return the scheme `/openapi.json` declares, None without one."""
        url = self._base_url.with_path(self._base_url.path.rstrip("/") + OPENAPI_PATH)
        try:
            async with asyncio.timeout(self.request_timeout):
                response = await self._session.get(
                    url, headers=self._headers(Accept="application/json")
                )
                async with response:
                    if response.status != 200:
                        return None
                    document = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        return scheme_from_openapi(document, EVENTS_PATH)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        read_timeout: float | None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the response once its status is good.

        Redirects are followed here, not by aiohttp, and only within the
        server's origin: aiohttp would strip `Authorization` alone on the way
        to another origin and carry a key in any other header there. A
        redirect elsewhere raises `RedirectRefusedError` without a request
        sent to it.
        """
        url = self._base_url.with_path(self._base_url.path.rstrip("/") + path)
        client_timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.request_timeout,
            sock_read=read_timeout,
        )
        try:
            async with asyncio.timeout(self.request_timeout):
                response = await self._follow(
                    method, url, headers, json, client_timeout
                )
        except TimeoutError as err:
            raise SpRecordTimeoutError(
                f"Timed out talking to {self._base_url.host}"
            ) from err
        except aiohttp.ClientError as err:
            raise SpRecordConnectionError(
                f"Cannot reach {self._base_url.host}: {err.__class__.__name__}"
            ) from err
        if response.status < 400:
            return response
        response.release()
        status = response.status
        if status in (401, 403):
            raise AuthenticationError(
                f"The server refused the API key (HTTP {status})", status=status
            )
        if status == 429:
            raise TooManyConnectionsError(
                "The server holds its maximum of event streams (HTTP 429)",
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        raise SpRecordError(
            f"The server answered HTTP {status} {response.reason or ''}".rstrip(),
            status=status,
        )

    async def _follow(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        json: Any,
        client_timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """Send a request, following redirects within the server's origin."""
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            # The one place the key is sent from, on every hop (all within
            # the origin). A key in the query string stays out of every
            # message: errors name the host, never the URL.
            params: dict[str, str] = {}
            sent = dict(headers)
            self.auth.apply(self._api_key, sent, params)
            response = await self._session.request(
                method,
                url.update_query(params) if params else url,
                headers=sent,
                json=json,
                timeout=client_timeout,
                allow_redirects=False,
            )
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or location is None:
                return response
            response.release()
            target = _redirect_target(url, location)
            if _origin(target) != origin:
                raise RedirectRefusedError(
                    f"The server redirected to another origin, "
                    f"{_shown_origin(target)}: the API key is not sent there"
                )
            if response.status == 303 or (
                response.status in (301, 302) and method == "POST"
            ):
                # As browsers and aiohttp do: the redirected request is a GET.
                method, json = "GET", None
            url = target
        raise RedirectRefusedError(
            f"The server redirected more than {MAX_REDIRECTS} times"
        )

    async def connect(self, last_event_id: str | None = None) -> EventStream:
        """Open the event stream and return it once the server's headers came.

        Raises `AuthenticationError` (401/403), `TooManyConnectionsError`
        (429), `SpRecordError` (other HTTP errors), `SpRecordConnectionError`
        or `SpRecordTimeoutError` (network), `ProtocolError` (not a stream).
        """
        headers = self._headers(
            Accept="text/event-stream", **{"Cache-Control": "no-cache"}
        )
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        # No socket read timeout: the stream's `SilenceWatch` times reads.
        response = await self._send(
            "GET", EVENTS_PATH, headers=headers, read_timeout=None
        )
        if response.content_type != "text/event-stream":
            response.close()
            raise ProtocolError(
                f"Expected an event stream, got {response.content_type or 'nothing'}"
            )
        return EventStream(
            response, self._on_malformed_event, last_event_id or "", self.watch
        )

    async def stream_events(
        self, last_event_id: str | None = None
    ) -> AsyncIterator[SpRecordEvent]:
        """Yield events from a new stream until it breaks (then raise)."""
        async with await self.connect(last_event_id) as stream:
            async for event in stream:
                yield event

    async def verify(self) -> None:
        """Prove the URL and key by opening the event stream and closing it."""
        stream = await self.connect()
        stream.close()

    async def subscribe_events(
        self, hook_url: str, event_types: Iterable[str]
    ) -> SubscriptionSettings:
        """Register `hook_url` for `event_types`; return what the server holds.

        The server checks the hook with a verification request before it
        answers, so the hook must already answer `verification_response()`.
        An empty list of event types stops deliveries (there is no unsubscribe
        call in the API).
        """
        body = {"hook": hook_url, "subscribe": list(event_types)}
        response = await self._send(
            "POST",
            SUBSCRIBE_PATH,
            headers=self._headers(Accept="application/json"),
            json=body,
            read_timeout=None,
        )
        try:
            async with asyncio.timeout(self.request_timeout):
                data = await response.json(content_type=None)
        except TimeoutError as err:
            raise SpRecordTimeoutError("Timed out reading the answer") from err
        except aiohttp.ClientError as err:
            raise SpRecordConnectionError(
                f"Connection lost reading the answer: {err.__class__.__name__}"
            ) from err
        except ValueError as err:
            raise ProtocolError("subscribe_events: answer is not JSON") from err
        finally:
            response.release()
        return SubscriptionSettings.from_dict(data)


def _redirect_target(url: URL, location: str) -> URL:
    """Return the URL a `Location` header leads to from `url`.

    Raises `RedirectRefusedError` for one that is not an http(s) URL with a
    host, or that carries a user name or password.
    """
    try:
        target = url.join(URL(location))
        target.origin()
    except ValueError:
        target = None
    if (
        target is None
        or target.scheme not in ("http", "https")
        or not target.host
        or target.user is not None
        or target.password is not None
    ):
        raise RedirectRefusedError(
            "The server redirected to a location that is not an http(s) URL"
        )
    return target


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    """Return a URL's origin: scheme, host and port (its default if unsaid)."""
    return url.scheme, url.host, url.port


def _shown_origin(url: URL) -> str:
    """Return a URL's origin as an error names it: quoted and bounded."""
    shown = f"{url.scheme}://{url.host_port_subcomponent}"
    return repr(shown if len(shown) <= MAX_SHOWN else shown[:MAX_SHOWN] + "…")


def _retry_after(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


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
