"""Client for the SpRecord MiniPBX's local auto-dial API.

The PBX itself serves this API on the local network, at
`http://<PBX address>:9000`, without authentication; the cloud has no part in
it. A *task* (its message, lines, attempts and numbers) is set up in the
PBX's web UI; the API starts it by name, optionally with another list of
numbers, then watches and controls it by the id the start answered.

The vendor's quirks, followed here:

- every request says `Content-Type: text/plain`, even with JSON text in the
  body (the vendor shows no other content type);
- every answer is taken as JSON text whatever content type it comes with;
- an answer says `result` `ok`, `warning` or `error`, with a `result_code`
  telling which warning or error, and a Russian `result_txt`.

Warnings and errors become the exceptions below, by their code. An answer in
the vendor's shape is read as such whatever its HTTP status (the vendor does
not say which status goes with an error). Anything else that is not a good
answer (no connection, a timeout, an HTTP error status, a body that is not a
JSON object or has no `result`) is `AutoDialUnreachable`: the address does not
answer as this API.

Everything read from an answer is made storable (see `models._storable()`):
text is valid Unicode, a lone UTF-16 surrogate having become U+FFFD.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
import ipaddress
import json
from typing import Any

import aiohttp
from yarl import URL

from .exceptions import ProtocolError, SpRecordError
from .models import _storable

DEFAULT_PORT = 9000
"""The port the vendor serves the auto-dial API on."""
DEFAULT_TIMEOUT = 10.0
"""Seconds one request may take, answer read included."""
START_PATH = "/auto_call/start"
STATUS_PATH = "/auto_call/status"
RESULT_PATH = "/auto_call/result"
CONTENT_TYPE = "text/plain"
"""The content type the vendor sends with every request, JSON body or not."""
MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""An answer longer than this is refused (a task's results are far shorter)."""
MAX_ID = 2**63 - 1
"""The greatest task id taken (what a signed 64-bit column holds)."""
MAX_DIGITS = 20
"""Digits read as a number at most (a 64-bit integer has up to 20)."""
MAX_VENDOR_TEXT = 200
"""Characters of the PBX's `result_txt` kept for a message at most."""

NOT_CHARSETS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "undefined", "unicode-escape"}
)
"""Python text codecs that are not a character set: host names, escapes, and
one that refuses everything."""
_CHARSET_SAMPLE = bytes(range(256))

CODE_NOT_FOUND = "not_found"
CODE_ALREADY_RUNNING = "already_running"
WRONG_STATE_CODES = frozenset({"not_running", "not_suspended", "already_suspended"})
"""Warnings of a command given to a task in a state that does not take it."""


class AutoDialError(SpRecordError):
    """Base of every auto-dial error; also any warning or error not known here.

    `code` is the vendor's `result_code` when the PBX gave one; the message is
    the PBX's `result_txt` when it gave one. Both are made one bounded line
    of printable text (`vendor_text()`). `status` is the HTTP status of
    an answer that came with an error status.
    """

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None
    ) -> None:
        """Keep the vendor's code and the HTTP status beside the message."""
        super().__init__(message, status=status)
        self.code = code


class AutoDialUnreachable(AutoDialError):  # noqa: N818 (the API's names)
    """The address does not answer as the auto-dial API.

    No connection (refused, reset, unknown host), no answer in time, an HTTP
    error status, or an answer that is not a JSON object in the vendor's shape.
    """


class AutoDialNotFound(AutoDialError):  # noqa: N818 (the API's names)
    """The PBX has no task of that name, or no task of that id (`not_found`)."""


class AutoDialAlreadyRunning(AutoDialError):  # noqa: N818 (the API's names)
    """The task is already running (warning `already_running`)."""


class AutoDialWrongState(AutoDialError):  # noqa: N818 (the API's names)
    """The task's state does not take the command.

    `code` tells which: `not_running`, `not_suspended` (resumed while not
    paused) or `already_suspended`.
    """


