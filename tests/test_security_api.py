"""The client library against a hostile or broken server.

- The API key never follows a redirect to another origin, whatever the
  scheme it is sent by; a redirect within the server's origin still works.
- Complete events read before an over-long SSE line are handed out, and the
  resume id never passes an event not handed out.
- An auto-dial answer's charset that is no character set does not escape as
  LookupError or UnicodeError; the PBX's `result_txt` is one bounded line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
import json
from typing import Any

import aiohttp
from aiohttp import web
import pytest
from pytest_aiohttp import AiohttpServer

from custom_components.sprecord.api import (
    CANDIDATES,
    AuthScheme,
    AutoDialClient,
    AutoDialError,
    AutoDialNotFound,
    EventStream,
    ProtocolError,
    SpRecordClient,
    SpRecordConnectionError,
    SpRecordError,
    SSEParser,
    StartupEvent,
    charset as charset_module,
)
from custom_components.sprecord.api.autodial_answers import MAX_VENDOR_TEXT, vendor_text
from custom_components.sprecord.api.charset import charset_codec
from custom_components.sprecord.api.exceptions import RedirectRefusedError
from custom_components.sprecord.api.redirect import MAX_REDIRECTS
from custom_components.sprecord.api.sse import SSEOverflowError

ServerFactory = Callable[..., Awaitable[AiohttpServer]]
KEY = "s3cret-key-0123456789"
STARTUP = b'data: {"device_id": "D1", "event_type": "startup", "payload": {}}\n\n'
HOOK = "https://ha.example/hook"
SCHEMES = [pytest.param(scheme, id=str(scheme)) for scheme in CANDIDATES] + [
    pytest.param(AuthScheme("header", "Api-Token"), id="header:Api-Token")
]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Return a plain aiohttp session."""
    async with aiohttp.ClientSession() as session:
        yield session


