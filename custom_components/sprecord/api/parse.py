"""Turning one event envelope, JSON text or a decoded mapping, into its model.

`parse_event()` reads the envelope (the stream's JSON text in one pass of the
scanner, see `storable.py`), then builds the model its event type names from
the payload's fields (`fields.py`). What names things Home Assistant keeps is
refused when it is no such name: a PBX id must be base64 characters (at most
128), an event type printable text (at most 64); the event is then a
`ProtocolError` naming the field, so that no forged or broken event makes
devices or entities with made-up names, and the caller can skip that one
event and keep the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import json
import re
from typing import Any

from .clean import MAX_EVENT_TYPE, clean_message, is_name, is_pbx_id
from .exceptions import ProtocolError
from .fields import (
    _date,
    _extra,
    _identifier,
    _line,
    _number,
    _optional_int,
    _required_text,
    _status,
)
from .models import (
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
    EventType,
    IncomingCallEvent,
    IncomingSmsEvent,
    OutgoingCallEvent,
    SpRecordEvent,
    StartTalkEvent,
    StartupEvent,
    UnknownEvent,
    VerificationEvent,
)
from .storable import MAX_NESTING, _scan_once, _storable

_CALL_EVENTS: dict[str, type[CallEvent]] = {
    EventType.INCOMING_CALL: IncomingCallEvent,
    EventType.OUTGOING_CALL: OutgoingCallEvent,
    EventType.START_TALK: StartTalkEvent,
}

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


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


# Each builder reads the fields of one event type straight from the payload;
# the fields it reads are its type's `_*_FIELDS` ones, the rest are `extra`.
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
