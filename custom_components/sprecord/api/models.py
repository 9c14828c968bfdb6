"""Typed SpRecord events and their normalisation from raw JSON.

The vendor's own examples are loose (`call_id` is `8` in one event and `"8"`
in the next), so `parse_event()` accepts what is plainly meant and normalises
it: ids become strings, numbers become ints, the SMS date becomes a datetime
when it can be read.

Events are taken leniently: only what identifies an event is required (the
`call_id` of a call event, the `text` of an SMS). Any other field may be
missing, null or unreadable: it is then `None` (a call's parties and line),
empty text (an SMS's sender and line) or `not_def` (a call's status). Payload
fields this library does not know are kept in `extra`, and `payload_dict()`
gives them back. What cannot be read at all raises `ProtocolError` naming the
field, so the caller can skip that one event and keep the stream.

Everything from the server is made storable once, here: text is made valid
Unicode (a lone UTF-16 surrogate, half an emoji, becomes U+FFFD), integers
past 64 bits become text, non-finite numbers become null, and nesting is
bounded. What leaves this module can be saved and serialised as it is.

Text fields are also made safe to show and bounded (`clean.py`): numbers,
sender ids, extensions, call ids and statuses lose every control and format
character (bidi controls included) and are cut at 64 characters; an SMS's
text keeps its line breaks and tabs and is cut at 10,000. What names things
Home Assistant keeps is refused when it is no such name: a PBX id must be
base64 characters (at most 128), a line (trunk) printable text (at most 64),
an event type printable text (at most 64); the event is then a
`ProtocolError`, so that no forged or broken event makes devices or entities
with made-up names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
import json
import json.scanner
import math
import re
from typing import Any, ClassVar, Self

from .clean import (
    MAX_DATE_TEXT,
    MAX_EVENT_TYPE,
    MAX_LINE_NAME,
    MAX_NUMBER,
    MAX_STATUS,
    clean_field,
    clean_message,
    is_name,
    is_pbx_id,
)
from .exceptions import ProtocolError


class EventType(StrEnum):
    """Event types of the SpRecord event API."""

    STARTUP = "startup"
    INCOMING_CALL = "incoming_call"
    OUTGOING_CALL = "outgoing_call"
    START_TALK = "start_talk"
    CALL_END = "call_end"
    INCOMING_SMS = "incoming_sms"
    ANSWER_ELSEWHERE = "answer_elsewhere"
    VERIFICATION = "verification"
    """Webhook handshake only: the server checks the hook URL with it."""


SUBSCRIBABLE_EVENT_TYPES: tuple[EventType, ...] = (
    EventType.STARTUP,
    EventType.INCOMING_CALL,
    EventType.OUTGOING_CALL,
    EventType.START_TALK,
    EventType.CALL_END,
    EventType.INCOMING_SMS,
    EventType.ANSWER_ELSEWHERE,
)
"""Event types a webhook can subscribe to, in the vendor's order."""


