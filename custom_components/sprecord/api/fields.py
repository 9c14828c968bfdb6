"""Reading one field of an event's payload: text, numbers, lines, statuses, dates.

The vendor's own examples are loose (`call_id` is `8` in one event and `"8"`
in the next), so what is plainly meant is accepted and normalised: ids become
strings, numbers become ints, the SMS date becomes a datetime when it can be
read. An optional field that is missing or unreadable reads as None; a
required one raises `ProtocolError` naming the field.

Text fields are also made safe to show and bounded (`clean.py`): numbers,
sender ids, extensions, call ids and statuses lose every control and format
character (bidi controls included) and are cut at 64 characters; an SMS's
text keeps its line breaks and tabs and is cut at 10,000. A line (trunk)
names a device and its entities: one that is not printable text of at most
64 characters is a `ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
import math
from typing import Any

from .clean import (
    MAX_DATE_TEXT,
    MAX_LINE_NAME,
    MAX_NUMBER,
    MAX_STATUS,
    clean_field,
    is_name,
)
from .exceptions import ProtocolError
from .models import RecordCallStatus
from .storable import INT64_MIN, UINT64_MAX


def _as_text(value: Any) -> str | None:
    """Read text: a string, or an integer (as JSON numbers come) as its digits."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _from_timestamp(value: float) -> datetime | None:
    """Read Unix seconds (or milliseconds, as some servers send) as UTC."""
    try:
        value = float(value)  # an integer past the float range cannot be a date
    except OverflowError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    if value > 1e11:  # after the year 5138 in seconds: must be milliseconds
        value /= 1000
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _extra(raw: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Return the payload fields outside `known`, as they came."""
    if raw.keys() <= known:
        return {}
    return {k: v for k, v in raw.items() if k not in known}


def _identifier(event_type: str, raw: Mapping[str, Any], key: str) -> str:
    """Read the id of an event: required, text or an integer, not blank."""
    text = _required_text(event_type, raw, key)
    if not (len(text) <= MAX_NUMBER and text.isprintable()):
        text = clean_field(text)
    if not text or text.isspace():
        raise ProtocolError(f"{event_type}: payload.{key} is empty")
    return text


def _required_text(event_type: str, raw: Mapping[str, Any], key: str) -> str:
    """Read a required string field; integers are turned into text."""
    value = raw.get(key)
    text = value if type(value) is str else _as_text(value)
    if text is None:
        if value is None and key not in raw:
            raise ProtocolError(f"{event_type}: payload.{key} is missing")
        raise ProtocolError(
            f"{event_type}: payload.{key} must be a string, got {type(value).__name__}"
        )
    return text


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    """Read an optional string field; None when missing or unreadable."""
    value = raw.get(key)
    return value if type(value) is str else _as_text(value)


def _number(raw: Mapping[str, Any], key: str) -> str | None:
    """Read a number, sender id or extension: one clean, bounded line."""
    text = _text(raw, key)
    if text is None or (len(text) <= MAX_NUMBER and text.isprintable()):
        return text  # the common case, clean already: no call
    return clean_field(text)


def _line(event_type: str, raw: Mapping[str, Any], key: str) -> str | None:
    """Read a line (trunk) name; refuse one that cannot name a line.

    Missing, blank or not text: None. Controls, format characters or more
    than `MAX_LINE_NAME` characters: a `ProtocolError`, as a line's name
    becomes a device's and its entities' names and ids.
    """
    text = _text(raw, key)
    if not text or text.isspace():
        return None
    if not is_name(text, MAX_LINE_NAME):
        raise ProtocolError(f"{event_type}: payload.{key} is not a line name")
    return text


def _optional_int(raw: Mapping[str, Any], key: str) -> int | None:
    """Read an optional integer; digit strings are accepted, junk is None."""
    value = raw.get(key)
    if type(value) is not int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                return None
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
    return value if INT64_MIN <= value <= UINT64_MAX else None


_STATUSES: dict[str, RecordCallStatus] = {s.value: s for s in RecordCallStatus}


def _status(raw: Mapping[str, Any], key: str) -> RecordCallStatus:
    """Read a call status: unknown texts are kept, none is `not_def`."""
    text = _text(raw, key)
    if text is None:
        return RecordCallStatus.NOT_DEF
    text = clean_field(text, MAX_STATUS)
    if (status := _STATUSES.get(text)) is not None:
        return status
    if not text.strip():
        return RecordCallStatus.NOT_DEF
    return RecordCallStatus(text)


def _date(raw: Mapping[str, Any], key: str) -> datetime | str | None:
    """Read a date: ISO 8601, Unix seconds, or the raw text if neither."""
    value = raw.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_timestamp(value) or str(value)
    if not isinstance(value, str):
        return None  # not given, or nothing a date can be read from
    value = clean_field(value, MAX_DATE_TEXT)
    if not value.strip():
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return value
    return _from_timestamp(number) or value
