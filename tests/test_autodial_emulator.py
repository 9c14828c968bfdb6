"""The emulated auto-dial API: runs over time, outcomes, answers, control, CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import itertools
import json
import os
import signal
from typing import Any

import aiohttp
import pytest

from emulator.__main__ import _parser, _serve
from emulator.autodial import (
    DEFAULT_STEP,
    FIRST_TASK_ID,
    OUTCOMES,
    AutoDialEmulator,
)

TEXT = {"Content-Type": "text/plain"}
ALARM = FIRST_TASK_ID
"""The id of the default task `Тревога` (defined first)."""
TEST = FIRST_TASK_ID + 1


@pytest.fixture
async def pbx(socket_enabled: None) -> AsyncIterator[AutoDialEmulator]:
    """Serve an emulated auto-dial API on 127.0.0.1."""
    emulator = AutoDialEmulator(step=0.01)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def http(pbx: AutoDialEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    """Return a session whose relative URLs go to the emulator."""
    async with aiohttp.ClientSession(base_url=pbx.url) as session:
        yield session


async def wait_for(predicate: Callable[[], object]) -> None:
    """Wait until a condition holds, within five seconds."""
    async with asyncio.timeout(5):
        while not predicate():
            await asyncio.sleep(0.005)


async def ask(
    http: aiohttp.ClientSession,
    path: str,
    body: Any = None,
    *,
    expect: int = 200,
    **query: str | int,
) -> dict[str, Any]:
    """Send a request as the vendor's clients do; return the answer's JSON."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    method = "GET" if body is None else "POST"
    async with http.request(
        method, path, params=query or None, data=data, headers=TEXT
    ) as response:
        assert response.status == expect, await response.text()
        assert response.content_type == "text/plain"
        assert response.charset == "utf-8"
        answer: dict[str, Any] = json.loads(await response.text())
    return answer


async def start(http: aiohttp.ClientSession, name: str, **body: Any) -> dict[str, Any]:
    """Start a task by name over HTTP."""
    return await ask(http, "/auto_call/start", {"name": name, **body})


async def command(
    http: aiohttp.ClientSession, task_id: int, cmd: str
) -> dict[str, Any]:
    """Give a task a command over HTTP."""
    return await ask(http, "/auto_call/start", id=task_id, cmd=cmd)


async def status(http: aiohttp.ClientSession, task_id: int) -> dict[str, Any]:
    """Return a task's status over HTTP."""
    return await ask(http, "/auto_call/status", id=task_id)


async def results(http: aiohttp.ClientSession, task_id: int) -> list[dict[str, str]]:
    """Return a task's per-number results over HTTP."""
    data: list[dict[str, str]] = (await ask(http, "/auto_call/result", id=task_id))[
        "data"
    ]
    return data


def state_of(pbx: AutoDialEmulator, task_id: int) -> str:
    """Return a task's state, read in-process."""
    answer: str = pbx.status(task_id)["state"]
    return answer


def result_of(pbx: AutoDialEmulator, task_id: int, index: int) -> str | None:
    """Return the result of a task's number, read in-process."""
    entry: dict[str, str] = pbx.results(task_id)["data"][index]
    return entry.get("result")


def consistent(answer: dict[str, Any]) -> bool:
    """Tell whether the vendor's counts of a status agree with each other."""
    total, done, success = answer["total"], answer["done"], answer["success"]
    tried, attempts = answer["tried"], answer["attempts"]
    return success <= done <= tried <= total and tried <= attempts


# --- tasks as defined ---------------------------------------------------------


