"""Property-based tests: SSE parser, event normalisation, webhook handler.

Every test runs with `database=None` and `derandomize=True`: the same
examples on every run (CI is stable) and no example database. Run alone:
`.venv/bin/python -m pytest tests/test_fuzz.py` (about 8 s here).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
from pathlib import Path
import random
import re
import tempfile
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers.json import json_bytes
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord.api import ProtocolError, parse_event
from custom_components.sprecord.api.clean import clean_field
from custom_components.sprecord.api.models import (
    SUBSCRIBABLE_EVENT_TYPES,
    EventType,
    IncomingSmsEvent,
    UnknownEvent,
    VerificationEvent,
)
from custom_components.sprecord.api.sse import SSEEvent, SSEParser
from custom_components.sprecord.const import CONF_DEVICE_ID
from custom_components.sprecord.webhook import MAX_BODY
from emulator import DEFAULT_DEVICE_ID

from .test_webhook import WEBHOOK_ID, hook_entry, post

__all__ = ["WEBHOOK_ID", "hook_entry"]  # a fixture, used by name


# database=None (below) keeps the example database out of the repository.
# Hypothesis also caches the constants it finds in local source files, from
# its pytest plugin at collection time, under .hypothesis/constants: send that
# to the temp directory too, so running this file writes nothing into the repo.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "sprecord-hypothesis")

PURE = settings(
    database=None,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- 1. SSE parser against a reference model -------------------------------


def reference_sse(
    stream: bytes, last_event_id: str = ""
) -> tuple[list[SSEEvent], str, int | None, int]:
    """Interpret a whole stream the plain way the WHATWG standard spells out.

    Returns the events, the final last event id, the final retry and the
    number of comment lines.
    """
    text = stream.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    lines = re.split("\r\n|\r|\n", text)
    lines.pop()  # an unterminated last line is never processed
    events: list[SSEEvent] = []
    data: list[str] = []
    event_type = ""
    id_buffer = last_event_id
    retry: int | None = None
    comments = 0
    for line in lines:
        if not line:
            last_event_id = id_buffer
            if data:
                events.append(
                    SSEEvent("\n".join(data), event_type or "message", last_event_id)
                )
            data = []
            event_type = ""
            continue
        if line.startswith(":"):
            comments += 1
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event_type = value
        elif field == "id":
            if "\0" not in value:
                id_buffer = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events, last_event_id, retry, comments


def run_parser(
    chunks: list[bytes], last_event_id: str = ""
) -> tuple[list[SSEEvent], str, int | None, int]:
    parser = SSEParser(max_line_length=10**7, last_event_id=last_event_id)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events, parser.last_event_id, parser.retry, parser.comments


def split_at(stream: bytes, points: set[int]) -> list[bytes]:
    cuts = [0, *sorted(points), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(cuts)]


# Text with what matters to the parser: separators, spaces, NUL, a BOM, digits
# of other scripts, and characters of 2, 3 and 4 bytes in UTF-8.
SSE_ALPHABET = st.one_of(
    st.sampled_from(list(":  \0\ufeff0123456789a\u0661\uff11é€😀\x85\u2028\t")),
    st.characters(codec="utf-8"),
)
sse_text = st.text(SSE_ALPHABET, max_size=12)
line_ending = st.sampled_from(["\n", "\r", "\r\n"])
field_name = st.one_of(
    st.sampled_from(["data", "data", "data", "event", "event"]),
    st.sampled_from(["id", "retry", "Data", "dat", "data ", " data", "foo"]),
    st.text(SSE_ALPHABET, max_size=6).filter(lambda s: ":" not in s),
)
retry_value = st.one_of(
    st.text("0123456789", min_size=1, max_size=8),
    st.sampled_from(["", " 5", "5 ", "-1", "1.5", "\u0661\u0662", "\uff11", "1a"]),
)

id_value = st.one_of(sse_text, st.sampled_from(["\0", "a\0b", "7\0", " 8"]))


@st.composite
def sse_line(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(
            ["field", "field", "no_colon", "comment", "retry", "id", "blank", "blank"]
        )
    )
    if kind == "blank":
        return ""
    if kind == "comment":
        return ":" + draw(sse_text)
    if kind == "id":
        return "id:" + draw(st.sampled_from(["", " "])) + draw(id_value)
    if kind == "retry":
        return "retry:" + draw(st.sampled_from(["", " "])) + draw(retry_value)
    name = draw(field_name)
    if kind == "no_colon":
        return name
    return name + ":" + draw(st.sampled_from(["", " ", "  "])) + draw(sse_text)


INVALID_UTF8 = st.sampled_from(
    [b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0"]
)


@st.composite
def sse_stream(draw: st.DrawFn) -> bytes:
    parts: list[bytes] = []
    boms = draw(st.sampled_from([0, 0, 0, 1, 2]))
    parts.append("\ufeff".encode() * boms)
    for _ in range(draw(st.integers(0, 12))):
        line = draw(sse_line()).encode()
        if draw(st.integers(0, 9)) == 0:  # an invalid byte somewhere in it
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(INVALID_UTF8) + line[at:]
        parts.append(line + draw(line_ending).encode())
    if draw(st.booleans()):  # an unterminated last line
        parts.append(draw(sse_line()).encode())
    return b"".join(parts)


@st.composite
def split_points(draw: st.DrawFn, stream: bytes) -> set[int]:
    inner = range(1, len(stream))
    if not inner:
        return set()
    # Cuts right after each CR and inside each multi-byte sequence are the
    # interesting ones; offer them as a group, and random cuts besides.
    tricky = {i for i in inner if stream[i - 1] == 0x0D or stream[i] & 0xC0 == 0x80}
    mode = draw(st.sampled_from(["random", "random", "tricky", "every_byte"]))
    if mode == "every_byte":
        return set(inner)
    points = draw(st.sets(st.integers(1, len(stream) - 1), max_size=8))
    if mode == "tricky":
        points |= tricky
    return points


@settings(PURE, max_examples=400)
@given(stream=sse_stream(), resume=st.sampled_from(["", "7", "é"]), data=st.data())
def test_sse_parser_matches_the_reference_model(
    stream: bytes, resume: str, data: st.DataObject
) -> None:
    expected = reference_sse(stream, resume)
    points = data.draw(split_points(stream), label="split points")
    assert run_parser(split_at(stream, points), resume) == expected
    assert run_parser([stream], resume) == expected
    assert run_parser([stream[i : i + 1] for i in range(len(stream))], resume) == (
        expected
    )


# --- 2. parse_event on arbitrary input -------------------------------------

# Text with a lone UTF-16 surrogate, as a JSON escape such as "\ud83d" (half
# an emoji) gives: valid JSON, not valid Unicode. st.text() never draws one.
broken_texts = st.builds(
    lambda head, half, tail: head + half + tail,
    st.text(max_size=4),
    st.characters(categories=["Cs"]),
    st.text(max_size=4),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    broken_texts,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=6), broken_texts), children, max_size=4
        ),
    ),
    max_leaves=12,
)

OUR_PBX = st.just(DEFAULT_DEVICE_ID)
KNOWN_TYPES = [str(t) for t in EventType]
PAYLOAD_KEYS = [
    "call_id",
    "call_src",
    "call_dst",
    "trunk",
    "status",
    "record_id",
    "duration",
    "number",
    "sms_src",
    "text",
    "date",
]
# Values the normaliser treats specially: digit strings, integral floats,
# dates in many spellings, timestamps in seconds and milliseconds, blanks.
# Integers of any size: one past the float range once crashed `date`
# (see `test_regression_huge_integer_date_is_kept_as_text`).
FLOAT_RANGE_INT = st.integers()
field_values = st.one_of(
    json_values,
    FLOAT_RANGE_INT,
    st.floats(),  # NaN and infinities too (json.loads accepts them)
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "8",
            " 42 ",
            "-1",
            "1_0",
            "\uff11\uff12",
            "1e400",
            "nan",
            "inf",
            "1700000000",
            "1700000000000",
            "2024-01-02T03:04:05+05:30",
            "2024-01-02 03:04:05",
            "20240102T030405Z",
            "2024-13-45",
            "success",
            "busy",
            "not_def",
            "Success",
            1e300,
            1e11 + 1,
            -0.0,
            1700000000.5,
            True,
            False,
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
)
payloads = st.dictionaries(
    st.one_of(st.sampled_from(PAYLOAD_KEYS), st.text(max_size=6), broken_texts),
    field_values,
    max_size=8,
)
# Numbers at the edges of what the normaliser converts: non-integral and
# non-finite floats, timestamps past the year 9999 in seconds and in
# milliseconds, integers as large as a float holds; and wrong JSON types.
EDGE_NUMBERS = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        1.5,
        -1,
        1e11 + 1,
        1e15,
        1e18,
        1e300,
        10**20,
        10**300,
        "1e15",
        "-1",
        True,
        None,
        "",
    ]
)
EDGE_VALUES = st.one_of(EDGE_NUMBERS, st.sampled_from(["x", [], {}, [1], {"a": 1}]))
date_values = st.one_of(
    EDGE_NUMBERS,
    st.none(),
    st.text(max_size=30),
    FLOAT_RANGE_INT,
    st.floats(),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["1700000000", "1700000000000", "20240102T030405Z", "1e400"]),
)


@st.composite
def valid_payloads(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    # An id that is only controls is blank once they are removed: refused.
    ident = st.one_of(
        st.text(min_size=1, max_size=8).filter(lambda t: clean_field(t).strip()),
        FLOAT_RANGE_INT,
    )
    text = st.one_of(st.text(max_size=20), st.integers(0, 10**12))
    # A line's name is printable text (anything else refuses the event).
    line = st.one_of(
        st.text(st.characters(categories=["L", "M", "N", "P", "S"]), max_size=20),
        st.integers(0, 10**12),
    )
    match event_type:
        case "incoming_call" | "outgoing_call" | "start_talk":
            keys = {"call_id": ident, "call_src": text, "call_dst": text, "trunk": line}
        case "call_end":
            keys = {
                "call_id": ident,
                "status": st.text(min_size=1, max_size=10),
                "record_id": st.one_of(st.none(), st.integers()),
                "duration": st.one_of(st.none(), st.integers(0, 10**6)),
            }
        case "answer_elsewhere":
            keys = {"call_id": ident, "number": text}
        case "incoming_sms":
            keys = {
                "sms_src": text,
                "text": st.text(max_size=300),
                "trunk": line,
                "date": date_values,
            }
        case _:
            keys = {}
    return draw(st.fixed_dictionaries(keys))


@st.composite
def near_valid_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    # A valid event of a known type with a few fields spoiled, dropped or
    # added, so every field's normalisation is reached, not only the envelope.
    event_type = draw(st.sampled_from(KNOWN_TYPES))
    payload: Any = draw(valid_payloads(event_type))
    keys = st.sampled_from(sorted(payload)) if payload else st.nothing()
    for key in draw(
        st.lists(st.one_of(keys, st.sampled_from(PAYLOAD_KEYS)), max_size=3)
    ):
        if draw(st.integers(0, 3)) == 0:
            payload.pop(key, None)
        else:
            payload[key] = draw(st.one_of(EDGE_VALUES, field_values))
    if event_type == "verification":
        payload = draw(st.one_of(st.text(max_size=20), st.integers(), field_values))
    device_id = draw(
        st.one_of(OUR_PBX, st.integers(0, 10**6), st.text(min_size=1, max_size=8))
    )
    return {"device_id": device_id, "event_type": event_type, "payload": payload}


envelopes = st.fixed_dictionaries(
    {},
    optional={
        "device_id": st.one_of(
            OUR_PBX,
            st.text(max_size=8),
            FLOAT_RANGE_INT,
            json_values,
        ),
        "event_type": st.one_of(st.sampled_from(KNOWN_TYPES), st.text(max_size=8)),
        "payload": st.one_of(payloads, field_values),
        "extra": json_values,
    },
)


def assert_plain_json(value: Any) -> None:
    """Only JSON's own types (no subclasses such as enums), finite numbers.

    And what Home Assistant can store: valid Unicode, 64-bit integers.
    """
    if type(value) is dict:
        for key, item in value.items():
            assert type(key) is str
            key.encode()
            assert_plain_json(item)
    elif type(value) is list:
        for item in value:
            assert_plain_json(item)
    elif type(value) is float:
        assert math.isfinite(value)
    elif type(value) is str:
        value.encode()  # no lone surrogate
    elif type(value) is int:
        assert -(2**63) <= value < 2**64
    else:
        assert value is None or type(value) is bool, repr(value)


def check_parse(raw: Any) -> None:
    """Parse; only ProtocolError may come out; what comes out round-trips."""
    try:
        event = parse_event(raw)
    except ProtocolError:
        return
    as_dict = event.as_dict()
    # Every event, unknown types too, is storable: plain strict JSON that
    # Home Assistant's own encoder (orjson: strict UTF-8, 64-bit) takes.
    assert_plain_json(as_dict)
    json_bytes(as_dict)
    text = json.dumps(as_dict, allow_nan=False)
    if isinstance(event, UnknownEvent):
        return  # passed through as it came (made storable)
    # Known types are normalised, and they read back the same.
    assert as_dict["event_type"] in KNOWN_TYPES
    if isinstance(event, VerificationEvent):
        return  # as_dict() leaves the handshake's string out on purpose
    assert parse_event(as_dict) == event
    assert parse_event(text) == event


@settings(PURE, max_examples=300)
@given(value=json_values)
def test_parse_event_on_arbitrary_json(value: Any) -> None:
    text = json.dumps(value)
    check_parse(text)
    check_parse(text.encode())
    if isinstance(value, dict):
        check_parse(value)


@settings(PURE, max_examples=400)
@given(envelope=envelopes)
def test_parse_event_on_envelopes(envelope: dict[str, Any]) -> None:
    check_parse(envelope)
    check_parse(json.dumps(envelope))  # NaN/Infinity spelled as json.dumps does


@settings(PURE, max_examples=400)
@given(envelope=near_valid_envelopes())
def test_parse_event_on_near_valid_events(envelope: dict[str, Any]) -> None:
    check_parse(envelope)
    check_parse(json.dumps(envelope))


@settings(PURE, max_examples=300)
@given(
    raw=st.one_of(
        st.binary(max_size=64),
        st.text(max_size=64),
        st.text(max_size=64).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.sampled_from(
            [
                "[" * 100_000,  # RecursionError inside json
                '{"a":' * 50_000,
                "1" * 5000,  # beyond int's digit limit: ValueError inside json
                '{"device_id": 1' + "0" * 5000 + "}",
                "NaN",
                '{"device_id": NaN, "event_type": Infinity}',
            ]
        ),
        envelopes.map(json.dumps).flatmap(
            lambda s: st.sampled_from(
                [
                    s.encode("utf-16"),
                    s.encode("utf-32-le"),
                    s.encode("utf-8-sig"),
                    "\ufeff" + s,
                    s[: len(s) // 2],
                ]
            )
        ),
    )
)
def test_parse_event_on_arbitrary_bytes_and_text(raw: bytes | str) -> None:
    check_parse(raw)


# An SMS whose date is an integer beyond the float range: valid JSON.
HUGE_DATE_SMS = json.dumps(
    {
        "device_id": DEFAULT_DEVICE_ID,
        "event_type": "incoming_sms",
        "payload": {"sms_src": "a", "text": "b", "trunk": "c", "date": 10**309},
    }
)


def test_regression_huge_integer_date_is_kept_as_text() -> None:
    # Found by test_parse_event_on_envelopes: an integer past the float range
    # raised OverflowError. It is no readable date, so it is kept as text.
    check_parse(HUGE_DATE_SMS)
    event = parse_event(HUGE_DATE_SMS)
    assert isinstance(event, IncomingSmsEvent)
    assert event.date == str(10**309)[:63] + "…"  # a text date is bounded


# --- 3. the webhook handler through Home Assistant's HTTP stack -------------


@st.composite
def valid_events(
    draw: st.DrawFn, device_ids: st.SearchStrategy[Any] = OUR_PBX
) -> bytes:
    event_type = draw(st.sampled_from([str(t) for t in SUBSCRIBABLE_EVENT_TYPES]))
    envelope = {
        "device_id": draw(device_ids),
        "event_type": event_type,
        "payload": draw(valid_payloads(event_type)),
    }
    return json.dumps(envelope, ensure_ascii=draw(st.booleans())).encode()


def _envelope(device_id: str, event_type: str, payload: Any) -> bytes:
    return json.dumps(
        {"device_id": device_id, "event_type": event_type, "payload": payload}
    ).encode()


any_body = st.one_of(
    envelopes.map(lambda e: json.dumps(e).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"{}", b"x" * (MAX_BODY + 1), b"[" * 60_000]),
)
other_device_ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9+/=_-]{1,10}", fullmatch=True), st.integers(0, 10**20)
).filter(lambda d: str(d) != DEFAULT_DEVICE_ID)
"""PBX ids as the parse takes them: base64 characters."""
unknown_types = st.text(
    st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=12
).filter(lambda t: t not in KNOWN_TYPES)
"""Names of types to come: printable (anything else is refused)."""

# Bodies by kind, with how many of each the webhook test posts. Events of our
# PBX (the coordinator takes them), the handshake, and events of another PBX
# (dropped: a POST never brings a PBX in) must all get 200; arbitrary bodies
# must get what parse_event() says: 400 when it refuses them, else 200.
WEBHOOK_BODIES: dict[str, tuple[st.SearchStrategy[bytes], int]] = {
    "event": (valid_events(), 80),
    "unknown": (st.builds(_envelope, OUR_PBX, unknown_types, payloads), 20),
    "verify": (
        st.builds(
            _envelope,
            OUR_PBX,
            st.just("verification"),
            st.one_of(st.text(max_size=40), st.integers()),
        ),
        20,
    ),
    "other": (valid_events(other_device_ids), 30),
    "any": (any_body, 150),
}


def draw_examples[T](strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """Let hypothesis generate `count` examples, derandomized, synchronously.

    Why not `@given` on the async webhook test: its fixtures (hass, the HTTP
    server, the entry) are function-scoped, so they would be set up once and
    shared by every example anyway (hypothesis's function_scoped_fixture
    health check), and how `@given` and an async test meet depends on the
    pytest-asyncio version. Drawing the bodies up front with hypothesis's own
    engine (same strategies, fixed seed; no shrinking) and posting them from
    one plain async test works with any version and keeps one Home Assistant
    for all bodies; a failing assertion names the body.
    """
    examples: list[T] = []

    @settings(
        database=None,
        derandomize=True,
        deadline=None,
        max_examples=count,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        examples.append(example)

    collect()
    return examples


def expected_status(body: bytes) -> int:
    if len(body) > MAX_BODY:
        return 400
    try:
        parse_event(body)
    except ProtocolError:
        return 400
    return 200


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_webhook_answers_arbitrary_bodies_without_errors(
    hass: HomeAssistant,
    ha_url: str,
    hook_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bodies = [
        (kind, body)
        for kind, (strategy, count) in WEBHOOK_BODIES.items()
        for body in draw_examples(strategy, count)
    ]
    assert len(bodies) >= 250
    random.Random(0).shuffle(bodies)  # mix the kinds (always the same order)
    coordinator = hook_entry.runtime_data.coordinator
    link = hook_entry.runtime_data.link
    # The entry learnt its PBX's id from the verification of its own
    # subscription; events of other ids are dropped (200 all the same).
    assert hook_entry.data.get(CONF_DEVICE_ID) == DEFAULT_DEVICE_ID

    stats = link.stats
    taken = stats.events_by_transport["webhook"]
    refused = link.webhook.bad_requests
    dropped = 0
    for kind, body in bodies:
        response = await post(ha_url, body)
        status = 200 if kind != "any" else expected_status(body)
        assert response.status == status, (kind, body[:200])
        if kind == "verify":
            payload = json.loads(body)["payload"]
            digest = hashlib.md5(str(payload).encode()).hexdigest()  # noqa: S324
            assert await response.json() == {"result": digest}
        if status == 400:
            refused += 1
        elif isinstance(event := parse_event(body), VerificationEvent):
            pass
        elif event.device_id == DEFAULT_DEVICE_ID:
            taken += 1
        else:
            dropped += 1
        await hass.async_block_till_done()
        assert not _errors(caplog), (kind, body[:200])
        assert hook_entry.state is ConfigEntryState.LOADED
    assert link.webhook.bad_requests == refused
    assert link.webhook.unknown_pbx_requests == dropped >= 30
    assert list(coordinator.pbxs) == [DEFAULT_DEVICE_ID]
    assert stats.events_by_transport["webhook"] == taken
    assert hook_entry.data.get(CONF_DEVICE_ID) == DEFAULT_DEVICE_ID


@settings(PURE, max_examples=200)
@given(body=valid_events())
def test_generated_valid_events_parse(body: bytes) -> None:
    # The strategy the webhook test relies on for "our PBX's events get 200".
    assert parse_event(body).device_id == DEFAULT_DEVICE_ID


async def test_regression_webhook_huge_integer_date_is_taken(
    hass: HomeAssistant,
    ha_url: str,
    hook_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # It once escaped the handler (Home Assistant logged a traceback).
    response = await post(ha_url, HUGE_DATE_SMS)
    assert not _errors(caplog)
    assert response.status == 200
    assert hook_entry.runtime_data.link.webhook.bad_requests == 0