class Server:
    """A server on 127.0.0.1 that records what every request carried."""

    def __init__(self) -> None:
        """Record nothing yet."""
        self.seen: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        self.app = web.Application()
        self.url = ""

    def saw_key(self) -> bool:
        """Tell whether any request brought the key, anywhere."""
        return any(
            KEY in value
            for _method, _path, headers, query in self.seen
            for value in (*headers.values(), *query.values())
        )

    async def start(self, aiohttp_server: ServerFactory) -> Server:
        """Serve the app; note every request first."""

        @web.middleware
        async def record(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            self.seen.append(
                (
                    request.method,
                    request.path,
                    dict(request.headers),
                    dict(request.query),
                )
            )
            return await handler(request)

        self.app.middlewares.append(record)
        server = await aiohttp_server(self.app, host="127.0.0.1")
        self.url = f"http://127.0.0.1:{server.port}"
        return self


def has_key(request: web.Request, scheme: AuthScheme) -> bool:
    """Tell whether a request carries the key the scheme's way."""
    if scheme.kind == "bearer":
        return request.headers.get("Authorization") == f"Bearer {KEY}"
    if scheme.kind == "header":
        return request.headers.get(scheme.name) == KEY
    return request.query.get(scheme.name) == KEY


def api_routes(server: Server, scheme: AuthScheme, prefix: str = "") -> None:
    """Serve the event stream and the subscription, checking the key."""

    async def events(request: web.Request) -> web.StreamResponse:
        if not has_key(request, scheme):
            raise web.HTTPUnauthorized
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(STARTUP)
        return response

    async def subscribe(request: web.Request) -> web.Response:
        if not has_key(request, scheme):
            raise web.HTTPUnauthorized
        body = await request.json()
        return web.json_response({"hook": body["hook"], "subscribe": body["subscribe"]})

    server.app.router.add_get(f"{prefix}/sys/events", events)
    server.app.router.add_post(f"{prefix}/sys/subscribe_events", subscribe)


def redirect_routes(server: Server, to: Callable[[str], str], status: int) -> None:
    """Redirect the event stream and the subscription to `to(path)`."""

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": to(request.path)})

    server.app.router.add_route("*", "/sys/events", redirect)
    server.app.router.add_route("*", "/sys/subscribe_events", redirect)


async def use(client: SpRecordClient, path: str) -> None:
    """Open the stream and read its event, or subscribe."""
    if path == "stream":
        async with await client.connect() as stream:
            assert await anext(aiter(stream)) == StartupEvent(device_id="D1")
    else:
        settings = await client.subscribe_events(HOOK, ["startup"])
        assert settings.hook == HOOK


# --- point: no credential follows a redirect to another origin --------------


@pytest.mark.parametrize("path", ["stream", "subscribe"])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_key_never_follows_a_redirect_to_another_origin(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    scheme: AuthScheme,
    status: int,
    path: str,
) -> None:
    # Same host, another port: another origin.
    other = Server()
    api_routes(other, scheme)
    await other.start(aiohttp_server)
    first = Server()
    redirect_routes(first, lambda p: f"{other.url}{p}?{scheme.name or 'x'}=", status)
    await first.start(aiohttp_server)

    client = SpRecordClient(session, first.url, KEY, auth=scheme)
    with pytest.raises(RedirectRefusedError, match="another origin") as caught:
        await use(client, path)
    assert first.saw_key()  # the server the user named got the key
    assert other.seen == []  # the other origin got nothing at all
    assert not other.saw_key()
    assert isinstance(caught.value, SpRecordConnectionError)
    assert KEY not in str(caught.value)
    assert other.url.removeprefix("http://") in str(caught.value)


@pytest.mark.parametrize("path", ["stream", "subscribe"])
@pytest.mark.parametrize("status", [302, 307, 308])
@pytest.mark.parametrize("scheme", SCHEMES)
async def test_a_redirect_within_the_origin_is_followed_with_the_key(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    scheme: AuthScheme,
    status: int,
    path: str,
) -> None:
    server = Server()
    api_routes(server, scheme, prefix="/v2")
    # An absolute location (default host and port as the user gave them),
    # then a relative one.

    async def moved(request: web.Request) -> web.Response:
        path = request.path.removeprefix("/moved")
        return web.Response(status=status, headers={"Location": f"/v2{path}"})

    server.app.router.add_route("*", "/moved/{tail:.*}", moved)
    redirect_routes(server, lambda p: f"{server.url}/moved{p}", status)
    await server.start(aiohttp_server)

    client = SpRecordClient(session, server.url, KEY, auth=scheme)
    if path == "subscribe" and status == 302:
        # A POST redirected by 302 becomes a GET, as in browsers.
        with pytest.raises(SpRecordError, match="HTTP 405"):
            await use(client, path)
        assert server.seen[-1][0] == "GET"
        return
    await use(client, path)
    assert [p for _m, p, _h, _q in server.seen] == [
        f"/sys/{'events' if path == 'stream' else 'subscribe_events'}",
        f"/moved/sys/{'events' if path == 'stream' else 'subscribe_events'}",
        f"/v2/sys/{'events' if path == 'stream' else 'subscribe_events'}",
    ]


async def test_a_query_key_is_not_doubled_by_a_location_that_has_it(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    scheme = AuthScheme("query", "token")
    server = Server()
    api_routes(server, scheme, prefix="/v2")
    redirect_routes(server, lambda p: f"/v2{p}?token=old&keep=1", 307)
    await server.start(aiohttp_server)
    await use(SpRecordClient(session, server.url, KEY, auth=scheme), "stream")
    _method, _path, _headers, query = server.seen[-1]
    assert query == {"token": KEY, "keep": "1"}


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("ftp://127.0.0.1/x", "not an http"),
        ("http://user:pass@127.0.0.1:{port}/v2/sys/events", "not an http"),
        ("http://[::1", "not an http"),
        ("http://user@127.0.0.1:{port}/v2/sys/events", "not an http"),
        ("/sys/events", f"more than {MAX_REDIRECTS} times"),
    ],
)
async def test_redirects_that_cannot_be_followed_are_refused(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    location: str,
    message: str,
) -> None:
    server = Server()
    redirect_routes(
        server, lambda _p: location.format(port=server.url.rsplit(":", 1)[1]), 307
    )
    await server.start(aiohttp_server)
    client = SpRecordClient(session, server.url, KEY, auth=CANDIDATES[1])
    with pytest.raises(RedirectRefusedError, match=message):
        await client.connect()
    assert len(server.seen) <= MAX_REDIRECTS + 1


