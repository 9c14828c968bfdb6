"""Event models and their normalisation from raw JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
import json
from typing import Any

import pytest

from custom_components.sprecord.api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    IncomingCallEvent,
    IncomingSmsEvent,
    OutgoingCallEvent,
    ProtocolError,
    RecordCallStatus,
    StartTalkEvent,
    StartupEvent,
    SubscriptionSettings,
    UnknownEvent,
    VerificationEvent,
    parse_event,
)

DEVICE = "Y7d6hP0mjNBI+WBT+yptpgY7uY+zX1Oumg9CQ7nr7HACJHy9Fg8IhCr41wO3j0Jl7zUU="


def envelope(event_type: str, payload: Any) -> dict[str, Any]:
    """Return an event envelope."""
    return {"device_id": DEVICE, "event_type": event_type, "payload": payload}


# --- the vendor's own examples ----------------------------------------------


def test_vendor_incoming_call_example_with_its_extra_brace_is_rejected() -> None:
    # The first example on the vendor page has one closing brace too many.
    text = (
        '{"device_id": "' + DEVICE + '", "event_type": "incoming_call",\n'
        '"payload": {"call_id": 8,\n"call_src": "+798299xxxxx",\n'
        '"call_dst": "107", \n"trunk": "GSM1"}}}'
    )
    with pytest.raises(ProtocolError, match="not valid JSON"):
        parse_event(text)
    # Without the extra brace it is what it means.
    event = parse_event(text[:-1])
    assert event == IncomingCallEvent(
        device_id=DEVICE,
        call_id="8",
        call_src="+798299xxxxx",
        call_dst="107",
        trunk="GSM1",
    )


def test_vendor_call_end_example() -> None:
    text = (
        '{"device_id": "' + DEVICE + '", "event_type": "call_end",\n'
        ' "payload": {"call_id": "8", \n "record_id": 8,\n "duration": 0,\n'
        '  "status": "no_answer"}}'
    )
    event = parse_event(text)
    assert event == CallEndEvent(
        device_id=DEVICE,
        call_id="8",
        record_id=8,
        duration=0,
        status=RecordCallStatus.NO_ANSWER,
    )


def test_numeric_and_text_call_id_of_one_call_match() -> None:
    start = parse_event(
        envelope(
            "incoming_call",
            {"call_id": 8, "call_src": "+7", "call_dst": "107", "trunk": "GSM1"},
        )
    )
    end = parse_event(envelope("call_end", {"call_id": "8", "status": "success"}))
    assert isinstance(start, IncomingCallEvent)
    assert isinstance(end, CallEndEvent)
    assert start.call_id == end.call_id == "8"


def test_startup_has_no_payload() -> None:
    assert parse_event(envelope("startup", {})) == StartupEvent(device_id=DEVICE)
    assert parse_event({"device_id": DEVICE, "event_type": "startup"}) == StartupEvent(
        device_id=DEVICE
    )


@pytest.mark.parametrize(
    ("event_type", "cls"),
    [
        ("incoming_call", IncomingCallEvent),
        ("outgoing_call", OutgoingCallEvent),
        ("start_talk", StartTalkEvent),
    ],
)
def test_call_events(event_type: str, cls: type[Any]) -> None:
    payload = {
        "call_id": "1",
        "call_src": "101",
        "call_dst": 79001234567,
        "trunk": "GSM2",
    }
    event = parse_event(envelope(event_type, payload))
    assert type(event) is cls
    assert event.type == event_type
    assert event.payload_dict() == {**payload, "call_dst": "79001234567"}


def test_answer_elsewhere() -> None:
    event = parse_event(envelope("answer_elsewhere", {"call_id": 9, "number": 107}))
    assert event == AnswerElsewhereEvent(device_id=DEVICE, call_id="9", number="107")


def test_sms_with_russian_text_and_zoned_date() -> None:
    event = parse_event(
        json.dumps(
            envelope(
                "incoming_sms",
                {
                    "sms_src": "+79001234567",
                    "text": "Привет! Встреча в 11:00",
                    "trunk": "GSM1",
                    "date": "2026-11-27T10:15:00+03:00",
                },
            ),
            ensure_ascii=False,
        ).encode()
    )
    assert isinstance(event, IncomingSmsEvent)
    assert event.text == "Привет! Встреча в 11:00"
    assert event.date == datetime(
        2026, 11, 27, 10, 15, tzinfo=timezone(timedelta(hours=3))
    )
    assert event.payload_dict()["date"] == "2026-11-27T10:15:00+03:00"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-27 10:15:00", datetime(2026, 11, 27, 10, 15)),  # noqa: DTZ001
        ("2026-11-27T07:15:00Z", datetime(2026, 11, 27, 7, 15, tzinfo=UTC)),
        (1795000000, datetime.fromtimestamp(1795000000, UTC)),
        (1795000000.5, datetime.fromtimestamp(1795000000.5, UTC)),
        ("1795000000", datetime.fromtimestamp(1795000000, UTC)),
        (1795000000123, datetime.fromtimestamp(1795000000.123, UTC)),
        ("yesterday evening", "yesterday evening"),
        ("", None),
        (None, None),
        (-5, "-5"),
        (10**309, str(10**309)),  # past the float range: no date, kept as text
        ("nan", "nan"),
    ],
)
def test_sms_date_forms(raw: Any, expected: Any) -> None:
    payload = {"sms_src": "BANK", "text": "x", "trunk": "GSM1", "date": raw}
    event = parse_event(envelope("incoming_sms", payload))
    assert isinstance(event, IncomingSmsEvent)
    assert event.date == expected


def test_sms_without_date_is_kept() -> None:
    event = parse_event(
        envelope("incoming_sms", {"sms_src": "A", "text": "", "trunk": "G"})
    )
    assert isinstance(event, IncomingSmsEvent)
    assert event.date is None


def test_sms_date_of_wrong_type_names_the_field() -> None:
    payload = {"sms_src": "A", "text": "t", "trunk": "G", "date": ["2026"]}
    with pytest.raises(ProtocolError, match=r"incoming_sms: payload.date must be"):
        parse_event(envelope("incoming_sms", payload))


# --- call_end details ---------------------------------------------


@pytest.mark.parametrize(
    ("record_id", "duration", "expected"),
    [
        (8, 0, (8, 0)),
        ("8", "15", (8, 15)),
        (None, None, (None, None)),
        ("", " ", (None, None)),
        (8.0, 12.0, (8, 12)),
    ],
)
def test_call_end_numbers(
    record_id: Any, duration: Any, expected: tuple[Any, Any]
) -> None:
    payload = {
        "call_id": 1,
        "record_id": record_id,
        "duration": duration,
        "status": "busy",
    }
    event = parse_event(envelope("call_end", payload))
    assert isinstance(event, CallEndEvent)
    assert (event.record_id, event.duration) == expected


def test_call_end_without_optional_numbers() -> None:
    event = parse_event(envelope("call_end", {"call_id": 1, "status": "success"}))
    assert isinstance(event, CallEndEvent)
    assert event.record_id is None
    assert event.duration is None


@pytest.mark.parametrize("value", [True, "ten", 1.5, [], {}])
def test_call_end_bad_duration_names_the_field(value: Any) -> None:
    payload = {"call_id": 1, "duration": value, "status": "success"}
    with pytest.raises(
        ProtocolError, match=r"call_end: payload.duration must be an integer"
    ):
        parse_event(envelope("call_end", payload))


def test_every_documented_status() -> None:
    for status in ("not_def", "no_answer", "overload", "error", "busy", "success"):
        event = parse_event(envelope("call_end", {"call_id": 1, "status": status}))
        assert isinstance(event, CallEndEvent)
        assert event.status is RecordCallStatus(status)
        assert event.status.is_known


def test_unknown_status_is_kept() -> None:
    event = parse_event(envelope("call_end", {"call_id": 1, "status": "voicemail"}))
    assert isinstance(event, CallEndEvent)
    assert event.status == "voicemail"
    assert isinstance(event.status, RecordCallStatus)
    assert not event.status.is_known
    assert event.payload_dict()["status"] == "voicemail"


@pytest.mark.parametrize("status", [None, 5, ""])
def test_bad_status_names_the_field(status: Any) -> None:
    with pytest.raises(ProtocolError, match=r"payload.status"):
        parse_event(envelope("call_end", {"call_id": 1, "status": status}))


def test_missing_status_names_the_field() -> None:
    with pytest.raises(ProtocolError, match=r"call_end: payload.status is missing"):
        parse_event(envelope("call_end", {"call_id": 1}))


# --- errors name the field ---------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"call_src": "1", "call_dst": "2", "trunk": "G"},
            "payload.call_id is missing",
        ),
        (
            {"call_id": " ", "call_src": "1", "call_dst": "2", "trunk": "G"},
            "call_id is empty",
        ),
        ({"call_id": 1, "call_dst": "2", "trunk": "G"}, "payload.call_src is missing"),
        (
            {"call_id": 1, "call_src": None, "call_dst": "2", "trunk": "G"},
            "call_src must be",
        ),
        (
            {"call_id": True, "call_src": "1", "call_dst": "2", "trunk": "G"},
            "call_id must be",
        ),
        (
            {"call_id": 1.5, "call_src": "1", "call_dst": "2", "trunk": "G"},
            "call_id must be",
        ),
        ({"call_id": 1, "call_src": "1", "call_dst": "2"}, "payload.trunk is missing"),
    ],
)
def test_bad_call_payload_names_the_field(
    payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProtocolError, match=message) as err:
        parse_event(envelope("incoming_call", payload))
    assert str(err.value).startswith("incoming_call: ")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ({"event_type": "startup"}, "device_id is missing"),
        ({"device_id": "", "event_type": "startup"}, "device_id is missing"),
        ({"device_id": DEVICE}, "event_type is missing"),
        ({"device_id": DEVICE, "event_type": 5}, "event_type is missing"),
        (
            {"device_id": DEVICE, "event_type": "startup", "payload": [1]},
            "payload must be",
        ),
        (
            {"device_id": DEVICE, "event_type": "verification"},
            "payload must be a string",
        ),
    ],
)
def test_bad_envelopes(raw: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_event(raw)


def test_numeric_device_id_becomes_text() -> None:
    event = parse_event({"device_id": 42, "event_type": "startup"})
    assert event.device_id == "42"


def test_unknown_event_type_passes_through() -> None:
    event = parse_event(envelope("voicemail_left", {"box": 101, "seconds": 20}))
    assert isinstance(event, UnknownEvent)
    assert event.type == "voicemail_left"
    assert event.as_dict() == envelope("voicemail_left", {"box": 101, "seconds": 20})


def test_verification_event() -> None:
    event = parse_event(envelope("verification", "abc123"))
    assert event == VerificationEvent(device_id=DEVICE, payload="abc123")
    assert event.payload_dict() == {}


def test_as_dict_round_trips_through_parse() -> None:
    payload = {"call_id": 8, "call_src": "+7", "call_dst": "107", "trunk": "GSM1"}
    event = parse_event(envelope("incoming_call", payload))
    assert parse_event(event.as_dict()) == event
    assert json.loads(json.dumps(event.as_dict()))["payload"]["call_id"] == "8"


def test_events_are_frozen() -> None:
    event = parse_event(envelope("startup", {}))
    with pytest.raises(AttributeError):
        event.device_id = "other"  # type: ignore[misc]


# --- subscription settings ---------------------------------------------


def test_subscription_settings() -> None:
    settings = SubscriptionSettings.from_dict(
        {"hook": "https://example.org/h", "subscribe": ["call_end"]}
    )
    assert settings == SubscriptionSettings("https://example.org/h", ("call_end",))
    assert SubscriptionSettings.from_dict({"hook": ""}).hook is None


@pytest.mark.parametrize(
    "data",
    [[], {"hook": 5}, {"hook": "x", "subscribe": "call_end"}, {"subscribe": [1]}],
)
def test_bad_subscription_settings(data: Any) -> None:
    with pytest.raises(ProtocolError, match="subscribe_events"):
        SubscriptionSettings.from_dict(data)
