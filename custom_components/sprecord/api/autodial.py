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

Warnings and errors become the exceptions of `autodial_models.py`, by their
code (`autodial_answers.py`). An answer in the vendor's shape is read as such
whatever its HTTP status (the vendor does not say which status goes with an
error). Anything else that is not a good answer (no connection, a timeout, an
HTTP error status, a body that is not a JSON object or has no `result`) is
`AutoDialUnreachable`: the address does not answer as this API.

Everything read from an answer is made storable (see `storable._storable()`):
text is valid Unicode, a lone UTF-16 surrogate having become U+FFFD.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
import ipaddress
import json
from typing import Any

import aiohttp
from yarl import URL

from .autodial_answers import MAX_ID, _results, _status, _task_id, _vendor_error
from .autodial_models import (
    AutoDialCommand,
    AutoDialError,
    AutoDialUnreachable,
    NumberResult,
    TaskStatus,
)
from .charset import _text
from .exceptions import ProtocolError
from .storable import _storable

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