async def test_default_tasks_never_ran(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    assert pbx.task_id("Тревога") == ALARM
    assert pbx.task_id("test") == TEST
    assert await status(http, ALARM) == {
        "result": "ok",
        "state": "none",
        "total": 2,
        "done": 0,
        "success": 0,
        "tried": 0,
        "attempts": 0,
    }
    assert await results(http, ALARM) == [{"number": "1002"}, {"number": "1003"}]
    assert await results(http, TEST) == [{"number": "1002"}]
    with pytest.raises(KeyError):
        pbx.task_id("нет")


def test_defaults_and_validation() -> None:
    emulator = AutoDialEmulator()
    assert emulator.step == DEFAULT_STEP
    assert emulator.url == ""
    assert emulator.port == 0
    assert [t["name"] for t in emulator.state()["tasks"]] == ["Тревога", "test"]
    assert AutoDialEmulator(tasks={"один": ["1"]}).task_id("один") == FIRST_TASK_ID
    with pytest.raises(ValueError, match="step must be"):
        AutoDialEmulator(step=-1)
    bad: Any
    for bad in ("", " ", 5):
        with pytest.raises(ValueError, match="task name"):
            emulator.add_task(bad, ["1"])
    for bad in ([], "1002", None, ["1", ""], [1]):
        with pytest.raises(ValueError, match="numbers"):
            emulator.add_task("x", bad)
    for bad in (0, True, "2"):
        with pytest.raises(ValueError, match="simultaneous must be"):
            emulator.add_task("x", ["1"], simultaneous=bad)
        with pytest.raises(ValueError, match="attempts must be"):
            emulator.add_task("x", ["1"], attempts=bad)
    with pytest.raises(ValueError, match="number must be"):
        emulator.set_outcome("", "talk")
    with pytest.raises(ValueError, match="unknown outcome 'hangup'"):
        emulator.set_outcome("1002", "hangup")
    with pytest.raises(ValueError, match="at least one"):
        emulator.set_outcome("1002", [])


def test_redefining_a_task_keeps_its_id() -> None:
    emulator = AutoDialEmulator()
    assert emulator.add_task("test", ["2001", "2002"], attempts=2) == TEST
    assert emulator.add_task("новое", ["3001"]) == FIRST_TASK_ID + 2
    task = emulator.state()["tasks"][1]
    assert (task["numbers"], task["attempts"], task["simultaneous"]) == (
        ["2001", "2002"],
        2,
        1,
    )
    assert task["counts"]["total"] == 2


# --- a run over time ------------------------------------------------------------


async def test_a_run_progresses_to_its_end(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    answer = await start(http, "Тревога")
    assert answer == {
        "result": "ok",
        "result_txt": "Задание Тревога запущено",
        "id": ALARM,
    }
    seen = [await status(http, ALARM)]
    while seen[-1]["state"] == "run":
        seen.append(await status(http, ALARM))
    assert all(consistent(s) for s in seen)
    for before, after in itertools.pairwise(seen):
        for count in ("done", "success", "tried", "attempts"):
            assert before[count] <= after[count]
    assert seen[-1] == {
        "result": "ok",
        "state": "finish",
        "total": 2,
        "done": 2,
        "success": 2,
        "tried": 2,
        "attempts": 2,
    }
    assert await results(http, ALARM) == [
        {"number": "1002", "result": "ok", "result_code": "talk"},
        {"number": "1003", "result": "ok", "result_code": "talk"},
    ]
    assert pbx.stats.starts == 1


async def test_numbers_are_dialled_one_after_another(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    pbx.set_outcome("1002", "ringing")
    await start(http, "Тревога")
    await wait_for(lambda: result_of(pbx, ALARM, 0) == "dialing")
    assert await results(http, ALARM) == [
        {"number": "1002", "result": "dialing"},
        {"number": "1003"},
    ]
    answer = await status(http, ALARM)
    assert (answer["tried"], answer["attempts"], answer["done"]) == (1, 1, 0)
    pbx.set_outcome("1002", "talk")
    await wait_for(lambda: state_of(pbx, ALARM) == "finish")


async def test_a_run_with_a_list_of_its_own(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    answer = await start(http, "test", list=["2001", "2002", "2003"])
    assert answer["id"] == TEST
    await wait_for(lambda: state_of(pbx, TEST) == "finish")
    assert [r["number"] for r in await results(http, TEST)] == ["2001", "2002", "2003"]
    assert (await status(http, TEST))["total"] == 3
    assert pbx.state()["tasks"][1]["numbers"] == ["1002"]  # the task is unchanged


@pytest.mark.parametrize(
    ("outcome", "result", "code"),
    [
        ("talk", "ok", "talk"),
        ("busy", "fail", "busy"),
        ("timeout", "fail", "timeout"),
        ("unavailable", "fail", "unavailable"),
        ("no_answer", "fail", "timeout"),
        ("talk_ok", "ok", "talk_ok"),
        ("result#1", "ok", "result#1"),
        ("line_fail", "fail", "line_fail"),
    ],
)
async def test_outcomes(
    pbx: AutoDialEmulator,
    http: aiohttp.ClientSession,
    outcome: str,
    result: str,
    code: str,
) -> None:
    async with http.post(
        "/_emulator/numbers", json={"number": "1003", "outcome": outcome}
    ) as response:
        assert response.status == 200
        assert await response.json() == {"number": "1003", "outcomes": [outcome]}
    await start(http, "Тревога")
    await wait_for(lambda: state_of(pbx, ALARM) == "finish")
    assert (await results(http, ALARM))[1] == {
        "number": "1003",
        "result": result,
        "result_code": code,
    }
    answer = await status(http, ALARM)
    assert answer["success"] == (2 if result == "ok" else 1)
    assert (answer["done"], answer["tried"], answer["attempts"]) == (2, 2, 2)


def test_every_outcome_is_a_vendor_result() -> None:
    for result, code in OUTCOMES.values():
        assert result in ("ok", "fail")
        assert code in {
            "talk", "talk_ok", "talk_unsuccess", "busy", "timeout", "unavailable",
            "no_route", "line_busy", "line_fail", "error", "break",
            "result#1", "result#2", "result#3",
        }  # fmt: skip


async def test_attempts_until_answered(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    task_id = pbx.add_task("повтор", ["1004", "1005"], attempts=3)
    pbx.set_outcome("1004", ["busy", "timeout", "talk"])
    pbx.set_outcome("1005", "busy")
    await start(http, "повтор")
    await wait_for(lambda: state_of(pbx, task_id) == "finish")
    assert await status(http, task_id) == {
        "result": "ok",
        "state": "finish",
        "total": 2,
        "done": 2,
        "success": 1,
        "tried": 2,
        "attempts": 6,
    }
    assert await results(http, task_id) == [
        {"number": "1004", "result": "ok", "result_code": "talk"},
        {"number": "1005", "result": "fail", "result_code": "busy"},
    ]


async def test_simultaneous_calls(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    task_id = pbx.add_task("все", ["1", "2", "3", "4"], simultaneous=3)
    for number in "1234":
        pbx.set_outcome(number, "ringing")
    await start(http, "все")
    await wait_for(lambda: pbx.status(task_id)["tried"] == 3)
    assert [r.get("result") for r in await results(http, task_id)] == [
        "dialing",
        "dialing",
        "dialing",
        None,
    ]
    pbx.set_outcome("2", "talk")
    await wait_for(lambda: pbx.status(task_id)["tried"] == 4)
    for number in "134":
        pbx.set_outcome(number, "busy")
    await wait_for(lambda: state_of(pbx, task_id) == "finish")
    answer = await status(http, task_id)
    assert (answer["success"], answer["done"], answer["attempts"]) == (1, 4, 4)


async def test_pause_lets_the_call_end_and_dials_no_more(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    pbx.set_outcome("1002", "ringing")
    await start(http, "Тревога")
    await wait_for(lambda: result_of(pbx, ALARM, 0) == "dialing")
    assert await command(http, ALARM, "task_pause") == {
        "result": "ok",
        "result_txt": "Выполнение задания приостановлено",
    }
    pbx.set_outcome("1002", "talk")
    await wait_for(lambda: result_of(pbx, ALARM, 0) == "ok")
    answer = await status(http, ALARM)
    assert (answer["state"], answer["done"], answer["tried"]) == ("pause", 1, 1)
    assert (await results(http, ALARM))[1] == {"number": "1003"}

    assert await command(http, ALARM, "task_resume") == {
        "result": "ok",
        "result_txt": "Выполнение задания возобновлено",
    }
    await wait_for(lambda: state_of(pbx, ALARM) == "finish")
    assert (await status(http, ALARM))["done"] == 2
    assert pbx.stats.commands == 2


async def test_paused_during_its_last_call_it_stays_paused(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    pbx.set_outcome("1002", "ringing")
    await start(http, "test")
    await wait_for(lambda: result_of(pbx, TEST, 0) == "dialing")
    await command(http, TEST, "task_pause")
    pbx.set_outcome("1002", "talk")
    await wait_for(lambda: pbx.status(TEST)["done"] == 1)
    assert state_of(pbx, TEST) == "pause"
    await command(http, TEST, "task_resume")
    await wait_for(lambda: state_of(pbx, TEST) == "finish")


async def test_a_retry_waits_for_resume(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    task_id = pbx.add_task("повтор", ["1004"], attempts=2)
    pbx.set_outcome("1004", ["ringing", "talk"])
    await start(http, "повтор")
    await wait_for(lambda: result_of(pbx, task_id, 0) == "dialing")
    await command(http, task_id, "task_pause")
    pbx.set_outcome("1004", ["busy", "talk"])
    await wait_for(lambda: result_of(pbx, task_id, 0) == "fail")
    assert pbx.status(task_id)["attempts"] == 1
    await command(http, task_id, "task_resume")
    await wait_for(lambda: state_of(pbx, task_id) == "finish")
    assert pbx.status(task_id)["attempts"] == 2


async def test_stop_breaks_off_the_call_and_leaves_the_rest(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    pbx.set_outcome("1002", "ringing")
    await start(http, "Тревога")
    await wait_for(lambda: result_of(pbx, ALARM, 0) == "dialing")
    assert await command(http, ALARM, "task_stop") == {
        "result": "ok",
        "result_txt": "Выполнение задания остановлено",
    }
    assert await status(http, ALARM) == {
        "result": "ok",
        "state": "stop",
        "total": 2,
        "done": 1,
        "success": 0,
        "tried": 1,
        "attempts": 1,
    }
    assert await results(http, ALARM) == [
        {"number": "1002", "result": "fail", "result_code": "break"},
        {"number": "1003"},
    ]
    pbx.set_outcome("1002", "talk")  # the broken-off call stays broken off
    await asyncio.sleep(0)
    assert (await results(http, ALARM))[0]["result_code"] == "break"


async def test_stop_while_paused(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    pbx.set_outcome("1002", "ringing")
    await start(http, "Тревога")
    await command(http, ALARM, "task_pause")
    assert (await command(http, ALARM, "task_stop"))["result"] == "ok"
    assert state_of(pbx, ALARM) == "stop"


async def test_a_task_starts_again_afresh_with_its_id(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    pbx.set_outcome("1003", "busy")
    await start(http, "Тревога")
    await wait_for(lambda: state_of(pbx, ALARM) == "finish")
    pbx.set_outcome("1002", "ringing")
    assert (await start(http, "Тревога"))["id"] == ALARM
    answer = await status(http, ALARM)
    assert (answer["state"], answer["done"], answer["success"]) == ("run", 0, 0)
    await command(http, ALARM, "task_stop")
    pbx.set_outcome("1002", "talk")
    assert (await start(http, "Тревога"))["id"] == ALARM
    await wait_for(lambda: state_of(pbx, ALARM) == "finish")


async def test_a_redefined_task_runs_its_new_numbers_next_time(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    pbx.set_outcome("1002", "ringing")
    await start(http, "test")
    pbx.add_task("test", ["3001"])
    assert [r["number"] for r in await results(http, TEST)] == ["1002"]
    await command(http, TEST, "task_stop")
    await start(http, "test")
    await wait_for(lambda: state_of(pbx, TEST) == "finish")
    assert [r["number"] for r in await results(http, TEST)] == ["3001"]


async def test_stopping_the_emulator_ends_its_runs(socket_enabled: None) -> None:
    emulator = AutoDialEmulator(step=60)
    await emulator.start()
    emulator.start_task("Тревога")
    await emulator.stop()
    assert emulator.state()["tasks"][0]["state"] == "run"
    await emulator.stop()  # twice is fine


# --- warnings and errors, as the vendor answers them ----------------------------


async def test_warnings(pbx: AutoDialEmulator, http: aiohttp.ClientSession) -> None:
    pbx.set_outcome("1002", "ringing")
    for cmd in ("task_pause", "task_stop"):  # never ran
        assert await command(http, TEST, cmd) == {
            "result": "warning",
            "result_txt": "Задание не выполняется",
            "result_code": "not_running",
        }
    assert (await command(http, TEST, "task_resume"))["result_code"] == "not_suspended"
    await start(http, "test")
    assert await start(http, "test") == {
        "result": "warning",
        "result_txt": "Задание test уже выполняется",
        "result_code": "already_running",
    }
    assert await command(http, TEST, "task_resume") == {
        "result": "warning",
        "result_txt": "Выполнение задания не приостановлено",
        "result_code": "not_suspended",
    }
    await command(http, TEST, "task_pause")
    assert await command(http, TEST, "task_pause") == {
        "result": "warning",
        "result_txt": "Выполнение задания уже приостановлено",
        "result_code": "already_suspended",
    }
    assert (await start(http, "test"))["result_code"] == "already_running"
    await command(http, TEST, "task_stop")
    for cmd in ("task_pause", "task_stop"):
        assert (await command(http, TEST, cmd))["result_code"] == "not_running"
    assert (await command(http, TEST, "task_resume"))["result_code"] == "not_suspended"
    assert pbx.stats.commands == 2
    assert pbx.stats.starts == 1


async def test_not_found(pbx: AutoDialEmulator, http: aiohttp.ClientSession) -> None:
    assert await start(http, "тест") == {
        "result": "error",
        "result_txt": "задание тест не найдено",
        "result_code": "not_found",
    }
    expected = {
        "result": "error",
        "result_txt": "задание 0 не найдено",
        "result_code": "not_found",
    }
    assert await status(http, 0) == expected
    assert await ask(http, "/auto_call/result", id=0) == expected
    assert await command(http, 0, "task_stop") == expected


async def test_answers_are_text_plain_with_literal_russian(
    http: aiohttp.ClientSession,
) -> None:
    async with http.post(
        "/auto_call/start", data='{"name": "Тревога"}'.encode(), headers=TEXT
    ) as response:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        raw = await response.read()
    assert "Задание Тревога запущено".encode() in raw


# --- the text/plain quirk -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/auto_call/start", {"Content-Type": "application/json"}),
        ("GET", "/auto_call/status?id=500", {"Content-Type": "application/json"}),
        ("GET", "/auto_call/status?id=500", {}),
        ("GET", "/auto_call/result?id=500", {"Content-Type": "text/html"}),
        ("GET", "/auto_call/start?id=500&cmd=task_stop", {}),
    ],
)
async def test_a_request_that_is_not_text_plain_is_refused(
    pbx: AutoDialEmulator,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    data = b'{"name": "test"}' if method == "POST" else None
    async with http.request(
        method, path, data=data, headers=headers, skip_auto_headers=["Content-Type"]
    ) as response:
        assert response.status == 415
        assert response.content_type == "text/plain"
        answer = json.loads(await response.text())
    assert answer["result"] == "error"
    assert answer["result_code"] == "unsupported_media_type"
    assert "text/plain" in answer["result_txt"]
    assert pbx.stats.bad_content_type == 1
    assert pbx.stats.requests == 1
    assert pbx.stats.starts == 0
    assert state_of(pbx, ALARM) == "none"


async def test_json_body_with_aiohttp_json_is_refused(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post("/auto_call/start", json={"name": "test"}) as response:
        assert response.status == 415
        assert "application/json" in (await response.text())
    assert pbx.stats.bad_content_type == 1


async def test_text_plain_with_a_charset_is_taken(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.get(
        "/auto_call/status",
        params={"id": str(TEST)},
        headers={"Content-Type": "Text/Plain; charset=UTF-8"},
    ) as response:
        assert response.status == 200
    assert pbx.stats.requests == 1
    assert pbx.stats.bad_content_type == 0


# --- requests it cannot read ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"name=test",
        b"\xff\xfe",
        b"[" * 100_000,
        b'["test"]',
        b"{}",
        b'{"name": 5}',
        b'{"name": "test", "list": "1002"}',
        b'{"name": "test", "list": []}',
        b'{"name": "test", "list": [1002]}',
        b'{"name": "test", "list": ["1002", " "]}',
    ],
)
async def test_unreadable_starts(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession, body: bytes
) -> None:
    async with http.post("/auto_call/start", data=body, headers=TEXT) as response:
        assert response.status == 400
        answer = json.loads(await response.text())
    assert answer["result"] == "error"
    assert answer["result_code"] == "bad_request"
    assert answer["result_txt"].startswith("неверный запрос")
    assert pbx.stats.bad_requests == 1
    assert state_of(pbx, TEST) == "none"


@pytest.mark.parametrize(
    "query",
    [
        "/auto_call/status",
        "/auto_call/status?id=",
        "/auto_call/status?id=abc",
        "/auto_call/status?id=-1",
        "/auto_call/status?id=%D9%A5",  # an Arabic-Indic digit five
        "/auto_call/result?id=" + "9" * 20,
        "/auto_call/start?id=500",
        "/auto_call/start?id=500&cmd=task_restart",
        "/auto_call/start?cmd=task_stop",
    ],
)
async def test_unreadable_queries(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession, query: str
) -> None:
    async with http.get(query, headers=TEXT) as response:
        assert response.status == 400
        answer = json.loads(await response.text())
    assert answer["result_code"] == "bad_request"
    assert pbx.stats.bad_requests == 1


# --- the control API --------------------------------------------------------------


async def test_control_defines_tasks(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        "/_emulator/tasks",
        json={"name": "Пожар", "numbers": ["1010", "1011"], "attempts": 2},
    ) as response:
        assert response.status == 200
        task = await response.json()
    assert task == {
        "id": FIRST_TASK_ID + 2,
        "name": "Пожар",
        "numbers": ["1010", "1011"],
        "simultaneous": 1,
        "attempts": 2,
        "state": "none",
        "counts": {"total": 2, "done": 0, "success": 0, "tried": 0, "attempts": 0},
        "results": [{"number": "1010"}, {"number": "1011"}],
    }
    async with http.post(
        "/_emulator/tasks", json={"name": "test", "numbers": ["1"], "simultaneous": 2}
    ) as response:
        assert (await response.json())["id"] == TEST
    assert (await start(http, "Пожар"))["id"] == FIRST_TASK_ID + 2


async def test_control_state(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    pbx.set_outcome("1003", ["busy", "talk"])
    await start(http, "Тревога")
    await wait_for(lambda: state_of(pbx, ALARM) == "finish")
    async with http.get("/_emulator/state") as response:
        state = await response.json()
    assert state["url"] == pbx.url
    assert state["step"] == 0.01
    assert state["outcomes"] == {"1003": ["busy", "talk"]}
    assert state["stats"] == {
        "requests": 1,
        "bad_content_type": 0,
        "bad_requests": 0,
        "starts": 1,
        "commands": 0,
    }
    alarm = state["tasks"][0]
    assert (alarm["name"], alarm["state"]) == ("Тревога", "finish")
    assert alarm["counts"]["success"] == 1
    assert alarm["results"][1] == {
        "number": "1003",
        "result": "fail",
        "result_code": "busy",
    }
    assert pbx.state() == state


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        ("numbers", b"not json", "JSON object"),
        ("numbers", b"[1]", "JSON object"),
        ("numbers", {"number": "1002"}, "outcome must be"),
        ("numbers", {"number": "1002", "outcome": 5}, "outcome must be"),
        ("numbers", {"number": "1002", "outcome": ["busy", 5]}, "outcome must be"),
        ("numbers", {"number": "1002", "outcome": []}, "at least one"),
        ("numbers", {"number": "1002", "outcome": "hangup"}, "unknown outcome"),
        ("numbers", {"outcome": "busy"}, "number must be"),
        ("numbers", {"number": 1002, "outcome": "busy"}, "number must be"),
        ("tasks", b"", "JSON object"),
        ("tasks", {"numbers": ["1"]}, "task name"),
        ("tasks", {"name": "x"}, "numbers must be"),
        ("tasks", {"name": "x", "numbers": []}, "numbers must be"),
        ("tasks", {"name": "x", "numbers": ["1"], "attempts": 0}, "attempts"),
        ("tasks", {"name": "x", "numbers": ["1"], "simultaneous": "2"}, "simultan"),
    ],
)
async def test_control_refuses_bad_requests(
    pbx: AutoDialEmulator,
    http: aiohttp.ClientSession,
    path: str,
    body: Any,
    detail: str,
) -> None:
    kwargs: dict[str, Any] = (
        {"data": body} if isinstance(body, bytes) else {"json": body}
    )
    async with http.post(f"/_emulator/{path}", **kwargs) as response:
        assert response.status == 422
        assert response.content_type == "application/json"
        assert detail in (await response.json())["detail"]
    assert pbx.state()["outcomes"] == {}
    assert len(pbx.state()["tasks"]) == 2
    assert pbx.stats.requests == 0  # the control API is not the vendor's


async def test_ringing_from_the_control_api(
    pbx: AutoDialEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        "/_emulator/numbers", json={"number": "1002", "outcome": ["ringing"]}
    ) as response:
        assert response.status == 200
    await start(http, "test")
    await wait_for(lambda: result_of(pbx, TEST, 0) == "dialing")
    async with http.post(
        "/_emulator/numbers", json={"number": "1002", "outcome": "unavailable"}
    ):
        pass
    await wait_for(lambda: state_of(pbx, TEST) == "finish")
    assert pbx.results(TEST)["data"][0]["result_code"] == "unavailable"


# --- the CLI ------------------------------------------------------------------------


def test_cli_arguments() -> None:
    args = _parser().parse_args([])
    assert (args.autodial_port, args.autodial_step) == (0, 2.0)
    args = _parser().parse_args(["--autodial-port", "9000", "--autodial-step", "0.5"])
    assert (args.autodial_port, args.autodial_step) == (9000, 0.5)


@pytest.mark.parametrize(
    "argv",
    [
        ["--autodial-port", "-1"],
        ["--autodial-port", "65536"],
        ["--autodial-port", "x"],
        ["--autodial-step", "-1"],
        ["--autodial-step", "nan"],
    ],
)
def test_cli_refuses_bad_autodial_options(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(argv)
    assert argv[0] in capsys.readouterr().err


async def test_cli_serves_the_autodial_api(
    socket_enabled: None, unused_tcp_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(
        ["--port", "0", "--autodial-port", str(unused_tcp_port), "--autodial-step", "0"]
    )
    task = asyncio.create_task(_serve(args))
    out = ""
    try:
        async with asyncio.timeout(5):
            while "auto-dial API" not in out:
                out += capsys.readouterr().out
                await asyncio.sleep(0.01)
        assert (
            f"auto-dial API on http://127.0.0.1:{unused_tcp_port} "
            "(tasks: Тревога (id 500), test (id 501))"
        ) in out
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{unused_tcp_port}"
        ) as session:
            assert (await start(session, "test"))["id"] == TEST
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 5)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGTERM)
            loop.remove_signal_handler(signal.SIGINT)


async def test_cli_without_the_autodial_api(
    socket_enabled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    task = asyncio.create_task(_serve(_parser().parse_args(["--port", "0"])))
    out = ""
    try:
        async with asyncio.timeout(5):
            while "key demo" not in out:
                out += capsys.readouterr().out
                await asyncio.sleep(0.01)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 5)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGTERM)
            loop.remove_signal_handler(signal.SIGINT)
    assert "auto-dial" not in out + capsys.readouterr().out
