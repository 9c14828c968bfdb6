"""Event models and their normalisation from raw JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
import json
import math
from typing import Any

import pytest

from custom_components.sprecord.api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
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
from custom_components.sprecord.api.storable import MAX_NESTING

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
        # Past the float range: no date, kept as text (cut at 64 characters).
        (10**309, str(10**309)[:63] + "…"),
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


def test_sms_date_of_wrong_type_is_no_date() -> None:
    # Was: refused naming the field. The SMS is what counts; its date is not.
    payload = {"sms_src": "A", "text": "t", "trunk": "G", "date": ["2026"]}
    event = parse_event(envelope("incoming_sms", payload))
    assert isinstance(event, IncomingSmsEvent)
    assert event.date is None
    assert event.text == "t"


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


@pytest.mark.parametrize("value", [True, "ten", 1.5, [], {}, 2**64, -(2**63) - 1])
def test_call_end_unreadable_duration_is_no_duration(value: Any) -> None:
    # Was: refused naming the field, so the call stayed talking for hours.
    payload = {"call_id": 1, "duration": value, "record_id": value, "status": "busy"}
    event = parse_event(envelope("call_end", payload))
    assert isinstance(event, CallEndEvent)
    assert event.duration is None
    assert event.record_id is None
    assert event.status is RecordCallStatus.BUSY


def test_call_end_numbers_at_the_64_bit_bounds_are_kept() -> None:
    payload = {"call_id": 1, "record_id": 2**64 - 1, "duration": -(2**63)}
    event = parse_event(envelope("call_end", payload))
    assert isinstance(event, CallEndEvent)
    assert (event.record_id, event.duration) == (2**64 - 1, -(2**63))


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


@pytest.mark.parametrize("status", [None, "", "  ", [], {}, True, 1.5])
def test_no_status_is_not_def(status: Any) -> None:
    # Was: refused naming the field, so the call never ended.
    event = parse_event(envelope("call_end", {"call_id": 1, "status": status}))
    assert isinstance(event, CallEndEvent)
    assert event.status is RecordCallStatus.NOT_DEF
    assert event.payload_dict()["status"] == "not_def"


def test_missing_status_is_not_def() -> None:
    # Was: refused ("call_end: payload.status is missing").
    event = parse_event(envelope("call_end", {"call_id": 1}))
    assert event == CallEndEvent(
        device_id=DEVICE, call_id="1", status=RecordCallStatus.NOT_DEF
    )


def test_numeric_status_is_kept_as_unknown_text() -> None:
    event = parse_event(envelope("call_end", {"call_id": 1, "status": 5}))
    assert isinstance(event, CallEndEvent)
    assert event.status == "5"
    assert not event.status.is_known


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
        ({"call_id": None, "call_src": "1"}, "call_id must be"),
        (
            {"call_id": True, "call_src": "1", "call_dst": "2", "trunk": "G"},
            "call_id must be",
        ),
        (
            {"call_id": 1.5, "call_src": "1", "call_dst": "2", "trunk": "G"},
            "call_id must be",
        ),
        ({"call_id": [8]}, "call_id must be"),
    ],
)
def test_bad_call_payload_names_the_field(
    payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProtocolError, match=message) as err:
        parse_event(envelope("incoming_call", payload))
    assert str(err.value).startswith("incoming_call: ")


# --- lenient: only what identifies an event is required -----------------------


@pytest.mark.parametrize("event_type", ["incoming_call", "outgoing_call", "start_talk"])
@pytest.mark.parametrize(
    "payload",
    [
        {"call_id": 8},  # was: "payload.call_src is missing"
        {"call_id": 8, "call_src": None, "call_dst": None, "trunk": None},
        {"call_id": 8, "call_src": [], "call_dst": {}, "trunk": 1.5},
    ],
)
def test_call_event_needs_only_its_id(event_type: str, payload: dict[str, Any]) -> None:
    # Was: refused naming the field, so a withheld caller never rang.
    event = parse_event(envelope(event_type, payload))
    assert isinstance(event, CallEvent)
    assert event.type == event_type
    assert event.call_id == "8"
    assert (event.call_src, event.call_dst, event.trunk) == (None, None, None)
    assert event.payload_dict() == {
        "call_id": "8",
        "call_src": None,
        "call_dst": None,
        "trunk": None,
    }


def test_withheld_caller_keeps_the_other_fields() -> None:
    payload = {"call_id": 8, "call_src": None, "call_dst": 107, "trunk": "GSM1"}
    event = parse_event(envelope("incoming_call", payload))
    assert event == IncomingCallEvent(
        device_id=DEVICE, call_id="8", call_src=None, call_dst="107", trunk="GSM1"
    )


def test_answer_elsewhere_without_number() -> None:
    event = parse_event(envelope("answer_elsewhere", {"call_id": 9}))
    assert event == AnswerElsewhereEvent(device_id=DEVICE, call_id="9", number=None)


@pytest.mark.parametrize("event_type", ["call_end", "answer_elsewhere"])
def test_call_id_is_still_required(event_type: str) -> None:
    with pytest.raises(ProtocolError, match=rf"{event_type}: payload.call_id is"):
        parse_event(envelope(event_type, {"status": "success", "number": "1"}))


def test_sms_needs_only_its_text() -> None:
    event = parse_event(envelope("incoming_sms", {"text": "Код 1234"}))
    assert event == IncomingSmsEvent(device_id=DEVICE, text="Код 1234")
    assert (event.sms_src, event.trunk, event.date) == ("", "", None)
    assert event.payload_dict() == {
        "sms_src": "",
        "text": "Код 1234",
        "trunk": "",
        "date": None,
    }


@pytest.mark.parametrize("sender", [None, [], {"a": 1}])
def test_sms_with_an_unreadable_sender_or_line_is_kept(sender: Any) -> None:
    payload = {"sms_src": sender, "text": "", "trunk": sender}
    event = parse_event(envelope("incoming_sms", payload))
    assert isinstance(event, IncomingSmsEvent)
    assert (event.sms_src, event.text, event.trunk) == ("", "", "")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"sms_src": "BANK"}, "incoming_sms: payload.text is missing"),
        ({"text": None}, "incoming_sms: payload.text must be a string"),
        ({"text": ["a"]}, "incoming_sms: payload.text must be a string"),
    ],
)
def test_sms_without_text_is_refused(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_event(envelope("incoming_sms", payload))


# --- unknown payload fields are kept --------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("incoming_call", {"call_id": 1, "call_src": "+7", "queue": "sales"}),
        ("call_end", {"call_id": 1, "status": "busy", "cost": 1.5}),
        ("answer_elsewhere", {"call_id": 1, "number": "102", "via": ["a", "b"]}),
        ("incoming_sms", {"text": "x", "parts": {"n": 2, "of": 3}}),
        ("startup", {"firmware": "2.1", "uptime": 0}),
    ],
)
def test_unknown_payload_fields_are_kept(
    event_type: str, payload: dict[str, Any]
) -> None:
    event = parse_event(envelope(event_type, payload))
    known = event.fields_dict()
    extra = {key: value for key, value in payload.items() if key not in known}
    assert extra
    assert event.extra == extra
    assert event.payload_dict() == {**extra, **known}
    assert parse_event(event.as_dict()) == event


def test_known_fields_win_over_nothing_and_are_not_extra() -> None:
    payload = {"call_id": 8, "call_src": None, "trunk": 5, "note": None}
    event = parse_event(envelope("incoming_call", payload))
    assert event.extra == {"note": None}
    assert event.payload_dict()["trunk"] == "5"


# --- text and numbers Home Assistant cannot store -------------------------------


def test_lone_surrogate_in_sms_text_becomes_a_replacement_character() -> None:
    # The JSON escape of half an emoji: valid JSON, not valid Unicode.
    text = (
        '{"device_id": "' + DEVICE + '", "event_type": "incoming_sms",'
        ' "payload": {"sms_src": "\\udc00+7", "text": "Hi \\ud83d", "trunk": "G"}}'
    )
    event = parse_event(text)
    assert isinstance(event, IncomingSmsEvent)
    assert event.text == "Hi \ufffd"
    assert event.sms_src == "\ufffd+7"
    json.dumps(event.as_dict(), ensure_ascii=False).encode()  # valid UTF-8
    # A PBX id with half an emoji is no PBX id (base64 characters only).
    with pytest.raises(ProtocolError, match="device_id is not a PBX id"):
        parse_event(text.replace(DEVICE, DEVICE + "\\ud83d"))


def test_every_string_is_made_valid_unicode_nested_and_in_keys() -> None:
    raw = {
        "device_id": DEVICE,
        "event_type": "incoming_call\udc00",
        "payload": {
            "call_id": "1\ud83d",
            "k\ud83d": {"inner\udc00": ["\ud83d", "ok", 5, {"x": "\udfff"}]},
        },
    }
    event = parse_event(raw)
    assert isinstance(event, UnknownEvent)  # the type itself is not readable
    assert event.type == "incoming_call\ufffd"
    assert event.payload_dict() == {
        "call_id": "1\ufffd",
        "k\ufffd": {"inner\ufffd": ["\ufffd", "ok", 5, {"x": "\ufffd"}]},
    }
    call = parse_event({**raw, "event_type": "incoming_call"})
    assert isinstance(call, IncomingCallEvent)
    assert call.call_id == "1\ufffd"
    assert call.extra == {
        "k\ufffd": {"inner\ufffd": ["\ufffd", "ok", 5, {"x": "\ufffd"}]}
    }


def test_surrogate_pair_as_two_escapes_is_one_character() -> None:
    text = '{"device_id": "d", "event_type": "incoming_sms", "payload": '
    event = parse_event(text + '{"text": "\\ud83d\\ude00 \\ude00\\ud83d"}}')
    assert isinstance(event, IncomingSmsEvent)
    assert event.text == "\U0001f600 \ufffd\ufffd"
    # The same pair as two separate code points of a decoded mapping.
    pair = parse_event(envelope("incoming_sms", {"text": "\ud83d\ude00"}))
    assert isinstance(pair, IncomingSmsEvent)
    assert pair.text == "\U0001f600"


def test_valid_text_is_kept_as_it_is() -> None:
    text = "Привет 👋 \ufffd \U0010ffff\n\tдва 👨\u200d👩\u200d👧 می\u200cخواهم"
    event = parse_event(envelope("incoming_sms", {"text": text}))
    assert isinstance(event, IncomingSmsEvent)
    assert event.text == text


def test_numbers_json_libraries_cannot_hold_are_made_storable() -> None:
    payload = {
        "box": 101,
        "big": 10**30,
        "negative": -(10**30),
        "nan": math.nan,
        "inf": [math.inf, -math.inf, 1.5],
        "edge": [2**64 - 1, -(2**63)],
    }
    event = parse_event(envelope("voicemail_left", payload))
    assert event.payload_dict() == {
        "box": 101,
        "big": str(10**30),
        "negative": str(-(10**30)),
        "nan": None,
        "inf": [None, None, 1.5],
        "edge": [2**64 - 1, -(2**63)],
    }
    json.dumps(event.as_dict(), allow_nan=False)


def nested(levels: int) -> Any:
    """Return "x" inside `levels` lists."""
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def test_nesting_is_bounded() -> None:
    # The envelope and the payload are two levels: MAX_NESTING in all.
    shallow = parse_event(envelope("voicemail_left", {"a": nested(MAX_NESTING - 2)}))
    assert shallow.payload_dict() == {"a": nested(MAX_NESTING - 2)}
    with pytest.raises(ProtocolError, match="nested deeper than 64 levels"):
        parse_event(envelope("voicemail_left", {"a": nested(MAX_NESTING - 1)}))
    with pytest.raises(ProtocolError, match="nested deeper"):
        parse_event(envelope("incoming_call", {"call_id": 1, "a": nested(900)}))


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
