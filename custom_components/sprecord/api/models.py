"""Typed SpRecord events, and the webhook settings the server holds.

`parse.parse_event()` makes the events from the server's JSON. Only what
identifies an event is required (the `call_id` of a call event, the `text` of
an SMS). Any other field may be missing, null or unreadable: it is then
`None` (a call's parties and line), empty text (an SMS's sender and line) or
`not_def` (a call's status). Payload fields this library does not know are
kept in `extra`, and `payload_dict()` gives them back. What an event holds is
storable (`storable.py`): it can be saved and serialised as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
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
