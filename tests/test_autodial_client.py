"""The auto-dial client against the emulated PBX and against odd servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import json
from typing import Any

import aiohttp
from aiohttp import web
import pytest
from pytest_aiohttp import AiohttpServer

from custom_components.sprecord import api
from custom_components.sprecord.api import (
    AutoDialAlreadyRunning,
    AutoDialClient,
    AutoDialCommand,
    AutoDialError,
    AutoDialNotFound,
    AutoDialUnreachable,
    AutoDialWrongState,
    NumberResult,
    SpRecordError,
    TaskState,
    TaskStatus,
    autodial as autodial_module,
    autodial_models,
)
from custom_components.sprecord.api.autodial import DEFAULT_PORT
from emulator.autodial import AutoDialEmulator

ServerFactory = Callable[..., Awaitable[AiohttpServer]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Return a plain aiohttp session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def pbx(socket_enabled: None) -> AsyncIterator[AutoDialEmulator]:
    """Serve an emulated auto-dial API on 127.0.0.1."""
    emulator = AutoDialEmulator(step=0.01)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def client(pbx: AutoDialEmulator, session: aiohttp.ClientSession) -> AutoDialClient:
    """Return a client of the emulated PBX."""
    return AutoDialClient(session, "127.0.0.1", pbx.port)


async def wait_for(predicate: Callable[[], Awaitable[bool]]) -> None:
    """Wait until an asynchronous condition holds, within five seconds."""
    async with asyncio.timeout(5):
        while not await predicate():
            await asyncio.sleep(0.005)


async def serve(
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    handler: Handler,
    *,
    timeout: float = 5.0,
) -> AutoDialClient:
    """Serve `handler` for every path; return a client of it."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    return AutoDialClient(session, "127.0.0.1", server.port, timeout=timeout)


def answering(
    body: str | bytes,
    *,
    status: int = 200,
    content_type: str = "text/plain",
    charset: str | None = "utf-8",
) -> Handler:
    """Return a handler that always gives this answer."""

    async def handler(_request: web.Request) -> web.Response:
        raw = body.encode() if isinstance(body, str) else body
        return web.Response(
            body=raw, status=status, content_type=content_type, charset=charset
        )

    return handler


