"""Client for the SpRecord MiniPBX cloud event API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
import hashlib
import logging
from typing import Any

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
from .models import SpRecordEvent, SubscriptionSettings
from .redirect import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    _origin,
    _redirect_target,
    _shown_origin,
)
from .stream import EventStream, MalformedEventCallback
from .watch import QUIET_SILENCE, SilenceWatch

_LOGGER = logging.getLogger(__name__)

EVENTS_PATH = "/sys/events"
OPENAPI_PATH = "/openapi.json"
SUBSCRIBE_PATH = "/sys/subscribe_events"
DEFAULT_REQUEST_TIMEOUT = 15.0
DEFAULT_READ_TIMEOUT = QUIET_SILENCE
"""Silence that ends a stream from a server never seen to send keep-alives
(one that sends them is given `SilenceWatch.limit`, a few intervals)."""


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


def _retry_after(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
