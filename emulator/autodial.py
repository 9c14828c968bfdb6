"""The SpRecord MiniPBX's local auto-dial API, emulated on its own port.

The real PBX serves this API itself on `http://<PBX address>:9000` (see
`shared/spec/sprecord-autodial-api.md`); `AutoDialEmulator` serves the same on
127.0.0.1 and a port of its own (0 picks a free one):

- `POST /auto_call/start` with `{"name"}` or `{"name", "list"}` starts a task
  by name and answers its id; `GET /auto_call/start?id=&cmd=` pauses
  (`task_pause`), resumes (`task_resume`) or stops (`task_stop`) it;
- `GET /auto_call/status?id=` answers the state and the counts;
- `GET /auto_call/result?id=` answers each number's result.

Answers are the vendor's: `result` `ok`, `warning` or `error`, a Russian
`result_txt`, a `result_code` for warnings and errors, sent as `text/plain`
with JSON text, as the vendor's server sends them.

Tasks are defined by name (`add_task()`; by default `Тревога` dials 1002 and
1003, `test` dials 1002). Each task has one id, given when it is defined and
counted from `FIRST_TASK_ID`: the vendor's state `none` ("never ran") only
makes sense if an id names a task, not one run of it. Starting it again once
it ended reuses the id and starts its counts afresh. A run dials its numbers
in order, `simultaneous` at once, each call taking `step` seconds; a number
that fails is dialled again until it has had `attempts` calls. How each call
ends is set per number (`set_outcome()`; default: answered, `ok`/`talk`), and
read when the call ends, so it can be changed while the number rings.

- `task_pause` lets the calls under way end, then dials no more numbers until
  `task_resume` (a task paused during its last calls stays paused, and
  finishes when resumed); `task_stop` breaks off the calls under way (`fail`,
  `break`) and leaves the other numbers untried (no `result`).
- Starting a task that runs or is paused is warned `already_running`; pausing
  a paused one `already_suspended`; resuming one that is not paused
  `not_suspended`; pausing or stopping one that is not under way
  `not_running`. An unknown name or id is the error `not_found`.

Choices of the emulator where the vendor says nothing:

- A request without `Content-Type: text/plain` (`; charset=...` allowed) is
  refused with HTTP 415 and a JSON error (`result_code`
  `unsupported_media_type`). The vendor only shows text/plain; the strictness
  is here to catch a client that sends a JSON content type, which the real
  PBX may not take. A GET without any content type is refused too.
- A request it cannot read (body not a JSON object, no name, a bad list, an
  id that is not a number, an unknown command) is answered HTTP 400 with
  `result_code` `bad_request`. The body is read as UTF-8.

A control API on the same port, under `/_emulator/` (JSON bodies; a bad one
is answered 422 with `{"detail"}`):

- `POST numbers`: `{"number", "outcome"}` sets how calls to a number end;
  `outcome` is one of `OUTCOMES` or a list of them, one per attempt, the last
  repeating; `ringing` holds a call ringing until the outcome is changed;
- `POST tasks`: `{"name", "numbers", "simultaneous"?, "attempts"?}` defines a
  task (or redefines one of that name, for its next run); answers the task
  with its id;
- `DELETE tasks/{id}`: forgets a task, as a PBX that restarted (or whose
  task was deleted in its web interface) does: its run stops, and every
  request about its id is answered `not_found`; 404 when no task has the id;
- `GET state`: the tasks (their definition, `state`, the vendor's `counts`
  and `results`), the outcomes set, and the counts of requests (`stats`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
import itertools
import json
from typing import Any

from aiohttp import hdrs, web

from .errors import json_error

FIRST_TASK_ID = 500
"""The id of the first task defined (the vendor's example has 506)."""
DEFAULT_STEP = 0.05
"""Seconds one call takes by default: short, for tests."""
DEFAULT_TASKS: Mapping[str, Sequence[str]] = {
    "Тревога": ("1002", "1003"),
    "test": ("1002",),
}
"""The tasks an emulator has unless it is given others."""

OK, FAIL, DIALING = "ok", "fail", "dialing"
NONE, RUN, FINISH, PAUSE, STOP = "none", "run", "finish", "pause", "stop"
CONTROL_PREFIX = "/_emulator"
API_PREFIX = "/auto_call/"

OUTCOMES: Mapping[str, tuple[str, str]] = {
    "talk": (OK, "talk"),
    "talk_ok": (OK, "talk_ok"),
    "talk_unsuccess": (FAIL, "talk_unsuccess"),
    "busy": (FAIL, "busy"),
    "timeout": (FAIL, "timeout"),
    "no_answer": (FAIL, "timeout"),
    "unavailable": (FAIL, "unavailable"),
    "no_route": (FAIL, "no_route"),
    "line_busy": (FAIL, "line_busy"),
    "line_fail": (FAIL, "line_fail"),
    "error": (FAIL, "error"),
    "break": (FAIL, "break"),
    "result#1": (OK, "result#1"),
    "result#2": (OK, "result#2"),
    "result#3": (OK, "result#3"),
}
"""How a call can end -> the vendor's (result, result_code) for it.

`no_answer` is the vendor's `timeout` (nobody picked up in time); the
`result#N` a scenario sets count as answered."""
DEFAULT_OUTCOME = "talk"
RINGING = "ringing"
"""Not an end: the call rings on until another outcome is set for the number
(for tests and demos that need a number held while they look)."""

PAUSED = "Выполнение задания приостановлено"
RESUMED = "Выполнение задания возобновлено"
STOPPED = "Выполнение задания остановлено"
ALREADY_SUSPENDED = "Выполнение задания уже приостановлено"
NOT_SUSPENDED = "Выполнение задания не приостановлено"
NOT_RUNNING = "Задание не выполняется"

COMMANDS = ("task_pause", "task_resume", "task_stop")
MAX_ID_DIGITS = 19
"""Longer ids are refused as unreadable (no task has one)."""


@dataclass
class AutoDialStats:
    """What the emulated API saw; tests read it."""

    requests: int = 0
    """Requests to `/auto_call/...`, refused ones included."""
    bad_content_type: int = 0
    """Requests refused with 415 for their content type."""
    bad_requests: int = 0
    """Requests refused with 400 as unreadable."""
    starts: int = 0
    """Tasks started."""
    commands: int = 0
    """Commands carried out (warnings not counted)."""

    def as_dict(self) -> dict[str, int]:
        """Return the figures as a dict."""
        return dict(self.__dict__)


@dataclass
class _Number:
    """One number of a run, as far as it got."""

    number: str
    result: str | None = None
    result_code: str | None = None
    attempts: int = 0
    done: bool = False

    def as_dict(self) -> dict[str, str]:
        """Return the vendor's entry: `result` and its code only once tried."""
        entry = {"number": self.number}
        if self.result is not None:
            entry["result"] = self.result
        if self.result_code is not None:
            entry["result_code"] = self.result_code
        return entry


@dataclass(eq=False)
class _Task:
    """A task defined on the PBX, with its last (or current) run."""

    id: int
    name: str
    numbers: list[str]
    simultaneous: int = 1
    attempts: int = 1
    state: str = NONE
    run: list[_Number] = field(default_factory=list)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)
    job: asyncio.Task[None] | None = None

    def entries(self) -> list[_Number]:
        """Return the numbers of the run, or of the task when it never ran."""
        if self.state == NONE:
            return [_Number(number) for number in self.numbers]
        return self.run

    def counts(self) -> dict[str, int]:
        """Return the vendor's counts, in its order."""
        entries = self.entries()
        return {
            "total": len(entries),
            "done": sum(entry.done for entry in entries),
            "success": sum(entry.result == OK for entry in entries),
            "tried": sum(entry.attempts > 0 for entry in entries),
            "attempts": sum(entry.attempts for entry in entries),
        }


