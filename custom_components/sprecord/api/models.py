"""Typed SpRecord events and their normalisation from raw JSON.

The vendor's own examples are loose (`call_id` is `8` in one event and `"8"`
in the next), so `parse_event()` accepts what is plainly meant and normalises
it: ids become strings, numbers become ints, the SMS date becomes a datetime
when it can be read. What cannot be read raises `ProtocolError` naming the
field, so the caller can skip that one event and keep the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
import json
import math
from typing import Any, ClassVar, Self

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

    @property
    def type(self) -> str:
        """Return the event type as the server named it."""
        return self.event_type

    def payload_dict(self) -> dict[str, Any]:
        """Return the normalised payload, JSON-serialisable."""
        return {}

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
    """A call event that names both parties and the line."""

    call_id: str
    call_src: str
    """The number the call comes from."""
    call_dst: str
    """The PBX's internal number (extension)."""
    trunk: str
    """The line (trunk) the call is on, e.g. `GSM1`."""

    def payload_dict(self) -> dict[str, Any]:
        """Return the normalised payload."""
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
    status: RecordCallStatus
    record_id: int | None = None
    """The id of the call's recording."""
    duration: int | None = None
    """Length of the call in seconds."""

    def payload_dict(self) -> dict[str, Any]:
        """Return the normalised payload."""
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
    number: str
    """The internal number where it happened."""

    def payload_dict(self) -> dict[str, Any]:
        """Return the normalised payload."""
        return {"call_id": self.call_id, "number": self.number}


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingSmsEvent(SpRecordEvent):
    """An SMS arrived on a line."""

    event_type: ClassVar[str] = EventType.INCOMING_SMS.value
    sms_src: str
    text: str
    trunk: str
    date: datetime | str | None = None
    """When it arrived: a datetime when readable, else the server's text."""

    def payload_dict(self) -> dict[str, Any]:
        """Return the normalised payload."""
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
        """Return the payload as it came."""
        return dict(self.payload)


# --- normalisation ---------------------------------------------------------


class _Payload:
    """Reads fields of one payload, raising errors that name the field."""

    __slots__ = ("_event_type", "_raw")

    def __init__(self, event_type: str, raw: Mapping[str, Any]) -> None:
        self._event_type = event_type
        self._raw = raw

    def _error(self, key: str, problem: str) -> ProtocolError:
        return ProtocolError(f"{self._event_type}: payload.{key} {problem}")

    def text(self, key: str, *, allow_empty: bool = True) -> str:
        """Read a string field; integers are accepted and turned into text."""
        if key not in self._raw:
            raise self._error(key, "is missing")
        value = self._raw[key]
        if isinstance(value, str):
            if not allow_empty and not value.strip():
                raise self._error(key, "is empty")
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        raise self._error(key, f"must be a string, got {type(value).__name__}")

    def optional_int(self, key: str) -> int | None:
        """Read an optional integer field; digit strings are accepted."""
        value = self._raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            raise self._error(key, "must be an integer, got bool")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            stripped = value.strip()
            if not stripped:
                return None
            try:
                return int(stripped)
            except ValueError:
                pass
        raise self._error(key, f"must be an integer, got {value!r:.40}")

    def status(self, key: str) -> RecordCallStatus:
        """Read a call status; unknown texts are kept."""
        if key not in self._raw:
            raise self._error(key, "is missing")
        value = self._raw[key]
        if not isinstance(value, str) or not value:
            raise self._error(key, "must be a non-empty string")
        return RecordCallStatus(value)

    def date(self, key: str) -> datetime | str | None:
        """Read a date: ISO 8601, Unix seconds, or the raw text if neither."""
        value = self._raw.get(key)
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return _from_timestamp(value) or str(value)
        if not isinstance(value, str):
            raise self._error(key, f"must be a string, got {type(value).__name__}")
        text = value.strip()
        if not text:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return value
        return _from_timestamp(number) or value


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


def parse_event(raw: str | bytes | Mapping[str, Any]) -> SpRecordEvent:
    """Turn one event envelope (JSON text or a decoded mapping) into a model.

    Raises `ProtocolError` naming the field when the envelope or a known
    event's payload is malformed. Unknown event types become `UnknownEvent`.
    """
    envelope = _decode(raw)
    device_id = envelope.get("device_id")
    if isinstance(device_id, int) and not isinstance(device_id, bool):
        device_id = str(device_id)
    if not isinstance(device_id, str) or not device_id:
        raise ProtocolError("event: device_id is missing or not a string")
    event_type = envelope.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise ProtocolError("event: event_type is missing or not a string")

    raw_payload = envelope.get("payload")
    if event_type == EventType.VERIFICATION:
        if not isinstance(raw_payload, str | int) or isinstance(raw_payload, bool):
            raise ProtocolError("verification: payload must be a string")
        return VerificationEvent(device_id=device_id, payload=str(raw_payload))
    if raw_payload is None:
        raw_payload = {}
    if not isinstance(raw_payload, Mapping):
        raise ProtocolError(f"{event_type}: payload must be an object")
    return _build(event_type, device_id, _Payload(event_type, raw_payload), raw_payload)


def _build(
    event_type: str,
    device_id: str,
    p: _Payload,
    raw_payload: Mapping[str, Any],
) -> SpRecordEvent:
    """Build the model of one event type."""
    if call_class := _CALL_EVENTS.get(event_type):
        return call_class(
            device_id=device_id,
            call_id=p.text("call_id", allow_empty=False),
            call_src=p.text("call_src"),
            call_dst=p.text("call_dst"),
            trunk=p.text("trunk"),
        )
    match event_type:
        case EventType.CALL_END:
            return CallEndEvent(
                device_id=device_id,
                call_id=p.text("call_id", allow_empty=False),
                record_id=p.optional_int("record_id"),
                duration=p.optional_int("duration"),
                status=p.status("status"),
            )
        case EventType.ANSWER_ELSEWHERE:
            return AnswerElsewhereEvent(
                device_id=device_id,
                call_id=p.text("call_id", allow_empty=False),
                number=p.text("number"),
            )
        case EventType.INCOMING_SMS:
            return IncomingSmsEvent(
                device_id=device_id,
                sms_src=p.text("sms_src"),
                text=p.text("text"),
                trunk=p.text("trunk"),
                date=p.date("date"),
            )
        case EventType.STARTUP:
            return StartupEvent(device_id=device_id)
    return UnknownEvent(device_id=device_id, name=event_type, payload=raw_payload)


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