async def test_discovery_stops_at_a_redirect_to_another_origin(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    other = Server()
    await other.start(aiohttp_server)
    first = Server()
    redirect_routes(first, lambda p: f"{other.url}{p}", 307)
    await first.start(aiohttp_server)
    client = SpRecordClient(session, first.url, KEY)
    with pytest.raises(RedirectRefusedError):
        await client.discover_auth()
    assert not other.saw_key()
    assert [p for _m, p, _h, _q in other.seen] in ([], ["/openapi.json"])


async def test_a_redirect_without_location_is_the_answer(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    server = Server()

    async def found(_request: web.Request) -> web.Response:
        return web.Response(status=302)

    server.app.router.add_get("/sys/events", found)
    await server.start(aiohttp_server)
    client = SpRecordClient(session, server.url, KEY)
    with pytest.raises(ProtocolError, match="Expected an event stream"):
        await client.connect()
    assert len(server.seen) == 1


# --- point: events before an over-long SSE line ------------------------------


def test_the_parser_hands_out_events_completed_before_an_over_long_line() -> None:
    parser = SSEParser(max_line_length=32, last_event_id="0")
    chunk = b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: " + b"x" * 40 + b"\n\n"
    with pytest.raises(SSEOverflowError, match="line longer than 32") as caught:
        parser.feed(chunk)
    assert [(e.data, e.last_event_id) for e in caught.value.events] == [
        ("a", "1"),
        ("b", "2"),
    ]
    # The resume id is that of the last event handed out, never "3".
    assert parser.last_event_id == "2"


def test_the_parser_hands_out_events_completed_before_an_over_long_tail() -> None:
    parser = SSEParser(max_line_length=32)
    with pytest.raises(SSEOverflowError, match="line longer") as caught:
        parser.feed(b"id: 1\ndata: a\n\ndata: " + b"y" * 40)
    assert [e.data for e in caught.value.events] == ["a"]
    assert parser.last_event_id == "1"
    with pytest.raises(SSEOverflowError, match="event longer") as caught:
        parser.feed(b"\n\nid: 2\ndata: c\n\n" + b"data: 0123456789\n" * 4)
    assert [e.data for e in caught.value.events] == ["c"]
    assert parser.last_event_id == "2"


class OneChunk:
    """A response whose stream is one chunk, then silence."""

    def __init__(self, chunk: bytes) -> None:
        """Hold the chunk."""
        self.chunks = [chunk]
        self.connection = None
        self.closed = False
        self.content = self

    async def readany(self) -> bytes:
        """Return the chunk once; then the stream would have to wait."""
        assert self.chunks, "the stream read past its one chunk"
        return self.chunks.pop()

    def close(self) -> None:
        """Note the close."""
        self.closed = True


def startup(event_id: int) -> bytes:
    """Return a startup event with an id."""
    return f"id: {event_id}\n".encode() + STARTUP


async def test_a_stream_dispatches_complete_events_then_fails() -> None:
    long_line = b"data: " + b"x" * (1024 * 1024 + 1) + b"\n\n"
    response = OneChunk(startup(1) + startup(2) + b"id: 3\n" + long_line)
    stream = EventStream(response, lambda _e: None, "0")  # type: ignore[arg-type]
    assert stream.last_event_id == "0"
    events: list[object] = []

    async def read_all() -> None:
        async for event in stream:
            events.append(event)
            # Never past an event not handed out yet.
            assert stream.last_event_id == str(len(events))

    with pytest.raises(ProtocolError, match="longer than"):
        await read_all()
    assert events == [StartupEvent(device_id="D1")] * 2
    assert stream.last_event_id == "2"
    assert stream.events_received == 2
    # The stream stays failed: no read past the broken chunk.
    with pytest.raises(ProtocolError, match="longer than"):
        await anext(aiter(stream))


async def test_a_stream_left_early_resumes_from_the_event_handed_out() -> None:
    response = OneChunk(startup(1) + startup(2) + startup(3))
    stream = EventStream(response, lambda _e: None, "0")  # type: ignore[arg-type]
    assert await anext(aiter(stream)) == StartupEvent(device_id="D1")
    assert stream.last_event_id == "1"
    await anext(aiter(stream))
    await anext(aiter(stream))
    assert stream.last_event_id == "3"


# --- point: a charset that is no character set ---------------------------------


@pytest.mark.parametrize(
    "name",
    [
        *("hex", "base64", "rot13", "zlib", "bz2", "uu", "quopri", "idna"),
        *("undefined", "punycode", "unicode_escape", "raw_unicode_escape"),
        *("no-such", "a\0b", ""),
    ],
)
def test_only_character_sets_are_charsets(name: str) -> None:
    assert charset_codec(name) is None


def test_a_codec_that_cannot_decode_with_replacement_is_no_charset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by trying, not only by the list: `idna` refuses `replace`.
    monkeypatch.setattr(charset_module, "NOT_CHARSETS", frozenset())
    assert charset_codec("idna") is None
    assert charset_codec("punycode") == "punycode"


@pytest.mark.parametrize(
    ("name", "codec"),
    [("UTF-8", "utf-8"), ("windows-1251", "cp1251"), ("KOI8-R", "koi8-r")],
)
def test_character_sets_are_charsets(name: str, codec: str) -> None:
    assert charset_codec(name) == codec


@pytest.mark.parametrize(
    "charset", ["idna", "undefined", "hex", "base64", "rot13", "zlib", "punycode"]
)
async def test_an_answer_charset_that_is_no_character_set_reads_as_utf8(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    charset: str,
) -> None:
    body = json.dumps(
        {"result": "error", "result_code": "not_found", "result_txt": "Нет задачи"},
        ensure_ascii=False,
    ).encode()

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(
            body=body, headers={"Content-Type": f"text/plain; charset={charset}"}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = AutoDialClient(session, "127.0.0.1", server.port)
    with pytest.raises(AutoDialNotFound, match=r"^Нет задачи$"):
        await client.status(5)


def test_an_answer_that_fails_to_decode_reads_as_utf8(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A charset that passes the check and still fails on the answer's bytes.
    monkeypatch.setattr(charset_module, "charset_codec", lambda _name: "idna")
    assert charset_module._text("Да".encode(), "x") == "Да"


# --- point: the PBX's result_txt is bounded and one line -----------------------


async def test_a_huge_result_txt_becomes_a_short_line(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    huge = ("Ошибка\nFAKE LOG LINE\r\n\u202e" * 400_000)[: 5 * 1024 * 1024]
    answers: list[dict[str, Any]] = [
        {"result": "error", "result_code": "bad", "result_txt": huge},
        {"result": "warning", "result_code": "x\n" * 1_000_000},
        {"result": "ok", "state": "run", "total": "\n" * 1_000_000 + "x"},
    ]

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(answers.pop(0), ensure_ascii=False))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = AutoDialClient(session, "127.0.0.1", server.port)
    for _ in range(3):
        with pytest.raises(AutoDialError) as caught:
            await client.status(5)
        message = str(caught.value)
        assert len(message) <= MAX_VENDOR_TEXT + 60
        assert message.isprintable()
        assert caught.value.code is None or len(caught.value.code) <= MAX_VENDOR_TEXT
        assert caught.value.code is None or caught.value.code.isprintable()
    assert answers == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Задача не найдена", "Задача не найдена"),
        ("  two\r\nlines\t\u202eand\u0000more  ", "two lines and more"),
        ("\n\n\n", ""),
        ("x" * MAX_VENDOR_TEXT, "x" * MAX_VENDOR_TEXT),
        ("x" * (MAX_VENDOR_TEXT + 1), "x" * (MAX_VENDOR_TEXT - 1) + "…"),
        ("ab " + " " * 5_000 + "cd", "ab…"),
    ],
)
def test_vendor_text(text: str, shown: str) -> None:
    assert vendor_text(text) == shown