class BadRequestError(ValueError):
    """A request the emulated API cannot read (answered 400)."""


def _answer(body: Mapping[str, Any], status: int = 200) -> web.Response:
    """Send an answer as the vendor does: JSON text as `text/plain`."""
    return web.Response(
        text=json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="text/plain",
        charset="utf-8",
    )


def _ok(text: str | None = None, /, **fields: Any) -> dict[str, Any]:
    """Return an `ok` answer."""
    return {"result": "ok", **({"result_txt": text} if text else {}), **fields}


def _warning(text: str, code: str) -> dict[str, Any]:
    """Return a `warning` answer."""
    return {"result": "warning", "result_txt": text, "result_code": code}


def _error(text: str, code: str) -> dict[str, Any]:
    """Return an `error` answer."""
    return {"result": "error", "result_txt": text, "result_code": code}


def _not_found(task_id: int) -> dict[str, Any]:
    """Return the answer about an id no task has."""
    return _error(f"задание {task_id} не найдено", "not_found")


def _positive(value: Any, name: str) -> int:
    """Return a positive integer option; raise ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _numbers(value: Any, name: str) -> list[str]:
    """Return a non-empty list of non-empty texts; raise ValueError naming it."""
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{name} must be a non-empty list of numbers")
    if not all(isinstance(number, str) and number.strip() for number in value):
        raise ValueError(f"every entry of {name} must be non-empty text")
    return list(value)


def _outcomes(outcome: str | Sequence[str]) -> list[str]:
    """Return the outcomes of a number's attempts; raise ValueError if bad."""
    given = [outcome] if isinstance(outcome, str) else list(outcome)
    if not given:
        raise ValueError("give at least one outcome")
    for item in given:
        if item not in OUTCOMES and item != RINGING:
            raise ValueError(
                f"unknown outcome {item!r}; outcomes: {', '.join(OUTCOMES)}, {RINGING}"
            )
    return given


