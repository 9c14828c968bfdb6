"""Event models behaviour that mutation testing (scripts/mutate) found untested.

`parse_event()` takes an event as JSON text (the stream's case, read by a
fast path) or as a decoded mapping (the webhook's); both must give the same
storable event, at the edges too: the 64-bit bounds, non-finite numbers,
booleans, nesting and lone UTF-16 surrogates.
"""

from __future__ import annotations

from datetime import UTC, datetime
import json
import math
from typing import Any

import pytest

from custom_components.sprecord.api import (
    CallEndEvent,
    IncomingCallEvent,
    IncomingSmsEvent,
    ProtocolError,
    parse_event,
)
from custom_components.sprecord.api.storable import MAX_NESTING

DEVICE = "Y7d6hP0mjNBI+WBT+yptpgY7uY+zX1Oumg9CQ7nr7HACJHy9Fg8IhCr41wO3j0Jl7zUU="


def envelope(event_type: str, payload: Any) -> dict[str, Any]:
    """Return an event envelope."""
    return {"device_id": DEVICE, "event_type": event_type, "payload": payload}


def every_form(event: dict[str, Any]) -> list[Any]:
    """Return the event as a mapping, as JSON text (escaped and not), as bytes."""
    return [
        event,
        json.dumps(event),
        json.dumps(event, ensure_ascii=False),
        json.dumps(event).encode(),
    ]


def test_numbers_at_the_edges_are_stored_the_same_in_every_form() -> None:
    payload = {
        "int64_min": -(2**63),
        "uint64_max": 2**64 - 1,
        "below": -(2**63) - 1,
        "above": 2**64,
        "fraction": 1.5,
        "nan": math.nan,
        "infinities": [math.inf, -math.inf],
        "flags": [True, False],
    }
    expected = {
        "int64_min": -(2**63),
        "uint64_max": 2**64 - 1,
        "below": str(-(2**63) - 1),
        "above": str(2**64),
        "fraction": 1.5,
        "nan": None,
        "infinities": [None, None],
        "flags": [True, False],
    }
    for raw in every_form(envelope("voicemail_left", payload)):
        assert parse_event(raw).payload_dict() == expected


@pytest.mark.parametrize("container", ["list", "object"])
def test_nesting_is_bounded_in_every_form(container: str) -> None:
    def nested(levels: int) -> Any:
        value: Any = "x"
        for _ in range(levels):
            value = [value] if container == "list" else {"a": value}
        return value

    # The envelope and the payload are two levels: MAX_NESTING in all.
    for raw in every_form(envelope("voicemail_left", {"a": nested(MAX_NESTING - 2)})):
        assert parse_event(raw).payload_dict() == {"a": nested(MAX_NESTING - 2)}
    for raw in every_form(envelope("voicemail_left", {"a": nested(MAX_NESTING - 1)})):
        with pytest.raises(ProtocolError, match="nested deeper than 64"):
            parse_event(raw)


def test_a_lone_surrogate_becomes_a_replacement_character_in_every_form() -> None:
    # Half an emoji, escaped in JSON or as a character in the text.
    event = envelope("incoming_sms", {"text": "Hi \ud83d", "sms_src": "+7"})
    for raw in every_form(event)[:3]:
        parsed = parse_event(raw)
        assert isinstance(parsed, IncomingSmsEvent)
        assert parsed.text == "Hi \ufffd"


@pytest.mark.parametrize("raw", ["[", "{", "1", "[]", '{"a": 1} x', ""])
def test_short_or_broken_json_text_is_a_protocol_error(raw: str) -> None:
    with pytest.raises(ProtocolError):
        parse_event(raw)


def test_integral_numbers_sent_as_floats_are_read_as_integers() -> None:
    call = parse_event(envelope("incoming_call", {"call_id": 8.0, "call_dst": 107.0}))
    assert call == IncomingCallEvent(device_id=DEVICE, call_id="8", call_dst="107")
    end = parse_event(
        envelope("call_end", {"call_id": 8, "record_id": 12.0, "duration": "42"})
    )
    assert isinstance(end, CallEndEvent)
    assert (end.record_id, end.duration) == (12, 42)


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        # Up to 10**11 a number is seconds (the year 5138), past it milliseconds.
        (10**11, datetime.fromtimestamp(10**11, tz=UTC)),
        (10**11 + 1000, datetime.fromtimestamp(10**8 + 1, tz=UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_sms_dates_in_unix_time_at_the_edges(date: Any, expected: datetime) -> None:
    for raw in every_form(envelope("incoming_sms", {"text": "x", "date": date})):
        event = parse_event(raw)
        assert isinstance(event, IncomingSmsEvent)
        assert event.date == expected


def test_the_verification_handshake_names_its_type() -> None:
    event = parse_event(envelope("verification", "a1b2c3"))
    assert event.type == "verification"
    assert event.as_dict() == {
        "device_id": DEVICE,
        "event_type": "verification",
        "payload": {},
    }


def test_an_sms_keeps_the_line_it_came_in_on() -> None:
    for raw in every_form(envelope("incoming_sms", {"text": "Hi", "trunk": "GSM2"})):
        event = parse_event(raw)
        assert isinstance(event, IncomingSmsEvent)
        assert event.trunk == "GSM2"
        assert event.payload_dict()["trunk"] == "GSM2"


def test_text_given_as_a_str_subclass_is_read_as_text() -> None:
    # A caller may hand over a mapping whose strings are an enum's members.
    class Text(str):
        __slots__ = ()

    event = parse_event(
        envelope("incoming_call", {"call_id": Text("8"), "trunk": Text("GSM1")})
    )
    assert isinstance(event, IncomingCallEvent)
    assert (event.call_id, event.trunk) == ("8", "GSM1")


def test_junk_before_the_json_object_is_a_protocol_error() -> None:
    text = json.dumps(envelope("startup", {}))
    assert parse_event(text).type == "startup"
    for junk in ("x", "]", "1"):
        with pytest.raises(ProtocolError, match="not valid JSON"):
            parse_event(junk + text)