class RecordCallStatus(StrEnum):
    """How a call ended. A value the vendor adds later is kept as it is."""

    NOT_DEF = "not_def"
    NO_ANSWER = "no_answer"
    OVERLOAD = "overload"
    ERROR = "error"
    BUSY = "busy"
    SUCCESS = "success"

    @classmethod
    def _missing_(cls, value: object) -> RecordCallStatus | None:
        """Keep an unknown status as a pseudo-member that holds its text."""
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = "UNKNOWN"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Tell whether the status is one the vendor documents."""
        return self._name_ != "UNKNOWN"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpRecordEvent:
    """Fields every event has: the PBX it came from and its type."""

    event_type: ClassVar[str]
    device_id: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Payload fields this library does not know, kept as they came."""

    @property
    def type(self) -> str:
        """Return the event type as the server named it."""
        return self.event_type

    def fields_dict(self) -> dict[str, Any]:
        """Return the normalised known fields of the payload."""
        return {}

    def payload_dict(self) -> dict[str, Any]:
        """Return the normalised payload with its unknown fields, JSON-ready."""
        return {**self.extra, **self.fields_dict()}

    def as_dict(self) -> dict[str, Any]:
        """Return the normalised envelope, JSON-serialisable."""
        return {
            "device_id": self.device_id,
            "event_type": self.type,
            "payload": self.payload_dict(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class StartupEvent(SpRecordEvent):
    """The PBX was switched on."""

    event_type: ClassVar[str] = EventType.STARTUP.value


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent(SpRecordEvent):
    """A call event: its id, and the parties and line when the server names them."""

    call_id: str
    call_src: str | None = None
    """The number the call comes from; None when withheld or not sent."""
    call_dst: str | None = None
    """The PBX's internal number (extension)."""
    trunk: str | None = None
    """The line (trunk) the call is on, e.g. `GSM1`."""

    def fields_dict(self) -> dict[str, Any]:
        """Return the normalised known fields."""
        return {
            "call_id": self.call_id,
            "call_src": self.call_src,
            "call_dst": self.call_dst,
            "trunk": self.trunk,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCallEvent(CallEvent):
    """An incoming call starts ringing."""

    event_type: ClassVar[str] = EventType.INCOMING_CALL.value


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingCallEvent(CallEvent):
    """An outgoing call starts."""

    event_type: ClassVar[str] = EventType.OUTGOING_CALL.value


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTalkEvent(CallEvent):
    """The call was answered: the conversation starts."""

    event_type: ClassVar[str] = EventType.START_TALK.value


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEndEvent(SpRecordEvent):
    """The call ended."""

    event_type: ClassVar[str] = EventType.CALL_END.value
    call_id: str
    status: RecordCallStatus = RecordCallStatus.NOT_DEF
    """How it ended; `not_def` when the server did not say."""
    record_id: int | None = None
    """The id of the call's recording."""
    duration: int | None = None
    """Length of the call in seconds."""

    def fields_dict(self) -> dict[str, Any]:
        """Return the normalised known fields."""
        return {
            "call_id": self.call_id,
            "record_id": self.record_id,
            "duration": self.duration,
            "status": self.status.value,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerElsewhereEvent(SpRecordEvent):
    """The call was answered or redirected at another extension."""

    event_type: ClassVar[str] = EventType.ANSWER_ELSEWHERE.value
    call_id: str
    number: str | None = None
    """The internal number where it happened, when the server names it."""

    def fields_dict(self) -> dict[str, Any]:
        """Return the normalised known fields."""
        return {"call_id": self.call_id, "number": self.number}


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingSmsEvent(SpRecordEvent):
    """An SMS arrived on a line."""

    event_type: ClassVar[str] = EventType.INCOMING_SMS.value
    text: str
    """The message; it may be empty."""
    sms_src: str = ""
    """The sender; empty when the server does not name one."""
    trunk: str = ""
    """The line it came in on; empty when the server does not name one."""
    date: datetime | str | None = None
    """When it arrived: a datetime when readable, else the server's text."""

    def fields_dict(self) -> dict[str, Any]:
        """Return the normalised known fields."""
        return {
            "sms_src": self.sms_src,
            "text": self.text,
            "trunk": self.trunk,
            "date": self.date.isoformat()
            if isinstance(self.date, datetime)
            else self.date,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class VerificationEvent(SpRecordEvent):
    """The webhook handshake: answer with `verification_response(payload)`."""

    event_type: ClassVar[str] = EventType.VERIFICATION.value
    payload: str

    def payload_dict(self) -> dict[str, Any]:
        """Return nothing: the verification string is not an event's data."""
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(SpRecordEvent):
    """An event type this library does not know yet; passed through."""

    event_type: ClassVar[str] = ""
    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        """Return the event type as the server named it."""
        return self.name

    def payload_dict(self) -> dict[str, Any]:
        """Return the payload as it came (made storable)."""
        return dict(self.payload)


# --- making what the server sends storable ----------------------------------

MAX_NESTING = 64
"""Containers nested deeper than this in an event make it malformed: JSON
libraries stop far short of what Python's parser takes (orjson at 255)."""
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
"""Integers outside these bounds are past what JSON libraries commonly hold."""


def _valid_text(text: str) -> str:
    r"""Return `text` as valid Unicode: a lone UTF-16 surrogate becomes U+FFFD.

    JSON can carry half of a surrogate pair as an escape (`"\ud83d"`, half
    an emoji, as an SMS split inside an emoji gives); Python's parser keeps it,
    but such a string cannot be encoded, saved or sent on. A pair that came as
    two separate halves is joined; everything else is kept as it is.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _storable(value: Any, depth: int = 0) -> Any:
    """Return a JSON value that any store and serialiser takes, recursively.

    Text is made valid Unicode (keys too), integers past 64 bits become their
    digits as text, NaN and infinities become None. Raises `ProtocolError`
    when containers nest deeper than `MAX_NESTING`.
    """
    if isinstance(value, Mapping):
        _check_nesting(depth)
        return {
            _storable_scalar(key): _storable(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        _check_nesting(depth)
        return [_storable(item, depth + 1) for item in value]
    return _storable_scalar(value)


def _storable_scalar(value: Any) -> Any:
    """Return one JSON scalar made storable (see `_storable()`)."""
    if isinstance(value, str):
        return _valid_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= UINT64_MAX else _digits(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _check_nesting(depth: int) -> None:
    """Refuse an event whose containers nest deeper than `MAX_NESTING`."""
    if depth >= MAX_NESTING:
        raise ProtocolError(f"event is nested deeper than {MAX_NESTING} levels")


def _digits(value: int) -> str | None:
    """Return a big integer's digits, or None past Python's digit limit."""
    try:
        return str(value)
    except ValueError:
        return None


# --- normalisation ---------------------------------------------------------


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


_CALL_EVENTS: dict[str, type[CallEvent]] = {
    EventType.INCOMING_CALL: IncomingCallEvent,
    EventType.OUTGOING_CALL: OutgoingCallEvent,
    EventType.START_TALK: StartTalkEvent,
}

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_int(text: str) -> int | str:
    """Read a JSON integer the way `_storable()` keeps it."""
    value = int(text)
    return value if INT64_MIN <= value <= UINT64_MAX else str(value)


def _json_float(text: str) -> float | None:
    """Read a JSON number with a fraction the way `_storable()` keeps it."""
    value = float(text)
    return value if math.isfinite(value) else None


def _json_constant(_name: str) -> None:
    """Read `NaN`, `Infinity` and `-Infinity` as `_storable()` keeps them."""


_scan_once: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder(  # type: ignore[arg-type]  # typeshed has it as a class
        parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
    )
)
"""`json.loads()`'s own scanner, numbers made storable as they are read."""


def parse_event(raw: str | bytes | Mapping[str, Any]) -> SpRecordEvent:
    """Turn one event envelope (JSON text or a decoded mapping) into a model.

    Raises `ProtocolError` naming the field when the envelope, or what
    identifies a known event, is malformed. Unknown event types become
    `UnknownEvent`. What comes out is storable (see `_storable()`).
    """
    envelope = _envelope(raw)
    device_id = _device_id(envelope)
    event_type = envelope.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise ProtocolError("event: event_type is missing or not a string")
    if not is_name(event_type, MAX_EVENT_TYPE):
        raise ProtocolError("event: event_type is not the name of a type")

    raw_payload = envelope.get("payload")
    if event_type == EventType.VERIFICATION:
        if not isinstance(raw_payload, str | int) or isinstance(raw_payload, bool):
            raise ProtocolError("verification: payload must be a string")
        return VerificationEvent(device_id=device_id, payload=str(raw_payload))
    if raw_payload is None:
        raw_payload = {}
    elif type(raw_payload) is not dict and not isinstance(raw_payload, Mapping):
        raise ProtocolError(f"{event_type}: payload must be an object")
    builder = _BUILDERS.get(event_type)
    if builder is None:
        return UnknownEvent(device_id=device_id, name=event_type, payload=raw_payload)
    return builder(event_type, device_id, raw_payload)


def _device_id(envelope: Mapping[str, Any]) -> str:
    """Read the PBX id: text (or an integer) of base64 characters, bounded."""
    device_id = envelope.get("device_id")
    if isinstance(device_id, int) and not isinstance(device_id, bool):
        device_id = str(device_id)
    if not isinstance(device_id, str) or not device_id:
        raise ProtocolError("event: device_id is missing or not a string")
    if not is_pbx_id(device_id):
        raise ProtocolError("event: device_id is not a PBX id")
    return device_id


def _envelope(raw: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """Decode the envelope and make it storable."""
    if type(raw) is str:
        # The stream's case, in one pass of the scanner: numbers come out
        # storable; text and nesting need `_storable()` only when the text
        # shows a surrogate or enough brackets, which is rare.
        try:
            value, end = _scan_once(raw, 0)
        except (StopIteration, ValueError, RecursionError):
            end = -1  # the general way below gives the error its message
        if end == len(raw) and type(value) is dict:
            envelope: dict[str, Any] = value
            if (
                raw.count("{") + raw.count("[") > MAX_NESTING
                or ("\\u" in raw and _ESCAPED_SURROGATE.search(raw))
                or (not raw.isascii() and _SURROGATE.search(raw))
            ):
                return _storable(envelope)  # type: ignore[no-any-return]
            return envelope
    return _storable(_decode(raw))  # type: ignore[no-any-return]


# Each builder reads the fields of one event type straight from the payload;
# the fields it reads are its type's `_KNOWN` ones, the rest are `extra`.


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


_CALL_FIELDS = frozenset(("call_id", "call_src", "call_dst", "trunk"))
_CALL_END_FIELDS = frozenset(("call_id", "record_id", "duration", "status"))
_ANSWER_ELSEWHERE_FIELDS = frozenset(("call_id", "number"))
_SMS_FIELDS = frozenset(("text", "sms_src", "trunk", "date"))
_NO_FIELDS: frozenset[str] = frozenset()


def _build_call(
    event_type: str, device_id: str, raw: Mapping[str, Any]
) -> SpRecordEvent:
    return _CALL_EVENTS[event_type](
        device_id=device_id,
        call_id=_identifier(event_type, raw, "call_id"),
        call_src=_number(raw, "call_src"),
        call_dst=_number(raw, "call_dst"),
        trunk=_line(event_type, raw, "trunk"),
        extra=_extra(raw, _CALL_FIELDS),
    )


def _build_call_end(
    event_type: str, device_id: str, raw: Mapping[str, Any]
) -> SpRecordEvent:
    return CallEndEvent(
        device_id=device_id,
        call_id=_identifier(event_type, raw, "call_id"),
        record_id=_optional_int(raw, "record_id"),
        duration=_optional_int(raw, "duration"),
        status=_status(raw, "status"),
        extra=_extra(raw, _CALL_END_FIELDS),
    )


def _build_answer_elsewhere(
    event_type: str, device_id: str, raw: Mapping[str, Any]
) -> SpRecordEvent:
    return AnswerElsewhereEvent(
        device_id=device_id,
        call_id=_identifier(event_type, raw, "call_id"),
        number=_number(raw, "number"),
        extra=_extra(raw, _ANSWER_ELSEWHERE_FIELDS),
    )


def _build_sms(
    event_type: str, device_id: str, raw: Mapping[str, Any]
) -> SpRecordEvent:
    return IncomingSmsEvent(
        device_id=device_id,
        text=clean_message(_required_text(event_type, raw, "text")),
        sms_src=_number(raw, "sms_src") or "",
        trunk=_line(event_type, raw, "trunk") or "",
        date=_date(raw, "date"),
        extra=_extra(raw, _SMS_FIELDS),
    )


def _build_startup(
    _event_type: str, device_id: str, raw: Mapping[str, Any]
) -> SpRecordEvent:
    return StartupEvent(device_id=device_id, extra=_extra(raw, _NO_FIELDS))


_BUILDERS: dict[str, Callable[[str, str, Mapping[str, Any]], SpRecordEvent]] = {
    **dict.fromkeys(_CALL_EVENTS, _build_call),
    EventType.CALL_END: _build_call_end,
    EventType.ANSWER_ELSEWHERE: _build_answer_elsewhere,
    EventType.INCOMING_SMS: _build_sms,
    EventType.STARTUP: _build_startup,
}


def _decode(raw: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """Decode JSON text into the envelope mapping."""
    if isinstance(raw, Mapping):
        return raw
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"event is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"event must be a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    """The webhook settings the server holds, as it answered them."""

    hook: str | None
    subscribe: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Read the server's answer to `/sys/subscribe_events`."""
        if not isinstance(data, Mapping):
            raise ProtocolError("subscribe_events: answer must be a JSON object")
        hook = data.get("hook")
        if hook is not None and not isinstance(hook, str):
            raise ProtocolError("subscribe_events: hook must be a string")
        subscribe = data.get("subscribe", [])
        if not isinstance(subscribe, list) or not all(
            isinstance(item, str) for item in subscribe
        ):
            raise ProtocolError("subscribe_events: subscribe must be a list of text")
        return cls(hook=hook or None, subscribe=tuple(subscribe))