def _query_id(request: web.Request) -> int:
    """Return the `id` of the query; raise BadRequestError if it is not one."""
    text = request.query.get("id", "")
    if not (text.isascii() and text.isdecimal() and len(text) <= MAX_ID_DIGITS):
        raise BadRequestError(f"неверный запрос: id должен быть числом, а не {text!r}")
    return int(text)


class AutoDialEmulator:
    """An in-process auto-dial API of one PBX; `start()` serves it on a port."""

    def __init__(
        self,
        *,
        step: float = DEFAULT_STEP,
        tasks: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Configure the emulator.

        `step` is the seconds one call takes; `tasks` maps task names to
        their numbers (default: `DEFAULT_TASKS`).
        """
        if not step >= 0:
            raise ValueError(f"step must be 0 or more seconds, got {step!r}")
        self.step = step
        self.stats = AutoDialStats()
        self._tasks: dict[int, _Task] = {}
        self._ids = itertools.count(FIRST_TASK_ID)
        self._outcomes: dict[str, list[str]] = {}
        self._outcomes_changed = asyncio.Event()
        self._jobs: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""
        """The base URL once `start()` has run."""
        for name, numbers in (DEFAULT_TASKS if tasks is None else tasks).items():
            self.add_task(name, list(numbers))
        self.app = self._build_app()

    # --- serving ----------------------------------------------------------

    def _build_app(self) -> web.Application:
        """Build the aiohttp application with the API and control routes."""
        app = web.Application(middlewares=[self._text_plain_only])
        app.router.add_post(f"{API_PREFIX}start", self._handle_start)
        app.router.add_get(f"{API_PREFIX}start", self._handle_command)
        app.router.add_get(f"{API_PREFIX}status", self._handle_status)
        app.router.add_get(f"{API_PREFIX}result", self._handle_result)
        app.router.add_post(f"{CONTROL_PREFIX}/numbers", self._control_numbers)
        app.router.add_post(f"{CONTROL_PREFIX}/tasks", self._control_tasks)
        app.router.add_delete(
            f"{CONTROL_PREFIX}/tasks/{{task_id:[0-9]+}}", self._control_forget
        )
        app.router.add_get(f"{CONTROL_PREFIX}/state", self._control_state)
        return app

    @property
    def port(self) -> int:
        """Return the port served on (0 before `start()`)."""
        if self._runner is None:
            return 0
        port: int = self._runner.addresses[0][1]
        return port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); return the base URL."""
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.url = f"http://{host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        """Stop serving and every run (the runs' states stay as they were)."""
        for job in list(self._jobs):
            job.cancel()
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a background job that `stop()` cancels."""
        job: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job

    # --- tasks and outcomes ------------------------------------------------

    def add_task(
        self,
        name: str,
        numbers: list[str],
        *,
        simultaneous: int = 1,
        attempts: int = 1,
    ) -> int:
        """Define a task; return its id.

        A task of that name is redefined (same id); a run under way keeps its
        numbers, the next run takes the new ones. `simultaneous` numbers are
        dialled at once; a failing number gets up to `attempts` calls.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError("the task name must be non-empty text")
        numbers = _numbers(numbers, "numbers")
        simultaneous = _positive(simultaneous, "simultaneous")
        attempts = _positive(attempts, "attempts")
        task = self._by_name(name)
        if task is None:
            task = _Task(next(self._ids), name, numbers)
            self._tasks[task.id] = task
        task.numbers, task.simultaneous, task.attempts = numbers, simultaneous, attempts
        return task.id

    def forget_task(self, task_id: int) -> None:
        """Forget a task and stop its run; KeyError when no task has the id.

        As a PBX that restarted: from now on its id is `not_found`.
        """
        task = self._tasks.pop(task_id)
        if task.job is not None:
            task.job.cancel()

    def task_id(self, name: str) -> int:
        """Return the id of the task named `name`; KeyError when none is."""
        task = self._by_name(name)
        if task is None:
            raise KeyError(name)
        return task.id

    def _by_name(self, name: str) -> _Task | None:
        """Return the task named exactly `name`."""
        return next((t for t in self._tasks.values() if t.name == name), None)

    def set_outcome(self, number: str, outcome: str | Sequence[str]) -> None:
        """Set how calls to `number` end, from the next call ending on.

        `outcome` is one of `OUTCOMES` or `RINGING`, or a list of them: the
        first for the first attempt, and so on, the last for every attempt
        after. A call that rings on ends as soon as its outcome is changed.
        """
        if not isinstance(number, str) or not number.strip():
            raise ValueError("number must be non-empty text")
        self._outcomes[number] = _outcomes(outcome)
        changed, self._outcomes_changed = self._outcomes_changed, asyncio.Event()
        changed.set()  # wakes the calls that ring on

    def outcome_of(self, number: str, attempt: int) -> str:
        """Return how the call `attempt` (from 0) to `number` ends."""
        outcomes = self._outcomes.get(number, [DEFAULT_OUTCOME])
        return outcomes[min(attempt, len(outcomes) - 1)]

    # --- the vendor's operations, as answers --------------------------------

    def start_task(self, name: str, numbers: list[str] | None = None) -> dict[str, Any]:
        """Start a task by name, with its own numbers or `numbers`; answer it."""
        task = self._by_name(name)
        if task is None:
            return _error(f"задание {name} не найдено", "not_found")
        if task.state in (RUN, PAUSE):
            return _warning(f"Задание {name} уже выполняется", "already_running")
        task.run = [_Number(number) for number in (numbers or task.numbers)]
        task.state = RUN
        task.resumed.set()
        task.job = self._spawn(self._run(task))
        self.stats.starts += 1
        return _ok(f"Задание {name} запущено", id=task.id)

    def command(self, task_id: int, cmd: str) -> dict[str, Any]:
        """Pause, resume or stop a task; answer it."""
        if cmd not in COMMANDS:
            raise BadRequestError(f"неверный запрос: неизвестная команда {cmd!r}")
        task = self._tasks.get(task_id)
        if task is None:
            return _not_found(task_id)
        answer = {
            "task_pause": self._pause,
            "task_resume": self._resume,
            "task_stop": self._stop,
        }[cmd](task)
        if answer["result"] == "ok":
            self.stats.commands += 1
        return answer

    def _pause(self, task: _Task) -> dict[str, Any]:
        """Dial no more numbers until resumed."""
        if task.state == PAUSE:
            return _warning(ALREADY_SUSPENDED, "already_suspended")
        if task.state != RUN:
            return _warning(NOT_RUNNING, "not_running")
        task.state = PAUSE
        task.resumed.clear()
        return _ok(PAUSED)

    def _resume(self, task: _Task) -> dict[str, Any]:
        """Dial on after a pause."""
        if task.state != PAUSE:
            return _warning(NOT_SUSPENDED, "not_suspended")
        task.state = RUN
        task.resumed.set()
        return _ok(RESUMED)

    def _stop(self, task: _Task) -> dict[str, Any]:
        """Break off the calls under way; leave the other numbers untried."""
        if task.state not in (RUN, PAUSE):
            return _warning(NOT_RUNNING, "not_running")
        task.state = STOP
        for entry in task.run:
            if entry.result == DIALING:
                entry.result, entry.result_code = OUTCOMES["break"]
                entry.done = True
        assert task.job is not None  # noqa: S101 (a task under way has its job)
        task.job.cancel()
        return _ok(STOPPED)

    def status(self, task_id: int) -> dict[str, Any]:
        """Answer the state and counts of a task."""
        task = self._tasks.get(task_id)
        if task is None:
            return _not_found(task_id)
        return _ok(state=task.state, **task.counts())

    def results(self, task_id: int) -> dict[str, Any]:
        """Answer each number's result."""
        task = self._tasks.get(task_id)
        if task is None:
            return _not_found(task_id)
        return _ok(data=[entry.as_dict() for entry in task.entries()])

    # --- runs ---------------------------------------------------------------

    async def _run(self, task: _Task) -> None:
        """Dial the run's numbers, `simultaneous` at once, then finish."""
        pending = deque(task.run)
        lines = min(task.simultaneous, len(pending))
        await asyncio.gather(*(self._line(task, pending) for _ in range(lines)))
        task.state = FINISH
        task.job = None

    async def _line(self, task: _Task, pending: deque[_Number]) -> None:
        """Dial one number after another while the task is not paused."""
        while True:
            await task.resumed.wait()
            if not pending:
                return
            await self._dial(task, pending.popleft())

    async def _dial(self, task: _Task, entry: _Number) -> None:
        """Call a number until it answers or has had its attempts."""
        for attempt in range(task.attempts):
            await task.resumed.wait()
            entry.result, entry.result_code = DIALING, None
            entry.attempts += 1
            await asyncio.sleep(self.step)
            outcome = await self._end_of_call(entry.number, attempt)
            entry.result, entry.result_code = OUTCOMES[outcome]
            if entry.result == OK:
                break
        entry.done = True

    async def _end_of_call(self, number: str, attempt: int) -> str:
        """Return how a call ends, once its outcome is not `ringing`."""
        while (outcome := self.outcome_of(number, attempt)) == RINGING:
            await self._outcomes_changed.wait()
        return outcome

    # --- HTTP: the vendor's API ------------------------------------------------

    @web.middleware
    async def _text_plain_only(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Count API requests; refuse one without `Content-Type: text/plain`."""
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        self.stats.requests += 1
        given = request.headers.get(hdrs.CONTENT_TYPE)
        media = given.partition(";")[0].strip().lower() if given else ""
        if media != "text/plain":
            self.stats.bad_content_type += 1
            return _answer(
                _error(
                    "Content-Type must be text/plain (the vendor's quirk), "
                    f"got {given or 'none'}",
                    "unsupported_media_type",
                ),
                415,
            )
        try:
            return await handler(request)
        except BadRequestError as err:
            self.stats.bad_requests += 1
            return _answer(_error(str(err), "bad_request"), 400)

    async def _handle_start(self, request: web.Request) -> web.Response:
        """Serve `POST /auto_call/start`: start a task by name."""
        try:
            body = json.loads((await request.read()).decode())
        except (ValueError, RecursionError):
            raise BadRequestError("неверный запрос: тело не JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise BadRequestError("неверный запрос: нужно имя задания (name)")
        numbers = body.get("list")
        if numbers is not None:
            try:
                numbers = _numbers(numbers, "list")
            except ValueError as err:
                raise BadRequestError(f"неверный запрос: {err}") from None
        return _answer(self.start_task(body["name"], numbers))

    async def _handle_command(self, request: web.Request) -> web.Response:
        """Serve `GET /auto_call/start?id=&cmd=`: pause, resume or stop."""
        task_id = _query_id(request)
        return _answer(self.command(task_id, request.query.get("cmd", "")))

    async def _handle_status(self, request: web.Request) -> web.Response:
        """Serve `GET /auto_call/status?id=`."""
        return _answer(self.status(_query_id(request)))

    async def _handle_result(self, request: web.Request) -> web.Response:
        """Serve `GET /auto_call/result?id=`."""
        return _answer(self.results(_query_id(request)))

    # --- HTTP: the control API ------------------------------------------------

    async def _control_numbers(self, request: web.Request) -> web.Response:
        """Set how calls to a number end."""
        body = await _control_body(request)
        number: Any = body.get("number")
        outcome: Any = body.get("outcome")
        if isinstance(outcome, list) and all(isinstance(item, str) for item in outcome):
            pass
        elif not isinstance(outcome, str):
            return json_error(422, "outcome must be an outcome or a list of them")
        try:
            self.set_outcome(number, outcome)
        except ValueError as err:
            return json_error(422, str(err))
        return web.json_response({"number": number, "outcomes": self._outcomes[number]})

    async def _control_tasks(self, request: web.Request) -> web.Response:
        """Define a task, or redefine one of that name."""
        body = await _control_body(request)
        name: Any = body.get("name")
        numbers: Any = body.get("numbers")
        try:
            task_id = self.add_task(
                name,
                numbers,
                simultaneous=body.get("simultaneous", 1),
                attempts=body.get("attempts", 1),
            )
        except ValueError as err:
            return json_error(422, str(err))
        return web.json_response(self._task_state(self._tasks[task_id]))

    async def _control_forget(self, request: web.Request) -> web.Response:
        """Forget a task, as a PBX that restarted."""
        task_id = int(request.match_info["task_id"])
        try:
            self.forget_task(task_id)
        except KeyError:
            return json_error(404, f"no task has the id {task_id}")
        return web.json_response({"forgotten": task_id})

    async def _control_state(self, _request: web.Request) -> web.Response:
        """Report the tasks, the outcomes set and the counts."""
        return web.json_response(self.state())

    # --- state ------------------------------------------------------------

    def _task_state(self, task: _Task) -> dict[str, Any]:
        """Return one task as the control API shows it."""
        return {
            "id": task.id,
            "name": task.name,
            "numbers": task.numbers,
            "simultaneous": task.simultaneous,
            "attempts": task.attempts,
            "state": task.state,
            "counts": task.counts(),
            "results": [entry.as_dict() for entry in task.entries()],
        }

    def state(self) -> dict[str, Any]:
        """Return everything a test may want to read, as JSON."""
        return {
            "url": self.url,
            "step": self.step,
            "tasks": [self._task_state(task) for task in self._tasks.values()],
            "outcomes": dict(self._outcomes),
            "stats": self.stats.as_dict(),
        }


async def _control_body(request: web.Request) -> dict[str, Any]:
    """Return the JSON object body of a control request; raise 422 if not one."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPUnprocessableEntity(
            text=json.dumps({"detail": "body must be a JSON object"}),
            content_type="application/json",
        )
    return body
