"""The SSE parser against the WHATWG interpretation rules."""

from __future__ import annotations

import pytest

from custom_components.sprecord.api import ProtocolError, SSEEvent, SSEParser


def parse(*chunks: bytes | str) -> list[SSEEvent]:
    """Feed chunks to a fresh parser and return all events."""
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk.encode() if isinstance(chunk, str) else chunk)
    return events


def datas(*chunks: bytes | str) -> list[str]:
    """Return only the data of the events."""
    return [event.data for event in parse(*chunks)]


def test_simple_event() -> None:
    assert parse("data: hello\n\n") == [SSEEvent(data="hello")]


def test_multiline_data_joined_by_lf() -> None:
    assert datas("data: first\ndata: second\ndata\n\n") == ["first\nsecond\n"]


def test_one_leading_space_stripped_only() -> None:
    assert datas("data:  two spaces\n\ndata:none\n\n") == [" two spaces", "none"]


def test_event_type_and_reset_after_dispatch() -> None:
    events = parse("event: add\ndata: 1\n\ndata: 2\n\n")
    assert [(e.event, e.data) for e in events] == [("add", "1"), ("message", "2")]


def test_no_dispatch_without_data_and_type_reset() -> None:
    # A blank line after no data dispatches nothing but resets the type.
    events = parse("event: lonely\n\ndata: x\n\n")
    assert [(e.event, e.data) for e in events] == [("message", "x")]


def test_empty_data_field_dispatches_empty_string() -> None:
    # `data` with no value still makes the buffer non-empty (WHATWG).
    assert datas("data\n\n", "data:\n\n") == ["", ""]


def test_comments_are_ignored_and_counted() -> None:
    parser = SSEParser()
    assert parser.feed(b": ping\n:\n\n") == []
    assert parser.comments == 2


def test_field_without_colon_and_unknown_fields() -> None:
    assert datas("foo: bar\nevent\ndata\n\n") == [""]


def test_id_is_kept_across_events() -> None:
    events = parse("id: 7\ndata: a\n\ndata: b\n\n")
    assert [(e.data, e.last_event_id) for e in events] == [("a", "7"), ("b", "7")]


def test_id_with_nul_is_ignored() -> None:
    parser = SSEParser()
    parser.feed(b"id: 1\n\nid: 2\x00x\ndata: a\n\n")
    assert parser.last_event_id == "1"


def test_id_takes_effect_only_when_the_event_ends() -> None:
    # A half-read event must not move the id a client resumes from.
    parser = SSEParser(last_event_id="5")
    parser.feed(b": ping\n\n")
    assert parser.last_event_id == "5"
    parser.feed(b"id: 6\ndata: {half")
    assert parser.last_event_id == "5"
    parser.feed(b"\n\n")
    assert parser.last_event_id == "6"


def test_empty_id_resets() -> None:
    events = parse("id: 3\ndata: a\n\nid\ndata: b\n\n")
    assert [e.last_event_id for e in events] == ["3", ""]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("retry: 1500", 1500),
        ("retry:2", 2),
        ("retry: 15a", None),
        ("retry: -1", None),
        ("retry:", None),
        ("retry: ١٢", None),  # non-ASCII digits are not digits here
        ("retry: 1.5", None),
    ],
)
def test_retry_digits_only(line: str, expected: int | None) -> None:
    parser = SSEParser()
    parser.feed(f"{line}\n\n".encode())
    assert parser.retry == expected


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_line_endings(eol: str) -> None:
    text = f"data: a{eol}data: b{eol}{eol}data: c{eol}{eol}"
    assert datas(text) == ["a\nb", "c"]


def test_mixed_line_endings() -> None:
    assert datas("data: a\rdata: b\r\ndata: c\n\r\n") == ["a\nb\nc"]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # If the LF after a CR in the previous chunk counted as a line of its own,
    # the blank line would dispatch "a" alone.
    assert datas("data: a\r", "\ndata: b\r\n\r\n") == ["a\nb"]


