"""Reading the auto-dial API's answers into its errors, statuses and results.

An answer says `result` `ok`, `warning` or `error`, with a `result_code`
telling which warning or error, and a Russian `result_txt`. Warnings and
errors become the exceptions of `autodial_models.py`, by their code; what the
PBX's text or code says is made one bounded line (`vendor_text()`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .autodial_models import (
    AutoDialAlreadyRunning,
    AutoDialError,
    AutoDialNotFound,
    AutoDialWrongState,
    NumberResult,
    TaskState,
    TaskStatus,
)

MAX_ID = 2**63 - 1
"""The greatest task id taken (what a signed 64-bit column holds)."""
MAX_DIGITS = 20
"""Digits read as a number at most (a 64-bit integer has up to 20)."""
MAX_VENDOR_TEXT = 200
"""Characters of the PBX's `result_txt` kept for a message at most."""
CODE_NOT_FOUND = "not_found"
CODE_ALREADY_RUNNING = "already_running"
WRONG_STATE_CODES = frozenset({"not_running", "not_suspended", "already_suspended"})
"""Warnings of a command given to a task in a state that does not take it."""
_COUNTS = ("total", "done", "success", "tried", "attempts")


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