async def client_answered(
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    answer: Any,
    **kwargs: Any,
) -> AutoDialClient:
    """Return a client of a server that answers `answer` as JSON text."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return await serve(aiohttp_server, session, answering(text, **kwargs))


# --- the interface ---------------------------------------------------------


def test_names_are_exported_from_the_package() -> None:
    for name in (
        "AutoDialClient",
        "AutoDialCommand",
        "AutoDialError",
        "AutoDialUnreachable",
        "AutoDialNotFound",
        "AutoDialAlreadyRunning",
        "AutoDialWrongState",
        "TaskState",
        "TaskStatus",
        "NumberResult",
    ):
        assert name in api.__all__
        home = autodial_module if name == "AutoDialClient" else autodial_models
        assert getattr(api, name) is getattr(home, name)
    assert DEFAULT_PORT == 9000


def test_exceptions_are_sprecord_errors() -> None:
    for kind in (
        AutoDialUnreachable,
        AutoDialNotFound,
        AutoDialAlreadyRunning,
        AutoDialWrongState,
    ):
        assert issubclass(kind, AutoDialError)
    assert issubclass(AutoDialError, SpRecordError)
    err = AutoDialWrongState("Задание не выполняется", code="not_running", status=None)
    assert str(err) == "Задание не выполняется"
    assert err.code == "not_running"
    assert err.status is None
    assert AutoDialError("x").code is None


def test_task_state_keeps_unknown_values() -> None:
    assert TaskState("run") is TaskState.RUN
    assert TaskState.RUN.is_known
    queued = TaskState("queued")
    assert queued == "queued"
    assert queued.value == "queued"
    assert not queued.is_known
    with pytest.raises(ValueError):
        TaskState(5)


def test_models_as_dict() -> None:
    status = TaskStatus(
        TaskState.PAUSE, total=3, done=1, success=1, tried=2, attempts=4
    )
    assert status.as_dict() == {
        "state": "pause",
        "total": 3,
        "done": 1,
        "success": 1,
        "tried": 2,
        "attempts": 4,
    }
    assert NumberResult("1002", None, None).as_dict() == {
        "number": "1002",
        "result": None,
        "result_code": None,
    }
    assert [c.value for c in AutoDialCommand] == [
        "task_pause",
        "task_resume",
        "task_stop",
    ]


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("192.168.1.10", DEFAULT_PORT, "http://192.168.1.10:9000"),
        (" pbx.local ", 9001, "http://pbx.local:9001"),
        ("::1", DEFAULT_PORT, "http://[::1]:9000"),
        ("[fe80::1]", 9000, "http://[fe80::1]:9000"),
        ("FE80:0:0::1", 9000, "http://[fe80::1]:9000"),
    ],
)
def test_url(host: str, port: int, url: str) -> None:
    session: Any = object()  # nothing is sent
    assert AutoDialClient(session, host, port).url == url


def test_the_default_port_is_the_vendors() -> None:
    session: Any = object()
    assert AutoDialClient(session, "10.0.0.2").url == "http://10.0.0.2:9000"


@pytest.mark.parametrize(
    ("host", "port", "timeout", "message"),
    [
        ("pbx.local:9000", 9000, 1.0, "port apart"),
        ("192.168.1.10:9000", 9000, 1.0, "port apart"),
        ("[::1]:9000", 9000, 1.0, "port apart"),
        ("", 9000, 1.0, "not a host name"),
        ("pbx local", 9000, 1.0, "not a host name"),
        ("http://pbx", 9000, 1.0, "port apart"),
        ("pbx/x", 9000, 1.0, "not a host name"),
        ("pbx", 0, 1.0, "port must be"),
        ("pbx", 65536, 1.0, "port must be"),
        ("pbx", True, 1.0, "port must be"),
        ("pbx", 9000, 0, "timeout must be"),
    ],
)
def test_bad_address_or_timeout(
    host: str, port: int, timeout: float, message: str
) -> None:
    session: Any = object()
    with pytest.raises(ValueError, match=message):
        AutoDialClient(session, host, port, timeout=timeout)


def test_host_must_be_text() -> None:
    session: Any = object()
    host: Any = 10
    with pytest.raises(TypeError, match="host must be text"):
        AutoDialClient(session, host)


async def test_bad_arguments_are_refused_before_sending() -> None:
    session: Any = object()  # would fail if anything were sent
    client = AutoDialClient(session, "127.0.0.1")
    bad: Any
    with pytest.raises(ValueError, match="task name"):
        await client.start(" ")
    with pytest.raises(TypeError, match="not one string"):
        await client.start("test", "1002")
    with pytest.raises(ValueError, match="must not be empty"):
        await client.start("test", [])
    with pytest.raises(ValueError, match="non-empty text"):
        await client.start("test", ["1002", ""])
    for bad in (True, "500", 1.0):
        with pytest.raises(TypeError, match="task id must be an integer"):
            await client.status(bad)
    with pytest.raises(ValueError, match="task id must be"):
        await client.results(-1)
    with pytest.raises(ValueError, match="task id must be"):
        await client.status(2**63)
    bad = "task_restart"
    with pytest.raises(ValueError):
        await client.command(500, bad)


# --- against the emulated PBX ---------------------------------------------


async def test_start_and_follow_a_task_to_its_end(
    client: AutoDialClient, pbx: AutoDialEmulator
) -> None:
    pbx.set_outcome("1003", "busy")
    task_id = await client.start("Тревога")
    assert task_id == pbx.task_id("Тревога")

    async def finished() -> bool:
        return (await client.status(task_id)).state is TaskState.FINISH

    await wait_for(finished)
    assert await client.status(task_id) == TaskStatus(
        TaskState.FINISH, total=2, done=2, success=1, tried=2, attempts=2
    )
    assert await client.results(task_id) == [
        NumberResult("1002", "ok", "talk"),
        NumberResult("1003", "fail", "busy"),
    ]


async def test_start_with_a_list_of_numbers(
    client: AutoDialClient, pbx: AutoDialEmulator
) -> None:
    pbx.set_outcome("1004", "ringing")
    task_id = await client.start("test", ["1004", "1005"])

    async def dialing() -> bool:
        return (await client.results(task_id))[0].result == "dialing"

    await wait_for(dialing)
    assert await client.results(task_id) == [
        NumberResult("1004", "dialing", None),
        NumberResult("1005", None, None),
    ]
    status = await client.status(task_id)
    assert (status.state, status.total, status.tried) == (TaskState.RUN, 2, 1)
    await client.command(task_id, AutoDialCommand.STOP)


async def test_warnings_and_errors_become_their_exceptions(
    client: AutoDialClient, pbx: AutoDialEmulator
) -> None:
    pbx.set_outcome("1002", "ringing")
    with pytest.raises(AutoDialNotFound) as not_found:
        await client.start("нет такого")
    assert str(not_found.value) == "задание нет такого не найдено"
    assert not_found.value.code == "not_found"

    task_id = await client.start("test")
    with pytest.raises(AutoDialAlreadyRunning) as running:
        await client.start("test")
    assert running.value.code == "already_running"
    assert str(running.value) == "Задание test уже выполняется"

    with pytest.raises(AutoDialWrongState) as wrong:
        await client.command(task_id, AutoDialCommand.RESUME)
    assert wrong.value.code == "not_suspended"
    await client.command(task_id, AutoDialCommand.PAUSE)
    assert (await client.status(task_id)).state is TaskState.PAUSE
    with pytest.raises(AutoDialWrongState) as wrong:
        await client.command(task_id, AutoDialCommand.PAUSE)
    assert wrong.value.code == "already_suspended"
    await client.command(task_id, AutoDialCommand.RESUME)
    await client.command(task_id, "task_stop")  # type: ignore[arg-type]
    assert (await client.status(task_id)).state is TaskState.STOP
    with pytest.raises(AutoDialWrongState) as wrong:
        await client.command(task_id, AutoDialCommand.STOP)
    assert wrong.value.code == "not_running"

    for call in (client.status(1), client.results(1)):
        with pytest.raises(AutoDialNotFound):
            await call
    with pytest.raises(AutoDialNotFound):
        await client.command(1, AutoDialCommand.PAUSE)


async def test_a_task_that_never_ran(
    client: AutoDialClient, pbx: AutoDialEmulator
) -> None:
    task_id = pbx.task_id("Тревога")
    assert await client.status(task_id) == TaskStatus(
        TaskState.NONE, total=2, done=0, success=0, tried=0, attempts=0
    )
    assert [r.result for r in await client.results(task_id)] == [None, None]


async def test_check_against_the_emulator(
    client: AutoDialClient, pbx: AutoDialEmulator
) -> None:
    await client.check()
    assert pbx.stats.requests == 1
    assert pbx.stats.bad_content_type == 0


async def test_every_request_says_text_plain(
    client: AutoDialClient, pbx: AutoDialEmulator
) -> None:
    task_id = await client.start("test", ["1002"])
    await client.status(task_id)
    await client.results(task_id)
    await client.check()
    assert pbx.stats.requests == 4
    assert pbx.stats.bad_content_type == 0
    assert pbx.stats.bad_requests == 0


# --- what goes on the wire --------------------------------------------------


async def test_requests_as_the_vendor_shows_them(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    seen: list[tuple[str, str, dict[str, str], str | None, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(
            (
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("Content-Type"),
                await request.read(),
            )
        )
        return web.Response(text='{"result": "ok", "id": 506, "state": "run"}')

    client = await serve(aiohttp_server, session, handler)
    assert await client.start("Тревога") == 506
    assert await client.start("тест", ["1002", "1003"]) == 506
    await client.status(506)
    await client.results(506)
    await client.command(506, AutoDialCommand.PAUSE)
    await client.start("a\ud83d")  # half an emoji is sent as U+FFFD
    assert [s[:4] for s in seen] == [
        ("POST", "/auto_call/start", {}, "text/plain"),
        ("POST", "/auto_call/start", {}, "text/plain"),
        ("GET", "/auto_call/status", {"id": "506"}, "text/plain"),
        ("GET", "/auto_call/result", {"id": "506"}, "text/plain"),
        ("GET", "/auto_call/start", {"id": "506", "cmd": "task_pause"}, "text/plain"),
        ("POST", "/auto_call/start", {}, "text/plain"),
    ]
    assert seen[0][4] == '{"name": "Тревога"}'.encode()
    assert json.loads(seen[1][4]) == {"name": "тест", "list": ["1002", "1003"]}
    assert seen[2][4] == b""
    assert json.loads(seen[5][4]) == {"name": "a\ufffd"}


# --- odd answers ------------------------------------------------------------


async def test_a_json_content_type_answer_is_read_too(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    client = await client_answered(
        aiohttp_server,
        session,
        {"result": "ok", "id": 7},
        content_type="application/json",
    )
    assert await client.start("test") == 7


async def test_an_answer_is_decoded_by_its_charset(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    body = '{"result": "error", "result_code": "x", "result_txt": "Ошибка"}'
    client = await serve(
        aiohttp_server,
        session,
        answering(body.encode("cp1251"), charset="windows-1251"),
    )
    with pytest.raises(AutoDialError, match=r"^Ошибка$"):
        await client.status(1)
    client = await serve(
        aiohttp_server, session, answering(body.encode(), charset="x-no-such")
    )
    with pytest.raises(AutoDialError, match=r"^Ошибка$"):
        await client.status(1)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("<html>It works!</html>", 200, "answered text that is not JSON"),
        ("", 200, "answered text that is not JSON"),
        ("[1, 2]", 200, "answered a JSON array, not an object"),
        ("null", 200, "answered a JSON null, not an object"),
        ('"ok"', 200, "answered a JSON string, not an object"),
        ("true", 200, "answered a JSON boolean, not an object"),
        ("506", 200, "answered a JSON number, not an object"),
        ('{"a": ' * 70 + "1" + "}" * 70, 200, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, 200, "nested too deeply"),
        ('{"detail": "Not Found"}', 200, "does not answer as the auto-dial API"),
        ('{"result": "fine"}', 200, "does not answer as the auto-dial API"),
        ("<h1>500 Internal Server Error</h1>", 500, "answered HTTP 500"),
        ('{"result": "ok", "state": "run"}', 500, "answered HTTP 500"),
        ('{"detail": "Service Unavailable"}', 503, "answered HTTP 503"),
        ("[]", 404, "answered HTTP 404"),
    ],
)
async def test_what_is_not_the_api_is_unreachable(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    body: str,
    status: int,
    message: str,
) -> None:
    client = await serve(aiohttp_server, session, answering(body, status=status))
    with pytest.raises(AutoDialUnreachable, match=message) as caught:
        await client.status(1)
    assert f"127.0.0.1:{client.url.rsplit(':', 1)[1]}" in str(caught.value)
    assert caught.value.status == (status if status >= 400 else None)
    with pytest.raises(AutoDialUnreachable):
        await client.check()


async def test_a_vendor_answer_with_an_error_status_is_read_as_such(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    client = await client_answered(
        aiohttp_server,
        session,
        {
            "result": "error",
            "result_txt": "задание 0 не найдено",
            "result_code": "not_found",
        },
        status=404,
    )
    with pytest.raises(AutoDialNotFound) as caught:
        await client.status(0)
    assert caught.value.status == 404
    await client.check()  # a 404 in the vendor's shape still proves the API


@pytest.mark.parametrize(
    ("answer", "kind", "code", "message"),
    [
        (
            {"result": "warning", "result_code": "already_running"},
            AutoDialAlreadyRunning,
            "already_running",
            "The PBX answered warning already_running",
        ),
        (
            {"result": "warning", "result_code": "not_running", "result_txt": " "},
            AutoDialWrongState,
            "not_running",
            "The PBX answered warning not_running",
        ),
        (
            {"result": "error", "result_code": "busy_db", "result_txt": "База занята"},
            AutoDialError,
            "busy_db",
            "База занята",
        ),
        (
            {"result": "error"},
            AutoDialError,
            None,
            "The PBX answered error without a code",
        ),
        (
            {"result": "warning", "result_code": 3, "result_txt": "Странно"},
            AutoDialError,
            None,
            "Странно",
        ),
        (
            {"result": "error", "result_code": "x", "result_txt": "bad \ud800 text"},
            AutoDialError,
            "x",
            "bad \ufffd text",
        ),
    ],
)
async def test_warnings_and_errors_by_their_code(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    answer: dict[str, Any],
    kind: type[AutoDialError],
    code: str | None,
    message: str,
) -> None:
    client = await client_answered(aiohttp_server, session, answer)
    with pytest.raises(AutoDialError) as caught:
        await client.command(1, AutoDialCommand.STOP)
    assert type(caught.value) is kind
    assert caught.value.code == code
    assert str(caught.value) == message
    assert caught.value.status is None
    await client.check()  # an answer in the vendor's shape proves the API


async def test_connection_refused(
    socket_enabled: None, unused_tcp_port: int, session: aiohttp.ClientSession
) -> None:
    client = AutoDialClient(session, "127.0.0.1", unused_tcp_port)
    with pytest.raises(AutoDialUnreachable, match="Cannot reach") as caught:
        await client.start("test")
    assert f"127.0.0.1:{unused_tcp_port}" in str(caught.value)
    with pytest.raises(AutoDialUnreachable):
        await client.check()


async def test_connection_reset(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(text="{}")

    client = await serve(aiohttp_server, session, handler)
    with pytest.raises(AutoDialUnreachable, match="Cannot reach"):
        await client.status(1)


async def test_timeout(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    release = asyncio.Event()

    async def handler(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text='{"result": "ok"}')

    client = await serve(aiohttp_server, session, handler, timeout=0.05)
    try:
        with pytest.raises(AutoDialUnreachable, match=r"did not answer within 0.05 s"):
            await client.status(1)
    finally:
        release.set()


async def test_an_answer_past_the_bound_is_refused(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(autodial_module, "MAX_ANSWER_BYTES", 64)
    client = await client_answered(
        aiohttp_server, session, {"result": "ok", "data": [{"number": "1"}] * 10}
    )
    with pytest.raises(AutoDialUnreachable, match="longer than 64 bytes"):
        await client.results(1)


# --- fields of good answers ---------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {"result": "ok", "state": "run", "total": 10, "done": 5, "success": 0,
             "tried": 5, "attempts": 5},
            TaskStatus(TaskState.RUN, total=10, done=5, success=0, tried=5, attempts=5),
        ),
        (
            {"result": "ok", "state": "finish"},
            TaskStatus(TaskState.FINISH, 0, 0, 0, 0, 0),
        ),
        (
            {"result": "ok", "state": " queued ", "total": "3", "done": 2.0,
             "success": None, "tried": " 1 ", "attempts": 1},
            TaskStatus(TaskState("queued"), total=3, done=2, success=0, tried=1,
                       attempts=1),
        ),
    ],
)  # fmt: skip
async def test_status_fields(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    answer: dict[str, Any],
    expected: TaskStatus,
) -> None:
    client = await client_answered(aiohttp_server, session, answer)
    status = await client.status(1)
    assert status == expected
    assert status.state.is_known == (expected.state != "queued")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"result": "ok"}, "state is missing"),
        ({"result": "ok", "state": ""}, "state is missing"),
        ({"result": "ok", "state": 1}, "state is missing"),
        ({"result": "ok", "state": "run", "total": -1}, "total must be a whole"),
        ({"result": "ok", "state": "run", "done": "x"}, "done must be a whole"),
        ({"result": "ok", "state": "run", "tried": True}, "tried must be a whole"),
        ({"result": "ok", "state": "run", "success": 1.5}, "success must be a whole"),
        ({"result": "ok", "state": "run", "attempts": [1]}, "attempts must be"),
        ({"result": "ok", "state": "run", "total": "9" * 30}, "total must be a whole"),
    ],
)
async def test_unreadable_status_fields(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    answer: dict[str, Any],
    message: str,
) -> None:
    client = await client_answered(aiohttp_server, session, answer)
    with pytest.raises(AutoDialError, match=message) as caught:
        await client.status(1)
    assert not isinstance(caught.value, AutoDialUnreachable)
    await client.check()  # the vendor's shape, if not its fields


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"result": "ok"}, []),
        ({"result": "ok", "data": None}, []),
        (
            {
                "result": "ok",
                "data": [
                    {"number": "1002", "result": "ok", "result_code": "talk"},
                    {"number": 1003, "result": "fail", "result_code": "busy"},
                    {"number": "1004", "result": "dialing"},
                    {"number": "1005"},
                    {"number": "1006", "result": "", "result_code": None},
                    {"number": "1007", "result": "ok", "result_code": "result#2"},
                    {"number": "10\udc08", "result": 1, "result_code": ["x"]},
                ],
            },
            [
                NumberResult("1002", "ok", "talk"),
                NumberResult("1003", "fail", "busy"),
                NumberResult("1004", "dialing", None),
                NumberResult("1005", None, None),
                NumberResult("1006", None, None),
                NumberResult("1007", "ok", "result#2"),
                NumberResult("10\ufffd", None, None),
            ],
        ),
    ],
)
async def test_result_fields(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    answer: dict[str, Any],
    expected: list[NumberResult],
) -> None:
    client = await client_answered(aiohttp_server, session, answer)
    assert await client.results(1) == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"result": "ok", "data": {"number": "1"}}, "data must be a list, got dict"),
        ({"result": "ok", "data": ["1002"]}, r"data\[0\].number is missing"),
        ({"result": "ok", "data": [{"number": "1"}, {}]}, r"data\[1\].number"),
        ({"result": "ok", "data": [{"number": ""}]}, r"data\[0\].number"),
        ({"result": "ok", "data": [{"number": True}]}, r"data\[0\].number"),
    ],
)
async def test_unreadable_results(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    answer: dict[str, Any],
    message: str,
) -> None:
    client = await client_answered(aiohttp_server, session, answer)
    with pytest.raises(AutoDialError, match=message):
        await client.results(1)


@pytest.mark.parametrize(
    ("task_id", "expected"),
    [(506, 506), ("506", 506), (" 42 ", 42), (0, 0), (2**63 - 1, 2**63 - 1)],
)
async def test_started_task_ids(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    task_id: Any,
    expected: int,
) -> None:
    client = await client_answered(
        aiohttp_server, session, {"result": "ok", "result_txt": "Ok", "id": task_id}
    )
    assert await client.start("test") == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"result": "ok"}, "id is NoneType, not an integer"),
        ({"result": "ok", "id": True}, "id is bool, not an integer"),
        ({"result": "ok", "id": 5.0}, "id is float, not an integer"),
        ({"result": "ok", "id": "five"}, "id is str, not an integer"),
        ({"result": "ok", "id": -1}, "id -1 is out of range"),
        ({"result": "ok", "id": 2**63}, "out of range"),
        ({"result": "ok", "id": 2**70}, "id is str, not an integer"),
    ],
)
async def test_unreadable_task_ids(
    socket_enabled: None,
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    answer: dict[str, Any],
    message: str,
) -> None:
    client = await client_answered(aiohttp_server, session, answer)
    with pytest.raises(AutoDialError, match=message) as caught:
        await client.start("test")
    assert not isinstance(caught.value, AutoDialUnreachable)