class TaskState(StrEnum):
    """The state of a task. A state the vendor adds later is kept as it is."""

    NONE = "none"
    """Never ran."""
    RUN = "run"
    FINISH = "finish"
    PAUSE = "pause"
    STOP = "stop"
    """Stopped before the end (`task_stop`)."""

    @classmethod
    def _missing_(cls, value: object) -> TaskState | None:
        """Keep an unknown state as a pseudo-member that holds its text."""
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = "UNKNOWN"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Tell whether the state is one the vendor documents."""
        return self._name_ != "UNKNOWN"


class AutoDialCommand(StrEnum):
    """What `command()` can ask of a started task (the vendor's `cmd`)."""

    PAUSE = "task_pause"
    RESUME = "task_resume"
    STOP = "task_stop"


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """How far a task is: its state and the vendor's counts.

    `total` numbers in the task, `done` numbers finished, `success`
    successful attempts, `tried` numbers attempted, `attempts` all dial
    attempts.
    """

    state: TaskState
    total: int
    done: int
    success: int
    tried: int
    attempts: int

    def as_dict(self) -> dict[str, Any]:
        """Return the status, JSON-serialisable."""
        return {
            "state": self.state.value,
            "total": self.total,
            "done": self.done,
            "success": self.success,
            "tried": self.tried,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class NumberResult:
    """How dialling one number of a task went.

    `result` is `ok`, `fail` or `dialing`, None when the number has not been
    tried yet; `result_code` says how it ended (`talk`, `busy`, `timeout` ...).
    """

    number: str
    result: str | None
    result_code: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the result, JSON-serialisable."""
        return {
            "number": self.number,
            "result": self.result,
            "result_code": self.result_code,
        }


_COUNTS = ("total", "done", "success", "tried", "attempts")


class AutoDialClient:
    """Talks to the auto-dial API of one PBX through an injected aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Prepare a client; nothing is sent until a method is called.

        `host` is a name or an IP address (an IPv6 literal with or without
        brackets); the port is given apart: `host:port` is refused. Raises
        ValueError for a bad host, port or timeout.
        """
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port must be 1..65535, got {port!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be more than 0 seconds, got {timeout!r}")
        self._session = session
        self._url = URL.build(scheme="http", host=_host(host), port=port)
        self._where = self._url.host_port_subcomponent or self.url
        """Where the API is, as errors name it: `host:port`."""
        self.timeout = timeout

    @property
    def url(self) -> str:
        """Return the API's base URL, `http://host:port`."""
        return str(self._url)

    async def start(self, task: str, numbers: Sequence[str] | None = None) -> int:
        """Start the task named `task`; return its id.

        With `numbers`, the task dials them instead of its own list. Raises
        `AutoDialNotFound` (no such task), `AutoDialAlreadyRunning`, or another
        `AutoDialError`; ValueError for an empty name or list.
        """
        if not isinstance(task, str) or not task.strip():
            raise ValueError("the task name must be non-empty text")
        body: dict[str, Any] = {"name": task}
        if numbers is not None:
            body["list"] = _number_list(numbers)
        answer = await self._ask("POST", START_PATH, body=body)
        return _task_id(answer.get("id"))

    async def status(self, task_id: int) -> TaskStatus:
        """Return the state and counts of a task."""
        answer = await self._ask("GET", STATUS_PATH, {"id": _id_param(task_id)})
        return _status(answer)

    async def results(self, task_id: int) -> list[NumberResult]:
        """Return how each number of a task went, in the PBX's order."""
        answer = await self._ask("GET", RESULT_PATH, {"id": _id_param(task_id)})
        return _results(answer)

    async def command(self, task_id: int, command: AutoDialCommand) -> None:
        """Pause, resume or stop a task.

        Raises `AutoDialWrongState` when the task's state does not take the
        command, `AutoDialNotFound` for an unknown id.
        """
        cmd = AutoDialCommand(command).value
        await self._ask("GET", START_PATH, {"id": _id_param(task_id), "cmd": cmd})

    async def check(self) -> None:
        """Prove that the address answers as the auto-dial API.

        Asks the status of task 0: an answer in the vendor's shape proves it
        (`not_found` is what the vendor's ids, which start far above 0, give).
        Raises `AutoDialUnreachable` otherwise.
        """
        try:
            await self.status(0)
        except AutoDialUnreachable:
            raise
        except AutoDialError:
            return

    # --- the exchange ------------------------------------------------------

    async def _ask(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        *,
        body: Any = None,
    ) -> dict[str, Any]:
        """Send one request; return the answer when it says `ok`.

        Raises the exception of the answer's warning or error, and
        `AutoDialUnreachable` for anything that is not the API answering.
        """
        data = None
        if body is not None:  # JSON text, made valid Unicode, as UTF-8
            data = json.dumps(_storable(body), ensure_ascii=False).encode()
        status, text = await self._exchange(method, path, query, data)
        answer = self._decode(text, status)
        result = answer.get("result")
        if result in ("warning", "error"):
            raise _vendor_error(answer, status)
        if status >= 400:
            raise AutoDialUnreachable(
                f"The auto-dial API at {self._where} answered HTTP {status}",
                status=status,
            )
        if result != "ok":
            raise AutoDialUnreachable(
                f"{self._where} does not answer as the auto-dial API "
                "(no result ok, warning or error)"
            )
        return answer

    async def _exchange(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        data: bytes | None,
    ) -> tuple[int, str]:
        """Send a request; return the HTTP status and the answer's text."""
        url = self._url.with_path(path)
        if query:
            url = url.with_query(query)
        try:
            async with asyncio.timeout(self.timeout):
                async with self._session.request(
                    method,
                    url,
                    data=data,
                    headers={"Content-Type": CONTENT_TYPE},
                    allow_redirects=False,
                ) as response:
                    raw = await _read_bounded(response)
                    return response.status, _text(raw, response.charset)
        except TimeoutError as err:
            raise AutoDialUnreachable(
                f"The auto-dial API at {self._where} did not answer "
                f"within {self.timeout:g} s"
            ) from err
        except aiohttp.ClientError as err:
            raise AutoDialUnreachable(
                f"Cannot reach the auto-dial API at {self._where}: "
                f"{err.__class__.__name__}"
            ) from err

    def _decode(self, text: str, status: int) -> dict[str, Any]:
        """Return the answer as a storable JSON object.

        Raises `AutoDialUnreachable` for text that is not a JSON object.
        """
        try:
            value = _storable(json.loads(text))
        except ValueError:
            problem = "answered text that is not JSON"
        except (RecursionError, ProtocolError):
            problem = "answered JSON nested too deeply"
        else:
            if isinstance(value, dict):
                return value
            problem = f"answered a JSON {_json_kind(value)}, not an object"
        if status >= 400:
            problem = f"answered HTTP {status}"
        raise AutoDialUnreachable(
            f"The auto-dial API at {self._where} {problem}",
            status=status if status >= 400 else None,
        )


def _json_kind(value: Any) -> str:
    """Name the kind of a JSON value that is not an object."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _host(host: str) -> str:
    """Return the host to build the URL of; refuse `host:port` and junk."""
    if not isinstance(host, str):
        raise TypeError(f"host must be text, got {type(host).__name__}")
    value = host.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if ":" in value:
        try:
            return str(ipaddress.IPv6Address(value))
        except ValueError:
            raise ValueError(
                f"host {host!r} is not a host name or an IP address "
                "(give the port apart, not as host:port)"
            ) from None
    if not value or any(c.isspace() or c in "/?#@[]" for c in value):
        raise ValueError(f"host {host!r} is not a host name or an IP address")
    return value


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    """Read the whole answer; raise `AutoDialUnreachable` past the bound."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise AutoDialUnreachable(
                f"The answer is longer than {MAX_ANSWER_BYTES} bytes",
                status=response.status,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def charset_codec(name: str) -> str | None:
    """Return the codec of a character set named by a file or an answer.

    None when Python has no codec of that name, or its codec is not a
    character set: not a text encoding (`hex`, `base64`, `rot13`, `zlib`),
    or one that cannot decode any bytes with replacement (`idna`,
    `undefined`) or is not meant for text at all (`punycode`, the escapes).
    """
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not info._is_text_encoding or info.name in NOT_CHARSETS:  # noqa: SLF001
        return None
    try:  # what a codec added later needs to be of use: decoding with U+FFFD
        _CHARSET_SAMPLE.decode(info.name, "replace")
    except (LookupError, UnicodeError, ValueError):
        return None
    return info.name


def _text(raw: bytes, charset: str | None) -> str:
    """Decode an answer by its charset (UTF-8 when none or not a charset)."""
    codec = (charset_codec(charset) if charset else None) or "utf-8"
    try:
        return raw.decode(codec, "replace")
    except (LookupError, UnicodeError, ValueError):
        return raw.decode("utf-8", "replace")


def vendor_text(text: str) -> str:
    """Return the PBX's text as a message may carry it: one line, bounded.

    Control and format characters (line breaks, bidi overrides) become
    spaces, runs of spaces one, and the text is cut at `MAX_VENDOR_TEXT`
    characters (`…` marks a cut).
    """
    cut = text[: MAX_VENDOR_TEXT * 4]  # bounds the work on a huge text
    shown = " ".join("".join(ch if ch.isprintable() else " " for ch in cut).split())
    if not shown:
        return ""
    if len(shown) > MAX_VENDOR_TEXT or len(cut) < len(text):
        shown = shown[: MAX_VENDOR_TEXT - 1].rstrip() + "…"
    return shown


def _vendor_error(answer: Mapping[str, Any], status: int) -> AutoDialError:
    """Return the exception of a warning or error answer, by its code."""
    code = answer.get("result_code")
    code = (vendor_text(code) or None) if isinstance(code, str) else None
    text = answer.get("result_txt")
    text = vendor_text(text) if isinstance(text, str) else ""
    message = text or f"The PBX answered {answer['result']} {code or 'without a code'}"
    kind: type[AutoDialError] = AutoDialError
    if code == CODE_NOT_FOUND:
        kind = AutoDialNotFound
    elif code == CODE_ALREADY_RUNNING:
        kind = AutoDialAlreadyRunning
    elif code in WRONG_STATE_CODES:
        kind = AutoDialWrongState
    return kind(message, code=code, status=status if status >= 400 else None)


def _id_param(task_id: int) -> str:
    """Return a task id as its query value; refuse what is not one."""
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise TypeError(f"task id must be an integer, got {type(task_id).__name__}")
    if not 0 <= task_id <= MAX_ID:
        raise ValueError(f"task id must be 0..{MAX_ID}, got {task_id}")
    return str(task_id)


def _number_list(numbers: Sequence[str]) -> list[str]:
    """Return the numbers to send; refuse a bare string or empty entries."""
    if isinstance(numbers, str | bytes):
        raise TypeError("numbers must be a list of numbers, not one string")
    listed = list(numbers)
    if not listed:
        raise ValueError("numbers must not be empty (None dials the task's own)")
    for number in listed:
        if not isinstance(number, str) or not number.strip():
            raise ValueError(f"every number must be non-empty text, got {number!r}")
    return listed


def _whole(value: Any) -> Any:
    """Return the integer that digits given as text mean; anything else as it is.

    An integer past 64 bits came as its digits (see `_storable()`): one that
    long is left as text.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdecimal() and len(text) <= MAX_DIGITS:
            return int(text)
    return value


def _task_id(value: Any) -> int:
    """Read the id of a started task: an integer, or its digits as text."""
    value = _whole(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AutoDialError(
            f"start: the answer's id is {type(value).__name__}, not an integer"
        )
    if not 0 <= value <= MAX_ID:
        raise AutoDialError(f"start: the answer's id {value} is out of range")
    return value


def _count(answer: Mapping[str, Any], key: str) -> int:
    """Read one count of a status: 0 when absent, else a whole number >= 0."""
    value = answer.get(key)
    if value is None:
        return 0
    value = _whole(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AutoDialError(
            f"status: {key} must be a whole number, got {vendor_text(repr(value))}"
        )
    return value


def _status(answer: Mapping[str, Any]) -> TaskStatus:
    """Read a status answer. A count the PBX leaves out is 0; the state is needed."""
    state = answer.get("state")
    if not isinstance(state, str) or not state.strip():
        raise AutoDialError("status: state is missing or not text")
    counts = {key: _count(answer, key) for key in _COUNTS}
    return TaskStatus(state=TaskState(state.strip()), **counts)


def _optional_text(value: Any) -> str | None:
    """Read optional text: None when absent, empty or not text."""
    return value if isinstance(value, str) and value else None


def _results(answer: Mapping[str, Any]) -> list[NumberResult]:
    """Read a result answer: `data`, one entry a number (absent: none)."""
    data = answer.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise AutoDialError(f"result: data must be a list, got {type(data).__name__}")
    results = []
    for index, entry in enumerate(data):
        number = entry.get("number") if isinstance(entry, dict) else None
        if isinstance(number, int) and not isinstance(number, bool):
            number = str(number)
        if not isinstance(number, str) or not number:
            raise AutoDialError(f"result: data[{index}].number is missing")
        results.append(
            NumberResult(
                number=number,
                result=_optional_text(entry.get("result")),
                result_code=_optional_text(entry.get("result_code")),
            )
        )
    return results