def test_cr_at_chunk_end_then_cr() -> None:
    assert datas("data: a\r", "\r") == ["a"]


def test_multibyte_character_split_across_chunks() -> None:
    raw = "data: Привет, мир\n\n".encode()
    cut = raw.index("П".encode()) + 1  # inside the two bytes of П
    assert datas(raw[:cut], raw[cut:]) == ["Привет, мир"]


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert datas(b"data: \xff\xfe ok\n\n") == ["\ufffd\ufffd ok"]


def test_leading_bom_dropped_once() -> None:
    assert datas("\ufeffdata: x\n\n") == ["x"]
    # A second BOM is part of the field name, which is then unknown.
    assert datas("\ufeff\ufeffdata: x\n\n") == []


def test_bom_split_across_chunks() -> None:
    bom = "\ufeff".encode()
    assert datas(bom[:2], bom[2:] + b"data: y\n\n") == ["y"]


def test_incomplete_event_at_end_is_not_dispatched() -> None:
    assert datas("data: complete\n\ndata: partial\n") == ["complete"]


def test_line_longer_than_bound_raises() -> None:
    parser = SSEParser(max_line_length=16)
    with pytest.raises(ProtocolError, match="longer than 16"):
        parser.feed(b"data: " + b"x" * 20 + b"\n")


def test_partial_line_longer_than_bound_raises() -> None:
    parser = SSEParser(max_line_length=16)
    parser.feed(b"data: 0123456")
    with pytest.raises(ProtocolError, match="longer than 16"):
        parser.feed(b"789abcdef")


def test_event_data_longer_than_bound_raises() -> None:
    parser = SSEParser(max_line_length=16)
    with pytest.raises(ProtocolError, match="event longer"):
        parser.feed(b"data: 0123456\ndata: 0123456\ndata: 0\n")


def test_default_bound_is_one_mebibyte() -> None:
    parser = SSEParser()
    big = b"data: " + b"x" * (1024 * 1024 - 16) + b"\n\n"
    assert len(parser.feed(big)[0].data) == 1024 * 1024 - 16
    with pytest.raises(ProtocolError):
        parser.feed(b"y" * (1024 * 1024 + 1))


RECORDED = (
    "\ufeff: welcome\r\n"
    "retry: 3000\r\n"
    "\r\n"
    "id: 1\r\n"
    'data: {"device_id": "Y7d6", "event_type": "incoming_call",\r\n'
    'data:  "payload": {"call_id": 8, "call_src": "+798299", "trunk": "GSM1"}}\r\n'
    "\r\n"
    ": ping\r\n\r\n"
    "id: 2\n"
    "event: sms\n"
    'data: {"text": "Привет 👋"}\n'
    "\n"
    "id: 3\r"
    "data: third\r"
    "\r"
).encode()


def _reference() -> list[SSEEvent]:
    return [
        SSEEvent(
            data='{"device_id": "Y7d6", "event_type": "incoming_call",\n'
            ' "payload": {"call_id": 8, "call_src": "+798299", "trunk": "GSM1"}}',
            last_event_id="1",
        ),
        SSEEvent(data='{"text": "Привет 👋"}', event="sms", last_event_id="2"),
        SSEEvent(data="third", last_event_id="3"),
    ]


def test_recorded_stream_in_one_chunk() -> None:
    parser = SSEParser()
    assert parser.feed(RECORDED) == _reference()
    assert parser.retry == 3000
    assert parser.comments == 2


def test_recorded_stream_split_at_every_byte_boundary() -> None:
    expected = _reference()
    for cut in range(len(RECORDED) + 1):
        parser = SSEParser()
        events = parser.feed(RECORDED[:cut]) + parser.feed(RECORDED[cut:])
        assert events == expected, f"split at byte {cut}"


def test_recorded_stream_byte_by_byte() -> None:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for i in range(len(RECORDED)):
        events += parser.feed(RECORDED[i : i + 1])
    assert events == _reference()
    assert parser.last_event_id == "3"
