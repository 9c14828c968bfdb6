"""The client against the emulated cloud on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import hashlib

import aiohttp
from aiohttp import web
import pytest
from pytest_aiohttp import AiohttpServer

from custom_components.sprecord.api import (
    AuthenticationError,
    CallEndEvent,
    EventStream,
    IncomingCallEvent,
    IncomingSmsEvent,
    ProtocolError,
    SpRecordClient,
    SpRecordConnectionError,
    SpRecordError,
    SpRecordEvent,
    SpRecordTimeoutError,
    SubscriptionSettings,
    TooManyConnectionsError,
    normalize_base_url,
    verification_response,
)
from custom_components.sprecord.api.client import _retry_after
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

CALL = {"call_id": 8, "call_src": "+79001234567", "call_dst": "101", "trunk": "GSM1"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Return a plain aiohttp session."""
    async with aiohttp.ClientSession() as session:
        yield session


def client_for(
    emulator: SpRecordEmulator,
    session: aiohttp.ClientSession,
    key: str = "demo",
    **kwargs: object,
) -> SpRecordClient:
    """Return a client of the emulator."""
    return SpRecordClient(session, emulator.url, key, **kwargs)  # type: ignore[arg-type]


async def next_event(stream: EventStream) -> SpRecordEvent:
    """Return the next event of a stream, within a second."""
    async with asyncio.timeout(1):
        return await anext(aiter(stream))


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Wait until a condition holds, within two seconds."""
    async with asyncio.timeout(2):
        while not predicate():
            await asyncio.sleep(0.005)


# --- pure helpers ---------------------------------------------


def test_verification_response_is_md5_hex_in_result() -> None:
    assert verification_response("abc") == {
        "result": "900150983cd24fb0d6963f7d28e17f72"
    }
    answer = verification_response("Проверка")
    assert answer == {"result": hashlib.md5("Проверка".encode()).hexdigest()}  # noqa: S324


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.sprecord.cloud", "https://api.sprecord.cloud"),
        (" https://api.sprecord.cloud/ ", "https://api.sprecord.cloud"),
        ("http://127.0.0.1:8099/prefix/", "http://127.0.0.1:8099/prefix"),
    ],
)
def test_normalize_base_url(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["api.sprecord.cloud", "ftp://host", "https://", "https://h/?a=1", "https://h/#x"],
)
def test_normalize_base_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="server URL"):
        normalize_base_url(url)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("3", 3.0), ("-1", None), ("Wed, 21 Oct", None)],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert _retry_after(value) == expected


# --- streaming ---------------------------------------------


async def test_stream_yields_parsed_events(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    client = client_for(emulator, session)
    async with await client.connect() as stream:
        emulator.emit("incoming_call", CALL)
        emulator.emit("call_end", {"call_id": "8", "record_id": 3, "status": "success"})
        first = await next_event(stream)
        second = await next_event(stream)
    assert first == IncomingCallEvent(
        device_id=DEFAULT_DEVICE_ID,
        call_id="8",
        call_src="+79001234567",
        call_dst="101",
        trunk="GSM1",
    )
    assert isinstance(second, CallEndEvent)
    assert second.call_id == "8"
    assert stream.last_event_id == "2"
    assert stream.events_received == 2
    assert stream.closed
    await wait_for(lambda: emulator.open_streams() == 0)


async def test_stream_events_generator_and_russian_sms(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    client = client_for(emulator, session)
    sms = {"sms_src": "OZON", "text": "Ваш заказ доставлен", "trunk": "GSM2", "date": 0}
    received: list[SpRecordEvent] = []

    async def read() -> None:
        async for event in client.stream_events():
            received.append(event)
            return

    task = asyncio.create_task(read())
    await wait_for(lambda: emulator.open_streams() == 1)
    emulator.emit("incoming_sms", sms)
    await asyncio.wait_for(task, 1)
    assert isinstance(received[0], IncomingSmsEvent)
    assert received[0].text == "Ваш заказ доставлен"
    await wait_for(lambda: emulator.open_streams() == 0)


async def test_bad_key_raises_authentication_error(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    client = client_for(emulator, session, key="wrong")
    with pytest.raises(AuthenticationError) as err:
        await client.connect()
    assert err.value.status == 401
    assert "wrong" not in str(err.value)


async def test_fourth_connection_gets_too_many_connections(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    client = client_for(emulator, session)
    streams = [await client.connect() for _ in range(3)]
    with pytest.raises(TooManyConnectionsError) as err:
        await client.connect()
    assert err.value.status == 429
    assert emulator.stats.rejected_busy == 1
    streams.pop().close()
    await wait_for(lambda: emulator.open_streams() == 2)
    streams.append(await client.connect())  # a freed slot is usable at once
    for stream in streams:
        stream.close()


@pytest.mark.parametrize("status", [500, 502, 503, 404])
async def test_other_http_errors_carry_the_status(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession, status: int
) -> None:
    emulator.fail_streams(status)
    with pytest.raises(SpRecordError) as err:
        await client_for(emulator, session).connect()
    assert err.value.status == status
    assert not isinstance(err.value, SpRecordConnectionError)


async def test_connection_refused(
    socket_enabled: None, unused_tcp_port: int, session: aiohttp.ClientSession
) -> None:
    client = SpRecordClient(session, f"http://127.0.0.1:{unused_tcp_port}", "demo")
    with pytest.raises(SpRecordConnectionError, match=r"Cannot reach 127\.0\.0\.1"):
        await client.connect()


async def test_headers_that_never_come_time_out(
    socket_enabled: None, session: aiohttp.ClientSession
) -> None:
    release = asyncio.Event()
    handlers: list[asyncio.Task[None]] = []

    async def silent(
        _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await release.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = SpRecordClient(
        session, f"http://127.0.0.1:{port}", "k", request_timeout=0.2
    )
    with pytest.raises(SpRecordTimeoutError):
        await client.connect()
    release.set()
    await asyncio.gather(*handlers)
    server.close()
    await server.wait_closed()


async def test_not_an_event_stream_is_a_protocol_error(
    socket_enabled: None,
    aiohttp_server: Callable[..., Awaitable[AiohttpServer]],
    session: aiohttp.ClientSession,
) -> None:
    async def login_page(_request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/sys/events", login_page)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = SpRecordClient(session, str(server.make_url("")), "k")
    with pytest.raises(ProtocolError, match="text/html"):
        await client.connect()


async def test_sends_bearer_key_and_last_event_id(
    socket_enabled: None,
    aiohttp_server: Callable[..., Awaitable[AiohttpServer]],
    session: aiohttp.ClientSession,
) -> None:
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.update(request.headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/base/sys/events", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = SpRecordClient(session, str(server.make_url("/base/")), "secret-key")
    stream = await client.connect(last_event_id="41")
    stream.close()
    assert seen["Authorization"] == "Bearer secret-key"
    assert seen["Last-Event-ID"] == "41"
    assert seen["Accept"] == "text/event-stream"
    assert client.base_url.endswith("/base")


async def test_server_close_ends_the_stream_with_connection_error(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    stream = await client_for(emulator, session).connect()
    await wait_for(lambda: emulator.open_streams() == 1)
    emulator.drop_streams("close")
    with pytest.raises(SpRecordConnectionError, match="closed the event stream"):
        await next_event(stream)
    stream.close()


@pytest.mark.parametrize("mode", ["abort", "mid_event"])
async def test_drop_then_resume_with_last_event_id(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession, mode: str
) -> None:
    client = client_for(emulator, session)
    stream = await client.connect()
    await wait_for(lambda: emulator.open_streams() == 1)
    emulator.emit("incoming_call", CALL)
    assert isinstance(await next_event(stream), IncomingCallEvent)
    emulator.drop_streams(mode)  # type: ignore[arg-type]
    with pytest.raises(SpRecordConnectionError):
        await next_event(stream)
    stream.close()
    # Events sent while nobody listened come back after Last-Event-ID.
    emulator.emit("call_end", {"call_id": 8, "status": "no_answer"})
    async with await client.connect(stream.last_event_id) as resumed:
        event = await next_event(resumed)
    assert isinstance(event, CallEndEvent)
    assert resumed.last_event_id == "2"


async def test_garbage_is_reported_and_skipped(
    emulator: SpRecordEmulator,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = await client_for(emulator, session).connect()
    await wait_for(lambda: emulator.open_streams() == 1)
    emulator.emit_raw(b"data: {not json\n\n")
    emulator.emit_raw(
        b'data: {"device_id": "x", "event_type": "call_end", "payload": {}}\n\n'
    )
    emulator.emit_raw(b"\x00\xff\xfe garbage without newline")
    emulator.emit_raw(b"\n\ndata:\n\n")  # ends the garbage line; then an empty event
    emulator.emit("call_end", {"call_id": 8, "status": "busy"})
    event = await next_event(stream)
    stream.close()
    assert isinstance(event, CallEndEvent)
    assert stream.malformed_events == 2
    messages = [
        r.getMessage() for r in caplog.records if r.name.startswith("custom_components")
    ]
    assert messages == [
        (
            "Skipped a malformed event: event is not valid JSON: Expecting "
            "property name enclosed in double quotes: line 1 column 2 (char 1)"
        ),
        "Skipped a malformed event: call_end: payload.call_id is missing",
    ]


async def test_malformed_event_callback(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    errors: list[ProtocolError] = []
    stream = await client_for(
        emulator, session, on_malformed_event=errors.append
    ).connect()
    await wait_for(lambda: emulator.open_streams() == 1)
    emulator.emit("incoming_call", {"call_src": "+7"})  # no call_id: unusable
    emulator.emit("startup")
    assert (await next_event(stream)).type == "startup"
    stream.close()
    assert [str(e) for e in errors] == ["incoming_call: payload.call_id is missing"]


async def test_huge_line_is_a_protocol_error(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    stream = await client_for(emulator, session).connect()
    await wait_for(lambda: emulator.open_streams() == 1)
    emulator.emit_raw(b"data: " + b"x" * (1024 * 1024 + 10))
    with pytest.raises(ProtocolError, match="longer than"):
        await next_event(stream)
    stream.close()


async def test_keepalives_keep_an_idle_stream_open(
    socket_enabled: None, session: aiohttp.ClientSession
) -> None:
    emulator = SpRecordEmulator(keepalive=0.05)
    await emulator.start()
    try:
        client = SpRecordClient(session, emulator.url, "demo", read_timeout=0.3)
        stream = await client.connect()
        await asyncio.sleep(0.8)  # well past the read timeout, kept by pings
        emulator.emit("startup")
        assert (await next_event(stream)).type == "startup"
        assert stream.bytes_received > len(b": ping\r\n\r\n") * 5
        stream.close()
    finally:
        await emulator.stop()


async def test_stalled_stream_times_out(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    client = client_for(emulator, session, read_timeout=0.2)
    stream = await client.connect()
    await wait_for(lambda: emulator.open_streams() == 1)
    assert emulator.stall_streams() == 1
    emulator.emit("startup")  # never reaches the stalled socket
    with pytest.raises(SpRecordTimeoutError, match="sent nothing"):
        await next_event(stream)
    stream.close()


async def test_verify_opens_and_closes(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    await client_for(emulator, session).verify()
    await wait_for(lambda: emulator.open_streams() == 0)
    assert emulator.stats.connects == 1
    with pytest.raises(AuthenticationError):
        await client_for(emulator, session, key="nope").verify()


# --- webhooks ---------------------------------------------


class Hook:
    """A webhook receiver on 127.0.0.1 that answers the handshake."""

    def __init__(self, answer: Callable[[str], object] | None = None) -> None:
        self.received: list[dict[str, object]] = []
        self.answer = answer or verification_response
        self.app = web.Application()
        self.app.router.add_post("/hook", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["event_type"] == "verification":
            answer = self.answer(body["payload"])
            if isinstance(answer, str):
                return web.Response(text=answer)
            return web.json_response(answer)
        self.received.append(body)
        return web.json_response({})


async def test_verification_handshake_and_delivery(
    emulator: SpRecordEmulator,
    session: aiohttp.ClientSession,
    aiohttp_server: Callable[..., Awaitable[AiohttpServer]],
) -> None:
    hook = Hook()
    server = await aiohttp_server(hook.app, host="127.0.0.1")
    url = str(server.make_url("/hook"))
    settings = await client_for(emulator, session).subscribe_events(
        url, ["incoming_call", "call_end"]
    )
    assert settings == SubscriptionSettings(url, ("incoming_call", "call_end"))
    assert emulator.hooks.verifications[0]["ok"]
    emulator.emit("incoming_call", CALL)
    emulator.emit(
        "incoming_sms", {"sms_src": "A", "text": "t", "trunk": "G"}
    )  # not asked
    emulator.emit("call_end", {"call_id": "8", "status": "success"})
    await emulator.hooks.drain()
    assert [b["event_type"] for b in hook.received] == ["incoming_call", "call_end"]
    assert hook.received[0]["device_id"] == DEFAULT_DEVICE_ID


@pytest.mark.parametrize(
    "answer",
    [
        lambda p: hashlib.md5(p.encode()).hexdigest(),  # noqa: S324  (the 2022 bare form)
        lambda p: {"result": hashlib.md5(p.encode()).hexdigest().upper()},  # noqa: S324
        lambda p: {"result": "0" * 32},
        lambda p: {"md5": hashlib.md5(p.encode()).hexdigest()},  # noqa: S324
    ],
)
async def test_wrong_verification_answer_is_refused(
    emulator: SpRecordEmulator,
    session: aiohttp.ClientSession,
    aiohttp_server: Callable[..., Awaitable[AiohttpServer]],
    answer: Callable[[str], object],
) -> None:
    hook = Hook(answer)
    server = await aiohttp_server(hook.app, host="127.0.0.1")
    with pytest.raises(SpRecordError) as err:
        await client_for(emulator, session).subscribe_events(
            str(server.make_url("/hook")), ["call_end"]
        )
    assert err.value.status == 400
    assert emulator.hooks.get("demo") is None


async def test_subscribe_with_bad_key(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AuthenticationError):
        await client_for(emulator, session, key="x").subscribe_events("http://h", [])


async def test_subscribe_answer_that_is_not_json(
    socket_enabled: None,
    aiohttp_server: Callable[..., Awaitable[AiohttpServer]],
    session: aiohttp.ClientSession,
) -> None:
    async def not_json(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/sys/subscribe_events", not_json)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = SpRecordClient(session, str(server.make_url("")), "k")
    with pytest.raises(ProtocolError, match="not JSON"):
        await client.subscribe_events("http://h", [])
